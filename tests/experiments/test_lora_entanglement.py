"""LoRA / full fine-tuning of MiniLM with entanglement profiles of the updates (needs EWT and the hf extra)."""

import math

import pytest

import goldstone
from goldstone.data.treebank import treebank_dir

pytestmark = [pytest.mark.slow, pytest.mark.skipif(treebank_dir() is None, reason="UD English EWT not found "
                                                   "(set GOLDSTONE_UD_EWT or put ../shared/data/ud-english-ewt)")]
pytest.importorskip("peft")


def test_lora_updates_obey_the_rank_cap_at_the_centre(tmp_path):
    run = goldstone.run("lora_entanglement", out=tmp_path / "r", rank=2, steps=2, profile_every=1, batch_size=8)
    m = run.metrics
    centre = m[(m.observable.str.startswith("profile_")) & (m.cut == 8)]
    assert len(centre) == 2 * 6 * 2  # two steps, six layers, query and value
    assert (centre.value <= math.log(2) + 1e-9).all() and (centre.value >= 0).all()


def test_full_fine_tuning_update_has_no_cap(tmp_path):
    run = goldstone.run("lora_entanglement", out=tmp_path / "f", method="full", lr=5e-5, steps=1, profile_every=1,
                        batch_size=8)
    assert run.manifest["headline"]["centre_query"] > math.log(32)

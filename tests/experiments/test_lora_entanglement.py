"""LoRA / full fine-tuning of MiniLM with entanglement profiles of the updates (needs EWT and the hf extra)."""

import math

import pytest

import goldstone
from goldstone.data.treebank import treebank_dir
from goldstone.models.mps_adapter import mps_parameter_count

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


def test_mps_adaptation_obeys_both_caps_and_matches_lora_parameters(tmp_path):
    run = goldstone.run("lora_entanglement", out=tmp_path / "m", method="mps", rank=2, chi=2, steps=2,
                        profile_every=1, batch_size=8)
    headline = run.manifest["headline"]
    m = run.metrics
    profiles = m[m.observable.str.startswith("profile_") & (m.step == 2)]
    r = (2 * 768 - 2 * 16) // (384 + 24 * 2)  # the parameter-matched bond: 3
    assert (profiles[profiles.cut == 8].value <= math.log(r) + 1e-9).all()
    assert (profiles[profiles.cut == 12].value <= math.log(2) + 1e-9).all()  # the chi cut, rows | 24 | 16
    assert headline["adapted_parameters"] == 12 * mps_parameter_count(384, 384, r, 2, 24)  # 12 matrices
    assert {"attention_c_eff", "attention_c_eff_low", "width_query"} <= set(headline)
    assert headline["attention_c_eff_low"] <= headline["attention_c_eff"] <= headline["attention_c_eff_high"]

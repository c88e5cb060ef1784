"""The noether and ksb experiments: tiny runs against the exact theory, bad keys, kill and resume."""

import random

import pandas as pd
import pytest

import goldstone
from goldstone.core.errors import ConfigError
from goldstone.testing.kill_resume import goldstone_cli, kill_and_resume

TINY = {"steps": 80, "width": 16, "eval_every": 40, "checkpoint_every": 40, "batch_size": 32}


def test_float64_run_matches_the_exact_recursions(tmp_path):
    run = goldstone.run("noether", out=tmp_path / "r", dtype="float64", bn_eps=1e-12, **TINY)
    headline = run.manifest["headline"]
    assert headline["exact_error_translation"] < 1e-10 and headline["exact_error_rescale"] < 1e-10
    assert headline["exact_error_scale"] < 1e-8
    assert headline["continuous_error_scale"] < 0.02
    check = pd.read_parquet(tmp_path / "r" / "tables" / "theory_check.parquet")
    assert check.within.all() and set(check.kind) == {"translation", "scale", "rescale"}
    table = pd.read_parquet(tmp_path / "r" / "tables" / "symmetries.parquet")
    assert sorted(table[table.accepted].kind) == ["rescale", "rescale", "scale", "scale", "translation", "translation"]
    assert {f["name"] for f in run.manifest["figures"]} == {"charges", "phase_portrait", "nld"}


def test_plain_mlp_without_momentum_and_adam(tmp_path):
    run = goldstone.run("noether", out=tmp_path / "plain", batch_norm=False, momentum=0.0, **TINY)
    headline = run.manifest["headline"]
    assert headline["exact_error_rescale"] < 1e-4 and "exact_error_scale" not in headline
    run = goldstone.run("noether", out=tmp_path / "adam", optimizer="adam", lr=1e-3, **TINY)
    assert run.manifest["headline"]["theory_applicable"] == 0
    assert [f["name"] for f in run.manifest["figures"]] == ["charges"]


def test_nesterov_without_momentum_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="nesterov"):
        goldstone.run("noether", out=tmp_path / "n", nesterov=True, momentum=0.0, **TINY)
    assert not (tmp_path / "n").exists()


def test_ksb_frozen_norms_stay_at_their_start(tmp_path):
    free = goldstone.run("ksb", out=tmp_path / "free", dataset="digits", lr=0.3, **TINY)
    frozen = goldstone.run("ksb", out=tmp_path / "frozen", dataset="digits", lr=0.3, constrain=True, **TINY)
    assert abs(frozen.manifest["headline"]["radius_ratio"] - 1) < 1e-6
    assert abs(free.manifest["headline"]["radius_ratio"] - 1) > 1e-3


@pytest.mark.slow
def test_killed_noether_run_resumes_to_identical_charges(tmp_path):
    args = ["run", "noether", "--set", "steps=300", "--set", "checkpoint_every=25", "--set", "width=32"]
    import subprocess

    subprocess.run(goldstone_cli(*args, "--out", str(tmp_path / "reference")), check=True, capture_output=True)
    kill_and_resume(goldstone_cli(*args, "--out", str(tmp_path / "killed")), tmp_path / "killed", 2,
                    random.Random(0), window=6.0)
    from safetensors.torch import load_file

    reference = load_file(tmp_path / "reference" / "arrays" / "noether_charges.safetensors")
    killed = load_file(tmp_path / "killed" / "arrays" / "noether_charges.safetensors")
    assert reference.keys() == killed.keys()
    for key in reference:
        assert reference[key].nan_to_num(7.0).equal(killed[key].nan_to_num(7.0)), key

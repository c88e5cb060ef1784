"""Parameter-symmetry experiments: saddle-to-saddle half-times and the weight-decay transition
against theory, with the notes' tolerances (half-times 15%, staircase 1e-3)."""

import pytest

import goldstone
from goldstone.core.errors import ConfigError


def test_depth_two_half_times_within_15_percent(tmp_path):
    run = goldstone.run("saddle_to_saddle", out=tmp_path / "r")
    headline = run.manifest["headline"]
    assert headline["modes_learned"] == 4 and headline["half_time_error"] < 0.15


def test_depth_three_staircase(tmp_path):
    run = goldstone.run("saddle_to_saddle", out=tmp_path / "r", depth=3, init_scale=0.01, steps=2000)
    assert run.manifest["headline"]["modes_learned"] == 4 and run.manifest["headline"]["half_time_error"] < 0.2


def test_weight_decay_staircase_at_depth_two(tmp_path):
    run = goldstone.run("weight_decay_transition", out=tmp_path / "r", weight_decay=1.5)
    headline = run.manifest["headline"]
    assert headline["rank"] == 3 == headline["rank_global_minimum"] and headline["sigma_error"] < 1e-3


def test_depth_three_hysteresis(tmp_path):
    """Between the jump (0.397) and the spinodal (0.4725): a large init stays broken, a small one at 0."""
    common = {"depth": 3, "weight_decay": 0.42, "singular_values": "1", "dim": 4, "width": 4}
    large = goldstone.run("weight_decay_transition", out=tmp_path / "large", init_scale=0.5, **common)
    small = goldstone.run("weight_decay_transition", out=tmp_path / "small", init_scale=0.01, **common)
    assert large.manifest["headline"]["rank"] == 1 and small.manifest["headline"]["rank"] == 0
    assert large.manifest["headline"]["rank_global_minimum"] == 0
    assert max(large.manifest["headline"]["sigma_error"], small.manifest["headline"]["sigma_error"]) < 1e-3


@pytest.mark.parametrize("value", ["8,x", "1,2", "-1"])
def test_bad_singular_values_are_named(tmp_path, value):
    with pytest.raises(ConfigError, match="singular_values"):
        goldstone.run("saddle_to_saddle", out=tmp_path / "r", singular_values=value)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_digits_mse_neural_collapse(tmp_path):
    """The notes' reference: digits, MSE + weight decay: NC1 below 5e-3 and NC4 = 0 (here by step 800)."""
    run = goldstone.run("neural_collapse", out=tmp_path / "r", steps=800, measure_every=400)
    headline = run.manifest["headline"]
    assert headline["train_error"] == 0 and headline["nc1"] < 5e-3 and headline["nc4"] == 0


def test_identical_units_train_as_one_unit_and_syre_escapes(tmp_path):
    """Prop. 3 of syre: GD from identical units is the one-unit network's GD (to round-off); syre leaves it."""
    vanilla = goldstone.run("syre", out=tmp_path / "v", method="vanilla", steps=2000).manifest["headline"]
    syre = goldstone.run("syre", out=tmp_path / "s", steps=2000).manifest["headline"]
    assert vanilla["one_unit_gap"] < 1e-10 and vanilla["independent"] == 1
    assert syre["final_loss"] < 0.5 * vanilla["final_loss"] and syre["independent"] > 1


@pytest.mark.slow
@pytest.mark.parametrize("weight_decay,independent", [(0.01, 3), (0.3, 1)])
def test_weight_decay_walks_down_the_complexity_hierarchy(tmp_path, weight_decay, independent):
    """The notes' E4: 30 randomly initialised tanh units on the 3-unit teacher, 20000 GD steps: at
    gamma = 0.01 the live units are the teacher's 3 (the rest dead), at 0.3 they have merged into 1."""
    run = goldstone.run("syre", out=tmp_path / "r", init="standard", method="vanilla", width=30, steps=20000,
                        weight_decay=weight_decay)
    assert run.manifest["headline"]["independent"] == independent


def test_syre_ar_escapes_the_symmetric_trap_too(tmp_path):
    """Advanced removal (a random diagonal metric, d = 0.1 sigma_0) leaves the symmetric state as syre does."""
    vanilla = goldstone.run("syre", out=tmp_path / "v", method="vanilla", steps=2000).manifest["headline"]
    ar = goldstone.run("syre", out=tmp_path / "a", method="syre_ar", steps=2000).manifest["headline"]
    assert ar["final_loss"] < 0.5 * vanilla["final_loss"] and ar["independent"] > 1
    with pytest.raises(ConfigError, match="metric_ratio"):
        goldstone.run("syre", out=tmp_path / "x", method="syre_ar", metric_ratio=100, anchor_scale=0.5)

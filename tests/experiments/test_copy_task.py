"""The copy-task experiment: tiny runs of an equivariant cell and a PyTorch baseline."""

import dataclasses

import pytest

import goldstone
from goldstone.core.errors import ConfigError
from goldstone.experiments.copy_task import CopyModel, CopyTaskConfig
from goldstone.models.recurrent import parameter_count

TINY = {"width": 8, "max_delay": 3, "length": 2, "alphabet": 3, "steps": 6, "eval_every": 3,
        "checkpoint_every": 3, "eval_size": 16, "batch_size": 8}


@pytest.mark.parametrize("overrides", [{"group": "u1", "cell": "gru"}, {"architecture": "torch_lstm"}])
def test_tiny_copy_runs_log_loss_success_and_parameters(tmp_path, overrides):
    run = goldstone.run("copy_task", out=tmp_path / "r", **TINY, **overrides)
    m = run.metrics
    assert set(m[m.observable == "eval"].metric) == {"symbol_accuracy", "success"}
    assert sorted(m[m.observable == "eval"].step.unique()) == [0, 3, 6]
    delay = m[m.observable == "delay"]
    if "architecture" in overrides:  # PyTorch's cells: no group to rotate by, no blank map
        assert set(delay.metric) == {"correlation"}
    else:
        assert set(delay.metric) == {"correlation", "retention", "rotation", "protected_ratio", "protected_gain"}
        ratio = delay[delay.metric == "protected_ratio"].value
        assert ((ratio - 1).abs() < 1e-4).all()  # exact in theory; float32 here
        retention = delay[delay.metric == "retention"].value.to_numpy()
        correlation = delay[delay.metric == "correlation"].value.to_numpy()
        assert (retention <= 1 + 1e-6).all() and (retention >= correlation - 1e-6).all()
    headline = run.manifest["headline"]
    assert headline["parameters"] == parameter_count(CopyModel(CopyTaskConfig(**TINY, **overrides)))
    if "architecture" not in overrides:  # the trained blank recurrence's spectrum against dim(G/H)
        modes = run.table("neutral_modes")
        assert len(modes) == 4 and set(modes.theory) <= {0, 1}
        assert 0 <= headline["neutral_modes_protected"] <= 1
    assert 0 <= headline["final_success"] <= headline["final_symbol_accuracy"] <= 1


def test_bad_copy_keys_are_named(tmp_path):
    with pytest.raises(ConfigError, match="width"):
        goldstone.run("copy_task", out=tmp_path / "bad", **{**TINY, "width": 9, "group": "ok", "k": 4})


def test_a_pytorch_baseline_takes_any_width():
    CopyTaskConfig(architecture="torch_gru", width=9).validate()
    with pytest.raises(ConfigError, match="not divisible"):
        CopyTaskConfig(width=9).validate()


@pytest.mark.parametrize("kind", ["torch_rnn", "torch_gru", "torch_lstm"])
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_baselines_at_equal_parameters_come_within_one_unit_of_our_count(kind, cell):
    """The baseline's width is the one whose parameter count is nearest ours: closer than the
    counts one unit wider or narrower would be."""
    ours = CopyTaskConfig(group="u1", cell=cell, width=64)
    theirs = CopyTaskConfig(architecture=kind, baseline_width="equal_parameters", group="u1", cell=cell, width=64)
    target = parameter_count(CopyModel(ours))
    width = theirs.hidden_width(9, 8)
    counts = {w: parameter_count(CopyModel(dataclasses.replace(theirs, baseline_width="equal_width", width=w)))
              for w in (width - 1, width, width + 1)}
    assert counts[width] == parameter_count(CopyModel(theirs))
    assert abs(counts[width] - target) <= min(abs(counts[width - 1] - target), abs(counts[width + 1] - target))
    assert theirs.network_name(9, 8).endswith(f"N = {width}")

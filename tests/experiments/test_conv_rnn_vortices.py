"""The conv-RNN vortex experiment: a tiny run logs vortex statistics, writes the fields, the
statistics and a GIF into its report, and bad keys are named."""

import pytest
import torch

import goldstone
from goldstone.analysis.vortices import gated_winding_numbers
from goldstone.core.errors import ConfigError
from goldstone.core.report import write_report

TINY = {"channels": 2, "size": 6, "input_grid": 3, "max_delay": 4, "length": 3, "alphabet": 3, "steps": 4, "eval_every": 2,
        "checkpoint_every": 2, "eval_size": 8, "probe_size": 4, "batch_size": 4}


def test_tiny_vortex_run_logs_statistics_and_writes_figures_and_a_gif(tmp_path):
    run = goldstone.run("conv_rnn_vortices", out=tmp_path / "r", **TINY)
    m = run.metrics
    vortices = m[m.observable == "vortices"]
    assert set(vortices.metric) == {"density", "mean_lifetime", "births_per_frame"}
    assert sorted(vortices.step.unique()) == [0, 2, 4]
    density = vortices[vortices.metric == "density"].value
    assert ((density >= 0) & (density <= 1)).all()
    lifetimes = m[m.observable == "vortex_lifetimes"]
    assert (lifetimes.lifetime >= 1).all() and (lifetimes.value >= 1).all()
    figures = {figure["name"] for figure in run.manifest["figures"]}
    assert figures == {"training", "vortex_field", "vortex_statistics", "vortex_movie"}
    gif = (tmp_path / "r" / "figures" / "vortex_movie.gif").read_bytes()
    assert gif.startswith(b"GIF89a")
    html = write_report(tmp_path / "r").read_text()
    assert "data:image/gif;base64," in html


@pytest.mark.parametrize("key,value,message", [("threshold", 1.0, "threshold"), ("kernel_size", 4, "kernel_size"),
                                               ("probe_size", 9, "probe_size"), ("group", "ok", "group"),
                                               ("input_grid", 7, "input_grid")])
def test_bad_keys_are_named(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        goldstone.run("conv_rnn_vortices", out=tmp_path / "bad", **{**TINY, key: value})
    assert not (tmp_path / "bad").exists()


def test_a_frozen_random_phase_field_is_one_third_vortices():
    """Sanity of the statistic the experiment reports: iid uniform phases on a torus give 1/3 of the
    plaquettes a unit charge (the four wrapped links sum to +-2 pi with probability 1/6 each)."""
    generator = torch.Generator().manual_seed(0)
    field = torch.polar(torch.ones(64, 64, 64, dtype=torch.float64),
                        2 * torch.pi * torch.rand(64, 64, 64, generator=generator, dtype=torch.float64))
    density = gated_winding_numbers(field).ne(0).double().mean()
    assert abs(float(density) - 1 / 3) < 0.01

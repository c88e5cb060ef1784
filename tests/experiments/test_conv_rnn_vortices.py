"""The conv-RNN vortex experiment: a tiny run logs vortex statistics, writes the fields, the
statistics and a GIF into its report, and bad keys are named."""

import math

import numpy as np
import pytest
import torch

import goldstone
from goldstone.analysis.vortex_tracks import track_vortices
from goldstone.analysis.vortices import gated_winding_numbers
from goldstone.core.checkpoint import load_checkpoint
from goldstone.core.config import resolve_config
from goldstone.core.errors import ConfigError
from goldstone.lab.views import open_folder
from goldstone.experiments.conv_rnn_vortices import ConvCopyModel, ConvVorticesConfig
from goldstone.training.copy_task import held_out_batch
from goldstone.models.conv_rnn import phase_field

TINY = {"channels": 2, "size": 6, "input_grid": 3, "max_delay": 4, "length": 3, "alphabet": 3, "steps": 4, "eval_every": 2,
        "checkpoint_every": 2, "eval_size": 8, "probe_size": 4, "batch_size": 4}


def reference_charges(field: np.ndarray, threshold: float) -> np.ndarray:
    """Gated winding numbers written out plaquette by plaquette in float64: the four links of the
    plaquette at corner (i, j), (i, j) -> (i, j+1) -> (i+1, j+1) -> (i+1, j) on the torus, each
    wrapped into [-pi, pi), summed over 2 pi; kept where the corners' mean |z| is at least
    `threshold` x the frame's RMS |z|. `field` is complex (..., H, W)."""
    frames = field.reshape(-1, *field.shape[-2:])
    charges = np.zeros(frames.shape, dtype=np.int64)
    height, width = frames.shape[-2:]
    for f, frame in enumerate(frames):
        phase, amplitude = np.angle(frame), np.abs(frame)
        rms = math.sqrt(float(np.mean(amplitude ** 2)))
        for i in range(height):
            for j in range(width):
                loop = [(i, j), (i, (j + 1) % width), ((i + 1) % height, (j + 1) % width), ((i + 1) % height, j)]
                winding = sum((phase[b] - phase[a] + math.pi) % (2 * math.pi) - math.pi
                              for a, b in zip(loop, loop[1:] + loop[:1]))
                if sum(amplitude[p] for p in loop) / 4 >= threshold * rms:
                    charges[f, i, j] = round(winding / (2 * math.pi))
    return charges.reshape(field.shape)


def test_tiny_vortex_run_logs_statistics_and_writes_figures_and_a_gif(tmp_path):
    """The statistics logged at the last step, and the headlines, recomputed from the saved model: its
    phase field on the probe sequences, vortices counted plaquette by plaquette (`reference_charges`,
    at threshold 0.5 where gating drops some of the 0.1 gate's vortices), linked by `track_vortices`
    (itself checked against a vortex-by-vortex reference in tests/analysis/test_vortices.py). Density:
    vortices per plaquette per frame; births per frame per lattice over the T - 1 transitions; the
    lifetime histogram and mean lifetime of the tracks born and dead inside the window. All exact
    (counts), to 1e-12."""
    run = goldstone.run("conv_rnn_vortices", out=tmp_path / "r", **{**TINY, "threshold": 0.5})
    m = run.metrics
    vortices = m[m.observable == "vortices"]
    assert set(vortices.metric) == {"density", "mean_lifetime", "mean_lifetime_low", "mean_lifetime_high",
                                    "births_per_frame"}
    assert sorted(vortices.step.unique()) == [0, 2, 4]

    cfg = resolve_config(ConvVorticesConfig, run.config)
    model = ConvCopyModel(cfg)
    model.load_state_dict(load_checkpoint(run.folder / "checkpoints" / "step_00000004")[0]["model"])
    probe = held_out_batch(cfg, run.seed).inputs[:cfg.probe_size]
    with torch.no_grad():
        states = model.recurrent(probe)[0]  # (S, T, 2C, H, W)
    field = phase_field(states).transpose(1, 2).numpy().astype(np.complex128)  # (S, C, T, H, W)
    charges = reference_charges(field, 0.5)
    assert int((reference_charges(field, 0.1) != 0).sum()) > int((charges != 0).sum()) > 0  # the gate matters
    sequences, channels, frames, height, width = charges.shape
    tracks = track_vortices(torch.from_numpy(charges), cfg.max_step)
    whole = tracks.lifetimes[~tracks.censored]
    assert len(whole) >= 5  # enough tracks born and dead inside the window for the histogram to mean something
    last = vortices[vortices.step == 4].set_index("metric").value
    density = (charges != 0).sum() / charges.size
    assert last["density"] == pytest.approx(density, rel=1e-12)
    assert run.manifest["headline"]["vortex_density"] == pytest.approx(density, rel=1e-12)
    births = int(tracks.births.sum()) / (sequences * channels * (frames - 1))
    assert last["births_per_frame"] == pytest.approx(births, rel=1e-12)
    assert last["mean_lifetime"] == pytest.approx(float(whole.double().mean()), rel=1e-12)
    assert run.manifest["headline"]["mean_lifetime"] == pytest.approx(float(whole.double().mean()), rel=1e-12)
    lifetimes = m[(m.observable == "vortex_lifetimes") & (m.step == 4)]
    expected = sorted(zip(*(t.tolist() for t in torch.unique(whole, return_counts=True))))
    assert sorted(zip(lifetimes.lifetime.astype(int), lifetimes.value.astype(int))) == expected

    figures = {figure["name"] for figure in run.manifest["figures"]}
    assert figures == {"training", "vortex_field", "vortex_statistics", "vortex_movie"}
    gif = (tmp_path / "r" / "figures" / "vortex_movie.gif").read_bytes()
    assert gif.startswith(b"GIF89a")
    html = open_folder(tmp_path / "r").report().read_text()
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


def test_the_smallest_lattice_with_no_whole_track_still_reports(tmp_path):
    """A 3 x 3 torus, one channel, one-symbol sequences: no vortex track is born and dies inside the
    window, so the lifetime table is empty; the run still finishes, with a NaN mean lifetime and its statistics figure."""
    sets = dict(size=3, kernel_size=3, channels=1, input_grid=3, steps=5, probe_size=1, sigma_w=0.001, max_delay=1,
                length=1, alphabet=3, eval_size=8, batch_size=4)
    run = goldstone.run("conv_rnn_vortices", out=tmp_path / "run", **sets)
    assert math.isnan(run.manifest["headline"]["mean_lifetime"])
    assert "vortex_statistics" in {figure["name"] for figure in run.manifest["figures"]}

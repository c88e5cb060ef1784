"""Vortices in the phase of a U(1)-equivariant 2-D convolutional RNN trained on the copy task.

"Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation", Appendix
D.3, reports long-lived vortices in such a network, their role unclear. This experiment trains
`goldstone.models.conv_rnn.ConvRNN` (or its generic-kernel twin) on the variable-delay copy task
and follows the phase field arg z of a fixed set of probe sequences: vortices per plaquette
(`gated_winding_numbers`), their tracks across time steps (`track_vortices`), lifetimes, births
(pair creations) and deaths, at every evaluation; at the end, the phase field with its vortices
marked at four moments of one sequence, the statistics against time and lifetime, and a GIF.
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from goldstone.analysis.vortex_tracks import VortexTracks, track_vortices
from goldstone.analysis.vortices import gated_winding_numbers
from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.frames import holds, series
from goldstone.core.memory import FLOAT32, FLOAT64, training_state
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.training.copy_task import CopySchedule, held_out_batch, train_copy
from goldstone.models.conv_rnn import CONV_GROUPS, CONV_INITS, ConvRNN, phase_field
from goldstone.models.group_config import GROUP_LABELS


@dataclasses.dataclass
class ConvVorticesConfig(CopySchedule):
    group: str = param("u1", "symmetry of the recurrent kernel: U(1) (complex kernel) or generic (dense real "
                       "kernel, same gain)", label="recurrent kernel", choices=CONV_GROUPS)
    channels: int = param(4, "complex channels C of the field", label="channels C", ge=1, le=64)
    size: int = param(16, "lattice side H = W (a torus)", label="lattice side (sites)", ge=3, le=256)
    kernel_size: int = param(3, "side of the convolution kernel (odd)", ge=1, le=15)
    input_grid: int = param(4, "the input writes a G x G field per channel, spread smoothly over the lattice "
                            "(periodic bilinear); 0 writes every site independently", ge=0)
    init: str = param("identity", "recurrent kernel at initialisation: identity at the centre tap plus random "
                      "couplings of scale sigma_W, or random alone", choices=CONV_INITS)
    sigma_w: float = param(0.3, "scale sigma_W of the random kernel weights", label="weight scale σ_W", ge=1e-3,
                           le=100)
    threshold: float = param(0.1, "vortex gate: a plaquette counts where its corners' mean |z| is at least this "
                             "share of the frame's RMS |z|, in (0, 1)", gt=0)
    max_step: float = param(1.5, "largest move (lattice units) of a vortex between time steps", gt=0, le=4)
    probe_size: int = param(32, "held-out sequences whose phase fields are analysed", ge=1)
    steps: int = param(600, "optimiser steps", label="training steps", ge=1)
    batch_size: int = param(64, "sequences per step", ge=1)

    def validate(self) -> None:
        if self.threshold >= 1:
            raise ConfigError(f"key 'threshold'={self.threshold} must lie in (0, 1)")
        if self.kernel_size % 2 == 0 or self.kernel_size > self.size:
            raise ConfigError(f"key 'kernel_size'={self.kernel_size} must be odd and at most key 'size'={self.size}")
        if self.input_grid > self.size:
            raise ConfigError(f"key 'input_grid'={self.input_grid} exceeds key 'size'={self.size}")
        if self.probe_size > self.eval_size:
            raise ConfigError(f"key 'probe_size'={self.probe_size} exceeds key 'eval_size'={self.eval_size}")

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): the readout of the whole field (2 C H^2 x alphabet)
        with Adam's state; the complex field of every time step, four tensors kept per step for the
        backward pass; the probe's fields, phases and charges."""
        frames = 2 * self.length + self.max_delay + 1
        sites = self.channels * self.size ** 2
        return {"the readout and kernel with Adam's state (keys channels, size, alphabet, kernel_size)":
                training_state(2 * sites * self.alphabet + 2 * self.channels ** 2 * self.kernel_size ** 2),
                "the field at every time step (keys batch_size, eval_size, channels, size, length, max_delay)":
                4 * max(self.batch_size, self.eval_size) * frames * sites * 2 * FLOAT32,
                "the probe's fields and charges (keys probe_size, channels, size, length, max_delay)":
                4 * self.probe_size * frames * sites * FLOAT64}


class ConvCopyModel(nn.Module):
    """ConvRNN -> a general linear readout of the whole field at every step."""

    def __init__(self, cfg: ConvVorticesConfig):
        super().__init__()
        self.recurrent = ConvRNN(cfg.alphabet + 1, cfg.channels, cfg.size, cfg.kernel_size, cfg.group, cfg.sigma_w,
                                 cfg.init, cfg.input_grid or None)
        self.readout = nn.Linear(2 * cfg.channels * cfg.size ** 2, cfg.alphabet)
        self.symmetry = (cfg.group, 2)

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Flat states (B, T, 2 C H W): real parts of the channels, then imaginary parts."""
        return self.recurrent(x)[0].flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.states(x))


LABELS = {**GROUP_LABELS, "final_success": "sequences copied", "final_symbol_accuracy": "answer symbols right",
          "parameters": "parameters", "vortex_density": "vortices per plaquette",
          "mean_lifetime": "mean vortex lifetime (steps)",
          "mean_lifetime_low": "mean vortex lifetime, 95 % bootstrap low (steps)",
          "mean_lifetime_high": "mean vortex lifetime, 95 % bootstrap high (steps)"}


@experiment("conv_rnn_vortices", ConvVorticesConfig,
            "vortices in the phase of a U(1) 2-D conv RNN on the copy task: counts, tracks, lifetimes",
            curve=("vortices", "density"), labels=LABELS, metric="mean_lifetime")
def train(ctx: RunContext) -> None:
    cfg: ConvVorticesConfig = ctx.config
    model = ConvCopyModel(cfg)
    held_out = held_out_batch(cfg, ctx.seed)
    probe = held_out.inputs[:cfg.probe_size]
    name = f"{'U(1)' if cfg.group == 'u1' else 'generic'} ConvRNN, {cfg.channels} x {cfg.size}^2"

    def charges_and_field() -> tuple[torch.Tensor, torch.Tensor]:
        """Gated charges (S, C, T, H, W) and the phase field of the probe sequences."""
        model.eval()
        with torch.no_grad():
            field = phase_field(model.recurrent(probe.to(ctx.device))[0]).cpu().transpose(1, 2)
        return gated_winding_numbers(field, cfg.threshold), field

    def measure(step: int) -> None:
        charges = charges_and_field()[0]
        tracks = track_vortices(charges, cfg.max_step)
        log_vortices(ctx, step, tracks, charges.shape)

    train_copy(ctx, cfg, model, name, measurements=[(lambda s: s % cfg.eval_every == 0 or s == cfg.steps, measure)])
    charges, field = charges_and_field()
    tracks = track_vortices(charges, cfg.max_step)
    sequences, channels, frames, height, width = charges.shape
    ctx.headline("vortex_density", tracks.counts.double().mean() / (sequences * channels * height * width))
    ctx.headline("mean_lifetime", tracks.mean_lifetime())
    low, high = tracks.lifetime_interval()
    ctx.headline("mean_lifetime_low", low)
    ctx.headline("mean_lifetime_high", high)
    delay = int(held_out.delays[0])
    moments = {"end of input": cfg.length - 1, "mid delay": cfg.length + delay // 2,
               "end of delay": cfg.length + delay - 1, "end of recall": cfg.length + delay + cfg.length}
    plot_fields(ctx, field[0], charges[0], moments, name)
    plot_statistics(ctx, cfg, charges, name)
    animate(ctx, field[0, 0], charges[0, 0], cfg.length, delay, name)


def log_vortices(ctx: RunContext, step: int, tracks: VortexTracks, shape: torch.Size) -> None:
    """Density, mean lifetime, births per frame and the lifetime histogram of one measurement."""
    sequences, channels, frames, height, width = shape
    lattices = sequences * channels
    ctx.log(step, "vortices", float(tracks.counts.double().mean()) / (lattices * height * width), "density")
    ctx.log(step, "vortices", tracks.mean_lifetime(), "mean_lifetime")
    for bound, value in zip(("mean_lifetime_low", "mean_lifetime_high"), tracks.lifetime_interval()):
        ctx.log(step, "vortices", value, bound)
    ctx.log(step, "vortices", float(tracks.births.double().sum()) / (lattices * (frames - 1)), "births_per_frame")
    whole = tracks.lifetimes[~tracks.censored]
    lifetimes, counts = torch.unique(whole, return_counts=True)
    ctx.log_frame(pd.DataFrame({"step": step, "observable": "vortex_lifetimes", "metric": "tracks",
                                "lifetime": lifetimes.numpy(), "value": counts.double().numpy()}))


def _mark(ax, charges: torch.Tensor) -> None:
    """Vortices (+1) and antivortices (-1) of one frame at their plaquette centres."""
    for charge, style in ((1, dict(marker="o", facecolor="white", edgecolor="black", label="vortex (+1)")),
                          (-1, dict(marker="X", facecolor="black", edgecolor="white", label="antivortex (-1)"))):
        y, x = (charges == charge).nonzero(as_tuple=True)
        ax.scatter((x + 0.5).numpy(), (y + 0.5).numpy(), s=36, linewidths=0.8, **style)


def _phase_axes(ax, phase: torch.Tensor):
    image = ax.imshow(phase.numpy(), cmap="twilight", vmin=-math.pi, vmax=math.pi, origin="lower", interpolation="nearest")
    ax.set(xlabel="x (site)", ylabel="y (site)")
    return image


def plot_fields(ctx: RunContext, field: torch.Tensor, charges: torch.Tensor, moments: dict[str, int], name: str) -> None:
    """Phase of channel 0 of the first probe sequence at four moments, vortices marked."""
    fig = Figure(figsize=(3.2 * len(moments), 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(moments))
    for ax, (label, t) in zip(axes, moments.items()):
        image = _phase_axes(ax, torch.angle(field[0, t]))
        _mark(ax, charges[0, t])
        ax.set_title(f"{label} (t = {t})")
    fig.colorbar(image, ax=axes, label="phase arg z (rad)", shrink=0.8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2)
    fig.suptitle(f"{name}: phase of channel 0, first probe sequence")
    total = int(charges[0].ne(0).sum())
    ctx.figure("vortex_field", fig, f"{name}: the phase field of one channel at four moments of a copy-task "
                                    f"sequence, vortices marked ({total} vortex-frames in this channel).")


def plot_statistics(ctx: RunContext, cfg: ConvVorticesConfig, charges: torch.Tensor, name: str) -> None:
    """Vortices per plaquette against the time step, and the lifetime histograms at the first and
    the last measurement."""
    sequences, channels, frames, height, width = charges.shape
    fig = Figure(figsize=(10, 3.6), constrained_layout=True)
    ax1, ax2 = fig.subplots(1, 2)
    density = charges.ne(0).double().mean((0, 1, 3, 4))
    ax1.plot(range(frames), density.numpy(), "o-", ms=2.5)
    ax1.axvspan(-0.5, cfg.length - 0.5, color="tab:green", alpha=0.12, label="input symbols")
    ax1.axvline(cfg.length + cfg.max_delay / 2, color="grey", ls=":", label="mean delimiter step")
    ax1.set(xlabel="time step t of the sequence", ylabel="vortices per plaquette",
            title=f"after training, {sequences} sequences x {channels} channels")
    ax1.legend(loc="best")
    m = ctx.metrics
    lifetimes = series(m, "vortex_lifetimes", "tracks") if holds(m, "vortex_lifetimes", "tracks") else None
    ax2.set(xlabel="vortex lifetime (time steps)", ylabel="tracks (born and dead in the window)",
            title="lifetimes of linked vortex tracks")
    if lifetimes is not None and "lifetime" in lifetimes:
        for step, style in ((lifetimes.step.min(), "s--"), (lifetimes.step.max(), "o-")):
            at = lifetimes[lifetimes.step == step]
            ax2.plot(at.lifetime, at.value, style, ms=3, label=f"training step {int(step)}")
        ax2.set_yscale("log")
        ax2.legend(loc="upper right")
    else:
        ax2.text(0.5, 0.5, "no vortex track was born and died\ninside the window at any measurement",
                 ha="center", va="center", transform=ax2.transAxes)
    fig.suptitle(name)
    ctx.figure("vortex_statistics", fig, f"{name}: vortex density along the sequence after training, and the "
                                         f"lifetime distribution before and after training.")


def animate(ctx: RunContext, field: torch.Tensor, charges: torch.Tensor, length: int, delay: int, name: str) -> None:
    """GIF of the phase of one channel over every time step of one sequence, vortices marked."""
    fig = Figure(figsize=(4.4, 4.2), constrained_layout=True)
    ax = fig.subplots()
    image = _phase_axes(ax, torch.angle(field[0]))
    fig.colorbar(image, ax=ax, label="phase arg z (rad)", shrink=0.8)
    vortices = ax.scatter([], [], s=36, marker="o", facecolor="white", edgecolor="black")
    antivortices = ax.scatter([], [], s=36, marker="X", facecolor="black", edgecolor="white")

    def update(t: int) -> None:
        image.set_data(torch.angle(field[t]).numpy())
        for artist, charge in ((vortices, 1), (antivortices, -1)):
            y, x = (charges[t] == charge).nonzero(as_tuple=True)
            artist.set_offsets(torch.stack((x + 0.5, y + 0.5), 1).numpy())
        phase = ("input" if t < length else "delay" if t < length + delay else "delimiter" if t == length + delay
                 else "recall" if t <= length + delay + length else "after recall")
        ax.set_title(f"{name}\nt = {t} ({phase}); o vortex, X antivortex", fontsize=9)

    ctx.animation("vortex_movie", fig, update, len(field), f"{name}: the phase of channel 0 of the first probe "
                                                            f"sequence over all {len(field)} time steps.")

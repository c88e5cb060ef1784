"""Training on the variable-delay copy task, shared by the experiments that use it (`copy_task`,
`conv_rnn_vortices`): the task's keys, the fixed held-out sequences, the training run with its
evaluations, what the delay keeps of the state, the neutral modes of the trained recurrence and
the summary figure.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from goldstone.analysis.lyapunov import lyapunov_spectrum
from goldstone.analysis.phase_retention import phase_retention
from goldstone.core.config import param
from goldstone.core.frames import series
from goldstone.data.copy_task import IGNORE, CopyBatch, copy_accuracy, copy_batch
from goldstone.lab.run import RunContext
from goldstone.models.recurrent import EquivariantRNN, parameter_count
from goldstone.observables.jacobian import protected_direction
from goldstone.theory.neutral_modes import block_span, neutral_mode_count
from goldstone.training.loop import make_optimizer, train_loop


@dataclasses.dataclass
class CopySchedule:
    """The task and training keys of every copy-task experiment."""

    max_delay: int = param(25, "longest delay T_max (drawn uniformly in 1..T_max per sequence)",
                           label="longest delay T_max (steps)", ge=1, le=10_000)
    alphabet: int = param(8, "symbols to copy from", ge=2, le=1000)
    length: int = param(10, "symbols per sequence", ge=1, le=1000)
    steps: int = param(1500, "optimiser steps", ge=1)
    batch_size: int = param(128, "sequences per step", ge=1)
    lr: float = param(1e-3, "Adam learning rate", gt=0, le=10)
    eval_every: int = param(100, "steps between evaluations", ge=1)
    eval_size: int = param(512, "fixed evaluation sequences", ge=1)
    checkpoint_every: int = param(250, "steps between checkpoints", ge=1)


def held_out_batch(cfg: CopySchedule, seed: int) -> CopyBatch:
    """The fixed evaluation sequences of a run."""
    return copy_batch(cfg.eval_size, cfg.max_delay, cfg.alphabet, cfg.length, torch.Generator().manual_seed(2**31 + seed))


def train_copy(ctx: RunContext, cfg: CopySchedule, model: nn.Module, name: str,
               measurements: list[tuple[Callable[[int], bool], Callable[[int], None]]] = ()) -> None:
    """Train `model` (token one-hots (B, T, alphabet + 1) -> logits (B, T, alphabet) through
    `model.states` and `model.readout`) on the copy task with Adam, logging the loss, the held-out
    accuracies, what the delay keeps of the state (`log_delay_memory`) and `measurements`
    (schedule, fn)."""
    model = model.to(ctx.device)
    parameters = parameter_count(model)
    ctx.headline("parameters", parameters)
    optimizer = make_optimizer(model, "adam", lr=cfg.lr)
    held_out = held_out_batch(cfg, ctx.seed)

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            states = model.states(held_out.inputs.to(ctx.device))
            logits = model.readout(states).cpu()
            symbols, sequences = copy_accuracy(logits, held_out.targets)
            ctx.log(step, "eval", symbols, "symbol_accuracy")
            ctx.log(step, "eval", sequences, "success")
            log_delay_memory(ctx, step, cfg, model, states, held_out.delays.to(ctx.device))

    def loss_fn(step: int) -> torch.Tensor:
        batch = copy_batch(cfg.batch_size, cfg.max_delay, cfg.alphabet, cfg.length,
                           torch.Generator().manual_seed(ctx.seed * 1_000_003 + step))
        logits = model(batch.inputs.to(ctx.device))
        loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.to(ctx.device).flatten(), ignore_index=IGNORE)
        ctx.log_tensor(step + 1, "train", loss, "loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.checkpoint_every,
               measurements=[(lambda s: s % cfg.eval_every == 0 or s == cfg.steps, evaluate), *measurements],
               description=f"{name}, T_max = {cfg.max_delay}")
    if isinstance(model.recurrent, EquivariantRNN) and model.symmetry[0] != "generic":
        neutral_modes(ctx, model.recurrent, model.symmetry[0], held_out, cfg.length)
    summarise(ctx, cfg, name, parameters)


def log_delay_memory(ctx: RunContext, step: int, cfg: CopySchedule, model: nn.Module, states: torch.Tensor,
                     delays: torch.Tensor) -> None:
    """What the blank delay keeps of the state (`goldstone.analysis.phase_retention`), between the
    state after the last symbol and after the last blank of each held-out sequence: mean
    correlation and, for an equivariant recurrence, mean retention up to a group rotation, mean
    |rotation| (U(1)), and the protected direction's ratio and gain over the longest delay (means
    over the sequences whose states have not decayed to exactly zero)."""
    start = states[:, cfg.length - 1]
    end = states[torch.arange(len(states), device=states.device), cfg.length + delays - 1]
    memory = phase_retention(start, end, *(model.symmetry or ("generic", 1)))
    ctx.log(step, "delay", float(memory.correlation.nanmean()), "correlation")
    if model.symmetry is None:
        return
    group, k = model.symmetry
    ctx.log(step, "delay", float(memory.retention.nanmean()), "retention")
    if group == "u1":
        ctx.log(step, "delay", float(memory.rotation.abs().nanmean()), "rotation")
    ratio, gain = protected_direction(model.recurrent.blank_step, start, cfg.max_delay, k,
                                      torch.Generator().manual_seed(0))  # one generator T per run
    ctx.log(step, "delay", float(ratio.nanmean()), "protected_ratio")
    ctx.log(step, "delay", float(gain.nanmean()), "protected_gain")


LYAPUNOV_STEPS, LYAPUNOV_TOLERANCE, LYAPUNOV_TRAJECTORIES = 500, 0.01, 4


def neutral_modes(ctx: RunContext, recurrent: EquivariantRNN, group: str, held_out: CopyBatch, length: int) -> None:
    """Lyapunov spectrum of the trained blank recurrence (QR method, float64) from the states after
    the last symbol of a few held-out sequences, after a transient of as many steps: the exponents
    within `LYAPUNOV_TOLERANCE` of zero against dim(G/H) for the span of each final state's blocks.
    Theory fixes a lower bound: training may add slow directions of its own (memory), never remove
    the protected ones; the headline is the share of trajectories with at least dim(G/H)."""
    recurrent = copy.deepcopy(recurrent).double().cpu().requires_grad_(False)
    with torch.no_grad():
        start = recurrent(held_out.inputs[:LYAPUNOV_TRAJECTORIES, :length].double())[1]
    exponents = lyapunov_spectrum(recurrent.blank_step, start, LYAPUNOV_STEPS, transient=LYAPUNOV_STEPS)
    with torch.no_grad():
        h = start
        for _ in range(2 * LYAPUNOV_STEPS):
            h = recurrent.blank_step(h)
    rows = []
    for b in range(len(start)):
        theory = neutral_mode_count(group, recurrent.k, block_span(h[b], recurrent.k))
        rows.append({"trajectory": b, "near_zero": int((exponents[b].abs() < LYAPUNOV_TOLERANCE).sum()),
                     "theory": theory, "largest": float(exponents[b, 0]),
                     "next_after_theory": float(exponents[b, theory]) if theory < exponents.shape[1] else float("nan"),
                     "final_norm": float(h[b].norm())})
    table = pd.DataFrame(rows)
    ctx.table("neutral_modes", table, f"Lyapunov exponents of the trained blank recurrence within "
                                      f"{LYAPUNOV_TOLERANCE} of zero against dim(G/H), their lower bound (QR method, "
                                      f"{LYAPUNOV_STEPS} steps after a transient of as many).")
    ctx.headline("neutral_modes_protected", float((table.near_zero >= table.theory).mean()))


def summarise(ctx: RunContext, cfg: CopySchedule, name: str, parameters: int) -> None:
    m = ctx.metrics
    success = series(m, "eval", "success")
    symbols = series(m, "eval", "symbol_accuracy")
    ctx.headline("final_success", success.value.iloc[-1])
    ctx.headline("final_symbol_accuracy", symbols.value.iloc[-1])
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    loss = series(m, "train", "loss")
    ax1.plot(loss.step, loss.value, lw=0.6)
    ax1.axhline(torch.log(torch.tensor(float(cfg.alphabet))).item(), color="grey", ls=":", label="chance (ln alphabet)")
    ax1.set(xlabel="training step", ylabel="cross-entropy on answers (nats)",
            yscale="log" if loss.value.max() > 10 * loss.value.min() else "linear")  # decades only when spanned
    ax2.plot(symbols.step, symbols.value, "o-", ms=3, label="answer symbols right")
    ax2.plot(success.step, success.value, "s-", ms=3, label="sequences copied")
    ax2.axhline(1 / cfg.alphabet, color="grey", ls=":", label="chance (symbols)")
    ax2.set(xlabel="training step", ylabel="share (held-out sequences)", ylim=(0, 1.02))
    handles = [h for ax in (ax1, ax2) for h in ax.get_lines() if not h.get_label().startswith("_")]
    fig.legend(handles, [h.get_label() for h in handles], loc="outside right center", fontsize=8)  # covers no data
    fig.suptitle(f"{name}, T_max = {cfg.max_delay}, {parameters} parameters")
    ctx.figure("training", fig, f"Copy task, T_max = {cfg.max_delay}: {name} copies "
                                f"{success.value.iloc[-1]:.0%} of held-out sequences at the end.")

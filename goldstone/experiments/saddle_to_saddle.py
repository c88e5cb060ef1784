"""Saddle-to-saddle learning in a deep linear network, against its per-mode theory.

"Saddle-to-Saddle Dynamics in Deep Linear Networks" (Jacot et al., 2021) and "Parameter Symmetry
Breaking and Restoration Determines the Hierarchical Learning in AI Systems" (Ziyin et al., 2025):
from a small init the network sits near the symmetric saddle at the origin and learns the teacher's
modes one after another, each escape breaking one more reflection of the hidden rotation
symmetry. Full-batch GD on the population loss 1/2 |W_L ... W_1 - T|_F^2 (whitened inputs),
float64. Theory (`goldstone.theory.linear_networks`): the loss plateaus 1/2 sum_{j>k} s_j^2, and
each mode's strength a_i = u_i^T W v_i from da/dt = L a^{2-2/L} (s_i - a), started where the mode
first holds 1% of its strength (the theory assumes an aligned, balanced start; the random init
first aligns, which it does not describe).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from goldstone.core.frames import series
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.models.deep_linear_config import LinearTeacherConfig, singular_values, teacher_and_student
from goldstone.theory.linear_networks import half_time, mode_strength, plateau_losses
from goldstone.training.loop import train_loop

START = 0.01
"""The share of its strength a mode holds where the theory curve starts (the measured anchor)."""


LABELS = {"half_time_error": "half-time, max |measured/theory - 1|",
          "half_time_product_spread": "spread of t_½·s over modes (std/mean)"}


@experiment("saddle_to_saddle", LinearTeacherConfig, "deep linear network: modes learned one by one (saddle to saddle), "
            "against theory", curve=("train", "loss"), labels=LABELS, metric="half_time_error")
def train(ctx: RunContext) -> None:
    cfg: LinearTeacherConfig = ctx.config
    s = singular_values(cfg.singular_values)
    teacher, u, v, model = teacher_and_student(cfg, ctx.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)

    def log_modes(step: int) -> None:
        with torch.no_grad():
            strengths = (u.T @ model.end_to_end() @ v).diagonal()
        for i, a in enumerate(strengths.tolist()):
            ctx.log(step, "mode", a, "strength", mode=i)

    def loss_fn(step: int) -> torch.Tensor:
        loss = 0.5 * (model.end_to_end() - teacher).pow(2).sum()
        ctx.log_tensor(step, "train", loss, "loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, measurements=[(1, log_modes)], checkpoint=cfg.steps,
               description=f"saddle to saddle, L = {cfg.depth}, σ = {cfg.init_scale:g}")
    summarise(ctx, cfg, s)


def summarise(ctx: RunContext, cfg: LinearTeacherConfig, s: list[float]) -> None:
    m = ctx.metrics
    modes = series(m, "mode", "strength").pivot(index="step", columns="mode", values="value").sort_index()
    steps = modes.index.to_numpy()
    rows, errors, products = [], [], []
    fig = Figure(figsize=(14, 3.8), constrained_layout=True)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for i, si in enumerate(s):
        a = modes[i].to_numpy()
        reached = np.nonzero(a >= si / 2)[0]
        anchor = np.nonzero(a >= START * si)[0]
        colour = f"C{i}"
        ax2.plot(steps, a / si, color=colour, lw=1.5, label=f"s = {si:g}")
        if not len(reached) or not len(anchor):
            rows.append({"mode": i, "s": si, "half_time": np.nan, "theory": np.nan})
            continue
        start = anchor[0]
        theory = steps[start] + (half_time(si, a[start], cfg.depth) / cfg.lr)
        measured = steps[reached[0]]
        errors.append(abs(measured / theory - 1))
        products.append(measured * si)
        rows.append({"mode": i, "s": si, "half_time": measured, "theory": theory, "start": steps[start]})
        ctx.headline(f"half_time_{i}", float(measured))
        later = steps[start:]
        ax2.plot(later, mode_strength((later - steps[start]) * cfg.lr, si, a[start], cfg.depth) / si, color="k",
                 ls="--", lw=0.8, label="theory (from 1%)" if i == 0 else None)
    loss = series(m, "train", "loss")
    ax1.plot(loss.step, loss.value, color="C0", lw=1.5, label="measured")
    for k, level in enumerate(plateau_losses(s)[1:-1], start=1):
        ax1.axhline(level, color="grey", ls=":", lw=0.8, label="plateaus ½Σ_{j>k} s_j²" if k == 1 else None)
    ax1.set(xlabel="GD step", ylabel="loss ½|W − T|²", yscale="log", title="loss")
    ax1.legend(fontsize=7)
    ax2.set(xlabel="GD step", ylabel="mode strength a_i / s_i", title="modes, one after another")
    ax2.legend(fontsize=7, loc="center", bbox_to_anchor=(0.62, 0.5))
    table = pd.DataFrame(rows)
    done = table.dropna()
    ax3.plot(1 / done.s, done.half_time, "o", label="measured")
    ax3.plot(1 / done.s, done.theory, "kx", label="theory")
    ax3.set(xlabel="1 / s_i", ylabel="half-time (GD steps)", title="t_½ against 1/s")
    ax3.legend(fontsize=7)
    fig.suptitle(f"deep linear network, L = {cfg.depth}, σ = {cfg.init_scale:g}, η = {cfg.lr:g}")
    ctx.figure("saddle_to_saddle", fig, "Loss with the theory's plateaus, each mode's strength with its theory "
               "curve started where the mode holds 1%, and the half-times against 1/s.")
    ctx.table("half_times", table, "Steps until each mode reaches half its strength: measured, and theory "
              "(started from the step at which the mode first holds 1% of its strength).")
    if errors:
        ctx.headline("half_time_error", max(errors))
        ctx.headline("half_time_product_spread", float(np.std(products) / np.mean(products)))
    ctx.headline("modes_learned", float(len(errors)))

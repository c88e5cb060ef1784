"""Symmetry restoration by weight decay: the rank of a deep linear network against theory.

"Symmetry Induces Structure and Constraint of Learning" (Ziyin, 2024): with weight decay the
network is pulled onto the fixed points of its rotation symmetry, one unused hidden direction per
restored reflection, so the rank of W_L ... W_1 falls as lambda grows. Theory
(`goldstone.theory.linear_networks`, whitened inputs, weight decay lambda on every matrix,
grad += lambda theta): sigma_i = max(s_i - lambda, 0) at depth 2, a staircase of continuous
transitions at lambda = s_i; at depth 3 and more each mode jumps to 0 (first order) at the
weight decay where its broken minimum stops being the global one, and a run from a large init can
stay on the broken branch up to the spinodal (hysteresis), while one from a small init can be
trapped at 0. Sweep weight_decay (and init_scale) for the phase diagram.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.core.frames import series
from goldstone.lab.registry import Theory, experiment
from goldstone.lab.run import RunContext
from goldstone.models.deep_linear_config import LinearTeacherConfig, singular_values, teacher_and_student
from goldstone.theory.linear_networks import broken_branch, regularised_singular_value
from goldstone.training.loop import train_loop

RANK_FLOOR = 1e-3
"""Singular values above this (absolute) count towards the rank."""


@dataclasses.dataclass
class TransitionConfig(LinearTeacherConfig):
    dim: int = param(12, "input and output dimension", ge=1)
    width: int = param(12, "hidden width", ge=1)
    weight_decay: float = param(1.5, "weight decay lambda on every matrix (grad += lambda theta)",
                                label="weight decay λ", ge=0, le=100)
    init_scale: float = param(0.3, "std of every weight entry at initialisation", label="init scale σ", gt=0, le=10)
    steps: int = param(6000, "GD steps", ge=1)

    def logged_rows(self) -> int:
        """The loss every 50 steps, the singular values at 100 moments."""
        return self.steps // 50 + 101 * (2 + len(singular_values(self.singular_values)))


def theory_values(cfg: TransitionConfig) -> list[float]:
    """Per mode, sigma at the global minimum of the regularised loss."""
    return [regularised_singular_value(s, cfg.weight_decay, cfg.depth) for s in singular_values(cfg.singular_values)]


def stationary_values(cfg: TransitionConfig) -> list[list[float]]:
    """Per mode, the stable stationary sigma a run can end on: max(s - lambda, 0) at depth 2; at
    depth >= 3 the origin (always locally stable) and the broken branch while it exists."""
    if cfg.depth == 2:
        return [[v] for v in theory_values(cfg)]
    branches = [broken_branch(s, cfg.weight_decay, cfg.depth) for s in singular_values(cfg.singular_values)]
    return [[0.0] + ([b] if b is not None else []) for b in branches]


def theory_rank(weight_decay, params: dict) -> object:
    """#{modes whose global-minimum sigma is > 0}: #{s_i > lambda} at depth 2."""
    import numpy as np

    s = singular_values(str(params.get("singular_values", TransitionConfig.singular_values)))
    depth = int(params.get("depth", TransitionConfig.depth))
    return np.array([sum(regularised_singular_value(si, float(lam), depth) > 0 for si in s)
                     for lam in np.atleast_1d(weight_decay)], float)


LABELS = {"rank": "rank of W_L⋯W_1", "sigma_error": "max |σ_i − nearest stable stationary value|",
          "rank_global_minimum": "rank at the global minimum"}


@experiment("weight_decay_transition", TransitionConfig, "weight decay restores rotation symmetry: rank of a deep "
            "linear net vs lambda, against theory", labels=LABELS, metric="rank",
            theory=Theory("weight_decay", "theory: global-minimum rank", theory_rank,
                          lambda p: f"theory rank, L = {p.get('depth', TransitionConfig.depth)}", same_axis=True))
def train(ctx: RunContext) -> None:
    cfg: TransitionConfig = ctx.config
    s = singular_values(cfg.singular_values)
    teacher, _, _, model = teacher_and_student(cfg, ctx.seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def loss_fn(step: int) -> torch.Tensor:
        loss = 0.5 * (model.end_to_end() - teacher).pow(2).sum()
        if step % 50 == 0:
            ctx.log_tensor(step, "train", loss, "loss")
        return loss

    def log_sigma(step: int) -> None:
        with torch.no_grad():
            sigma = torch.linalg.svdvals(model.end_to_end())
        for i, value in enumerate(sigma[:len(s) + 1].tolist()):
            ctx.log(step, "sigma", value, "value", mode=i)

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, measurements=[(max(cfg.steps // 100, 1), log_sigma)],
               checkpoint=cfg.steps, description=f"weight decay {cfg.weight_decay:g}, L = {cfg.depth}")
    with torch.no_grad():
        sigma = torch.linalg.svdvals(model.end_to_end())
    theory = theory_values(cfg)
    measured = sigma[:len(s)].tolist()
    candidates = stationary_values(cfg)
    ctx.headline("rank", float((sigma > RANK_FLOOR).sum()))
    ctx.headline("rank_global_minimum", float(sum(v > 0 for v in theory)))
    ctx.headline("sigma_error", max(min(abs(a - c) for c in options) for a, options in zip(measured, candidates)))
    ctx.table("singular_values", pd.DataFrame({"s": s, "measured": measured, "global_minimum": theory,
                                               "stable_stationary": [", ".join(f"{c:.4g}" for c in options)
                                                                     for options in candidates]}),
              f"End-to-end singular values after {cfg.steps} steps against the global minimum of the regularised "
              "loss (depth 2: max(s − λ, 0)) and the stable stationary values a run can end on (depth ≥ 3: 0 and "
              "the broken branch up to its spinodal).")
    figure(ctx, cfg, s, theory)


def figure(ctx: RunContext, cfg: TransitionConfig, s: list[float], theory: list[float]) -> None:
    m = ctx.metrics
    sigma = series(m, "sigma", "value").pivot(index="step", columns="mode", values="value").sort_index()
    fig = Figure(figsize=(6, 3.8), constrained_layout=True)
    ax = fig.subplots()
    for i in range(len(s)):
        ax.plot(sigma.index, sigma[i], color=f"C{i}", lw=1.5, label=f"σ_{i + 1} (teacher s = {s[i]:g})")
        ax.axhline(theory[i], color=f"C{i}", ls="--", lw=0.8)
    ax.plot([], [], "k--", lw=0.8, label="theory (global minimum)")
    ax.set(xlabel="GD step", ylabel="singular value of W_L⋯W_1", yscale="symlog",
           title=f"L = {cfg.depth}, λ = {cfg.weight_decay:g}, σ_init = {cfg.init_scale:g}")
    ax.legend(fontsize=7, loc="center right")
    ctx.figure("singular_values", fig, "End-to-end singular values during training (solid) against the theory's "
               "global minimum (dashed).")

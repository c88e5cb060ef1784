"""SGD noise as a restoring force: collapse onto the symmetric state without any weight decay.

"Stochastic Collapse: How Gradient Noise Attracts SGD Dynamics Towards Simpler Subnetworks" (Chen,
Kunin et al., 2023) and "Parameter Symmetry and Noise Equilibrium of SGD". Toy of the research notes:
f = u w x, y = beta x + sigma eps (x, eps standard normal), loss 1/2 (f - y)^2, no weight decay, online
SGD from u = w = 0.3. Each step multiplies v = u + w by exactly 1 - eta g, g the batch mean of
(u w x - y) x; near the symmetric state that is 1 + eta m (m the batch mean of x y), and the state
attracts iff the Lyapunov exponent lambda = E log|1 + eta m| < 0
(`goldstone.theory.stochastic_collapse`, exact for every batch size B).

A run measures the growth rate of log|u + w|: the mean of log|1 - eta g| over the steps it spends
in the linear regime |u w| < beta / 10, an estimate of lambda. It has collapsed when it ends in that
regime with a negative rate (a decision a 1e-8 snapshot of |u w| gets wrong near the boundary, where
learning runs wander low for long stretches).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.lab.registry import Theory, experiment
from goldstone.lab.run import RunContext
from goldstone.theory.stochastic_collapse import lyapunov_exponent

LINEAR = 0.1
"""The linear regime: |u w| below this share of beta."""


@dataclasses.dataclass
class CollapseToyConfig:
    lr: float = param(0.05, "SGD learning rate eta", label="learning rate η", gt=0, le=1)
    batch_size: int = param(1, "examples per step B", label="batch size B", ge=1)
    beta: float = param(0.1, "teacher slope beta", gt=0, le=10)
    noise: float = param(2.0, "label noise sigma", ge=0, le=100)
    init: float = param(0.3, "u = w at the start", gt=0, le=10)
    steps: int = param(20000, "SGD steps", ge=1)


def _exponent(lr, params: dict) -> np.ndarray:
    return lyapunov_exponent(lr, float(params.get("beta", CollapseToyConfig.beta)),
                             float(params.get("noise", CollapseToyConfig.noise)),
                             int(params.get("batch_size", CollapseToyConfig.batch_size)))


def predicted_collapse(lr, params: dict) -> object:
    """1 where the exact Lyapunov exponent is negative (collapse), else 0."""
    return (_exponent(lr, params) < 0).astype(float)


LABELS = {"collapsed": "collapsed (negative growth rate of log|u + w|)",
          "growth_rate": "measured growth rate of log|u + w| per step",
          "lyapunov_exponent": "Lyapunov exponent λ = E log|1 + ηm| (theory)", "final_product": "final |u w|",
          "diverged": "diverged (|u w| not finite)"}


@experiment("sgd_collapse", CollapseToyConfig, "SGD noise collapses a scalar product net onto its symmetric state, "
            "against the exact Lyapunov exponent", labels=LABELS, metric="collapsed",
            theory=Theory("lr", "theory: collapse where λ < 0", predicted_collapse,
                          lambda p: f"theory, B = {p.get('batch_size', CollapseToyConfig.batch_size)}",
                          same_axis=True))
def train(ctx: RunContext) -> None:
    cfg: CollapseToyConfig = ctx.config
    generator = torch.Generator().manual_seed(ctx.seed)
    u = w = cfg.init
    chunk = 1000
    products = []
    log_growth, linear_steps = 0.0, 0
    for start in range(0, cfg.steps, chunk):  # samples drawn per chunk; the recursion itself is sequential
        count = min(chunk, cfg.steps - start)
        x = torch.randn(count, cfg.batch_size, generator=generator, dtype=torch.float64).numpy()
        eps = torch.randn(count, cfg.batch_size, generator=generator, dtype=torch.float64).numpy()
        y = cfg.beta * x + cfg.noise * eps
        for k in range(count):
            residual = u * w * x[k] - y[k]
            g = float((residual * x[k]).mean())  # d loss / d(uw)
            if abs(u * w) < LINEAR * cfg.beta:
                log_growth += np.log(abs(1 - cfg.lr * g))  # u + w <- (1 - eta g)(u + w), exactly
                linear_steps += 1
            u, w = u - cfg.lr * g * w, w - cfg.lr * g * u
            if not np.isfinite(u * w):
                break
        products.append((start + count, u * w))
        ctx.log(start + count, "toy", abs(u * w), "product")
    final = abs(u * w)
    rate = log_growth / linear_steps if linear_steps else float("nan")
    theory = float(_exponent(cfg.lr, dataclasses.asdict(cfg))[0])
    ctx.headline("collapsed", float(final < LINEAR * cfg.beta and rate < 0))
    ctx.headline("growth_rate", rate)
    ctx.headline("lyapunov_exponent", theory)
    ctx.headline("final_product", final)
    ctx.headline("diverged", float(not np.isfinite(final)))
    fig = Figure(figsize=(5.5, 3.6), constrained_layout=True)
    ax = fig.subplots()
    steps, values = zip(*products)
    ax.plot(steps, np.maximum(np.abs(values), 1e-300), "o-", ms=3, label="|u w| (measured)")
    ax.axhline(cfg.beta, color="grey", ls=":", label="β (the learned product)")
    ax.axhline(LINEAR * cfg.beta, color="k", ls="--", lw=0.8, label="edge of the linear regime (β/10)")
    ax.set(xlabel="SGD step", ylabel="|u w|", yscale="log",
           title=f"η = {cfg.lr:g}, B = {cfg.batch_size}: λ = {theory:+.2e} ({'collapse' if theory < 0 else 'learn'} "
                 f"predicted), measured {rate:+.2e}")
    ax.legend(fontsize=7)
    ctx.figure("collapse", fig, "The product u w under online SGD without weight decay; the title compares the "
               "exact Lyapunov exponent λ = E log|1 + ηm| of the linearised dynamics with the growth rate of "
               "log|u + w| measured in the linear regime.")

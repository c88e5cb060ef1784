"""SGD noise as a restoring force: collapse onto the symmetric state without any weight decay.

"Stochastic Collapse: How Gradient Noise Attracts SGD Dynamics Towards Simpler Subnetworks" (Chen,
Kunin et al., 2023) and "Parameter Symmetry and Noise Equilibrium of SGD": near a symmetric state
the breaking coordinate v obeys v <- (1 - eta h_t) v with h_t the mini-batch curvature along it,
so v -> 0 almost surely when E log|1 - eta h| < 0, to second order when

    c = E[h] + (eta / 2) E[h^2] / B > 0

(B the batch size): a saddle of the mean loss (E[h] < 0) is attractive when the noise is large.
Toy of the research notes: f = u w x, y = beta x + sigma eps (x, eps standard normal), loss
1/2 (f - y)^2, no weight decay, start u = w = 0.3. At the symmetric state u = w = 0 the growing
direction (1, 1)/sqrt(2) has h = -x y, so E[h] = -beta and E[h^2] = 3 beta^2 + sigma^2 (Gaussian
fourth moment). Online SGD with fresh samples; the run collapses when |u w| < 1e-8.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.lab.registry import Theory, experiment
from goldstone.lab.run import RunContext

COLLAPSED = 1e-8


@dataclasses.dataclass
class CollapseToyConfig:
    lr: float = param(0.05, "SGD learning rate eta", label="learning rate η", gt=0, le=1)
    batch_size: int = param(1, "examples per step B", label="batch size B", ge=1)
    beta: float = param(0.1, "teacher slope beta", gt=0, le=10)
    noise: float = param(2.0, "label noise sigma", ge=0, le=100)
    init: float = param(0.3, "u = w at the start", gt=0, le=10)
    steps: int = param(20000, "SGD steps", ge=1)


def criterion(lr, params: dict) -> object:
    """c = -beta + (eta / 2)(3 beta^2 + sigma^2) / B: collapse predicted where c > 0."""
    beta = float(params.get("beta", CollapseToyConfig.beta))
    noise = float(params.get("noise", CollapseToyConfig.noise))
    batch = float(params.get("batch_size", CollapseToyConfig.batch_size))
    return -beta + np.asarray(lr, float) / 2 * (3 * beta ** 2 + noise ** 2) / batch


def predicted_collapse(lr, params: dict) -> object:
    return (criterion(lr, params) > 0).astype(float)


LABELS = {"collapsed": "collapsed (|uw| < 1e-8)", "criterion": "c = E[h] + (η/2)E[h²]/B",
          "final_product": "final |u w|"}


@experiment("sgd_collapse", CollapseToyConfig, "SGD noise collapses a scalar product net onto its symmetric state, "
            "against the stochastic criterion", labels=LABELS, metric="collapsed",
            theory=Theory("lr", "theory: collapse where c > 0", predicted_collapse,
                          lambda p: f"theory, B = {p.get('batch_size', CollapseToyConfig.batch_size)}",
                          same_axis=True))
def train(ctx: RunContext) -> None:
    cfg: CollapseToyConfig = ctx.config
    generator = torch.Generator().manual_seed(ctx.seed)
    u = w = cfg.init
    chunk = 1000
    products = []
    for start in range(0, cfg.steps, chunk):  # samples drawn per chunk; the recursion itself is sequential
        count = min(chunk, cfg.steps - start)
        x = torch.randn(count, cfg.batch_size, generator=generator, dtype=torch.float64).numpy()
        eps = torch.randn(count, cfg.batch_size, generator=generator, dtype=torch.float64).numpy()
        y = cfg.beta * x + cfg.noise * eps
        for k in range(count):
            residual = u * w * x[k] - y[k]
            g = float((residual * x[k]).mean())  # d loss / d(uw)
            u, w = u - cfg.lr * g * w, w - cfg.lr * g * u
            if not np.isfinite(u * w):
                break
        products.append((start + count, u * w))
        ctx.log(start + count, "toy", abs(u * w), "product")
    final = abs(u * w)
    c = float(criterion(cfg.lr, {"beta": cfg.beta, "noise": cfg.noise, "batch_size": cfg.batch_size}))
    ctx.headline("collapsed", float(final < COLLAPSED))
    ctx.headline("criterion", c)
    ctx.headline("final_product", final)
    fig = Figure(figsize=(5.5, 3.6), constrained_layout=True)
    ax = fig.subplots()
    steps, values = zip(*products)
    ax.plot(steps, np.maximum(np.abs(values), 1e-300), "o-", ms=3, label="|u w| (measured)")
    ax.axhline(cfg.beta, color="grey", ls=":", label="β (the learned product)")
    ax.axhline(COLLAPSED, color="k", ls="--", lw=0.8, label="collapse threshold")
    ax.set(xlabel="SGD step", ylabel="|u w|", yscale="log",
           title=f"η = {cfg.lr:g}, B = {cfg.batch_size}: c = {c:+.3f} ({'collapse' if c > 0 else 'learn'} predicted)")
    ax.legend(fontsize=7)
    ctx.figure("collapse", fig, "The product u w under online SGD without weight decay, against the criterion "
               "c = E[h] + (η/2)E[h²]/B of the linearised stochastic dynamics.")

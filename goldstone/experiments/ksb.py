"""Kinetic symmetry breaking: does letting the scale-invariant weights' norms move help SGD?

"Noether's Learning Dynamics: Role of Symmetry Breaking in Neural Networks" (Tanaka & Kunin,
NeurIPS 2021), Fig. 3: finite learning rate and momentum break the scale symmetry of weights
feeding BatchNorm through the kinetic term, which grows their norms r and so lowers their
effective learning rate eta / r^2 (an implicit adaptive optimiser). The ablation trains the same
BatchNorm MLP with the norms free ("unconstrained") or reset to their initial values after every
step ("norm-frozen", `constrain`). The paper finds the free norms help at large eta with
momentum and make no difference at small eta. Sweep lr x momentum x constrain over seeds.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from goldstone.core.config import param
from goldstone.core.frames import series
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.models.relu_mlp_config import (SGDTrainingConfig, batch, batch_loss, evaluate, model_for,
                                               prepared_data)
from goldstone.observables.symmetry_detection import detect_symmetries
from goldstone.theory.noether import ChargeMap
from goldstone.theory.noether.families import group_families
from goldstone.training.loop import train_loop


@dataclasses.dataclass
class KSBConfig(SGDTrainingConfig):
    dataset: str = param("mnist1d", "data set", choices=("digits", "mnist1d"))
    width: int = param(256, "hidden units per layer", ge=1)
    lr: float = param(0.3, "learning rate eta", label="learning rate η", gt=0, le=10)
    steps: int = param(4000, "optimiser steps", ge=1)
    batch_size: int = param(128, "batch size", ge=1)
    eval_every: int = param(500, "steps between test evaluations", ge=1)
    constrain: bool = param(False, "norm-frozen: after every step, scale each scale group back to its initial norm",
                            label="norms")


LABELS = {"constrain=False": "free (unconstrained)", "constrain=True": "frozen at their initial values",
          "test_accuracy": "final test accuracy", "radius_ratio": "r / r(0) at the end (median over scale groups)"}


@experiment("ksb", KSBConfig, "kinetic symmetry breaking: BatchNorm MLP with free vs frozen weight norms (NLD Fig. 3)",
            curve=("test", "accuracy"), labels=LABELS, metric="test_accuracy")
def train(ctx: RunContext) -> None:
    cfg: KSBConfig = ctx.config
    data = prepared_data(cfg, ctx.device)
    model = model_for(cfg, data, ctx.seed, ctx.device)
    symmetries = detect_symmetries(model, [batch(cfg, data, -1, ctx.seed)], F.cross_entropy)
    scale = [g for g in symmetries if g.kind == "scale"]
    params = dict(model.named_parameters())
    norms = ChargeMap(scale, {n: p.shape for n, p in params.items()}, ctx.device)
    squared = lambda: norms.reduce(lambda n: params[n].detach() ** 2)  # noqa: E731
    start = squared()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    loss_fn = batch_loss(cfg, data, model, ctx.seed, ctx.log_tensor)

    def freeze(step: int) -> None:
        """Scale every scale group back to its initial norm (the NLD paper's constrained training)."""
        factors = (start / squared()).sqrt()
        position = 0
        with torch.no_grad():
            for family, _ in group_families(scale):
                moved = family.transform(params, factors[position:position + family.count])
                position += family.count
                for name, value in moved.items():
                    params[name].copy_(value)

    measurements = [(lambda s: s % cfg.eval_every == 0 or s == cfg.steps,
                     lambda s: ctx.log(s, "test", evaluate(model, data), "accuracy"))]
    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.checkpoint_every,
               measurements=([(1, freeze)] if cfg.constrain else []) + measurements,
               description=f"ksb: η = {cfg.lr:g}, β = {cfg.momentum:g}, norms {'frozen' if cfg.constrain else 'free'}")
    m = ctx.metrics
    ctx.headline("test_accuracy", series(m, "test", "accuracy").value.iloc[-1])
    ctx.headline("radius_ratio", float((squared() / start).sqrt().median()))

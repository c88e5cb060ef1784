"""Representation formation: the Canonical Representation Hypothesis' alignments along training.

"Formation of Representations in Neural Networks" (Ziyin, Chuang, Galanti, Poggio, 2024): a balance
of SGD noise and weight decay aligns each layer's activation covariance H with W^T W (or W W^T)
and with the gradient covariance G. A ReLU MLP trained by SGD with momentum on a small data set;
`RepresentationAlignment` measures the six cosines of every Linear on a fixed batch of training
examples at every evaluation. Sweep the weight decay (and the batch size, the noise) to see the
alignment form; the theory predicts it grows with weight decay.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.core.frames import series
from goldstone.core.observable import measure
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.models.relu_mlp_config import SGDTrainingConfig, batch_loss, evaluate, model_for, prepared_data
from goldstone.observables.representation_alignment import PAIRS, RepresentationAlignment
from goldstone.training.loop import train_loop

@dataclasses.dataclass
class FormationConfig(SGDTrainingConfig):
    batch_norm: bool = param(False, "BatchNorm after every hidden Linear (off: the CRH's plain layers)")
    lr: float = param(0.05, "learning rate eta", label="learning rate η", gt=0, le=10)
    weight_decay: float = param(1e-3, "weight decay lambda (L2, on every parameter)", label="weight decay λ", ge=0,
                                le=1)
    batch_size: int = param(32, "batch size (the SGD noise: smaller is noisier)", label="batch size", ge=1)
    steps: int = param(4000, "optimiser steps", label="steps n", ge=1)
    eval_every: int = param(500, "steps between test evaluations and alignment measurements", ge=1)
    probe_size: int = param(512, "training examples the alignments are measured on", ge=2)


LABELS = {"mean_alignment": "mean CRH cosine (all layers and pairs)", "test_accuracy": "final test accuracy"}


@experiment("representation_formation", FormationConfig, "CRH: the alignment of activations, weights and gradients "
            "forming under weight decay and SGD noise", curve=("alignment", "mean"), labels=LABELS,
            metric="mean_alignment")
def train(ctx: RunContext) -> None:
    cfg: FormationConfig = ctx.config
    data = prepared_data(cfg, ctx.device)
    model = model_for(cfg, data, ctx.seed, ctx.device)
    probe = (data.x_train[:cfg.probe_size], data.y_train[:cfg.probe_size])
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    loss_fn = batch_loss(cfg, data, model, ctx.seed, ctx.log_tensor)

    def observe(step: int) -> None:
        (result,) = measure(model, [RepresentationAlignment(probe, F.cross_entropy)])
        ctx.log_results(step, [result])
        ctx.log(step, "alignment", float(np.nanmean(result.alignment.numpy())), "mean")
        ctx.log(step, "test", evaluate(model, data), "accuracy")

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.checkpoint_every,
               measurements=[(lambda s: s % cfg.eval_every == 0 or s == cfg.steps, observe)],
               description=f"representation formation: λ = {cfg.weight_decay:g}, B = {cfg.batch_size}")
    m = ctx.metrics
    ctx.headline("mean_alignment", series(m, "alignment", "mean").value.iloc[-1])
    ctx.headline("test_accuracy", series(m, "test", "accuracy").value.iloc[-1])
    figure(ctx, cfg)


def figure(ctx: RunContext, cfg: FormationConfig) -> None:
    """Each pair's cosine along training, one line per layer."""
    rows = series(ctx.metrics, "representation_alignment", "alignment")
    fig = Figure(figsize=(12, 5.6), constrained_layout=True)
    axes = fig.subplots(2, 3, sharex=True, sharey=True).ravel()
    for ax, pair in zip(axes, PAIRS):
        for layer, part in rows[rows.pair == pair].groupby("layer", sort=False):
            ax.plot(part.step, part.value, "o-", ms=3, label=f"Linear {layer}")
        ax.set(title=pair.replace("~", " ~ "), ylim=(0, 1.02))
        ax.label_outer()
    for ax in axes[3:]:
        ax.set_xlabel("SGD step")
    for ax in axes[::3]:
        ax.set_ylabel("cos(A, B) = Tr(AB)/(|A| |B|)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(f"CRH alignments, weight decay λ = {cfg.weight_decay:g}, batch {cfg.batch_size}")
    ctx.figure("alignment", fig, "The six CRH cosines of every linear layer along training (the first layer reads "
                                 "the data, so it has no input-gradient covariance).")

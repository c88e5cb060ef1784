"""The plain ReLU MLP of the Noether experiments: Linear(-BatchNorm)-ReLU blocks, then a Linear head.

With BatchNorm every hidden Linear channel is scale-invariant and every BatchNorm channel forms a
rescale pair with the next Linear's column; without it, every hidden unit is a rescale pair; the
head's columns and bias are translation-invariant under softmax cross-entropy.
"""

from __future__ import annotations

from torch import nn


def relu_mlp(features: int, width: int, depth: int, classes: int, batch_norm: bool = True, eps: float = 1e-5
             ) -> nn.Sequential:
    """`depth` hidden blocks of `width` units: Linear, BatchNorm (if `batch_norm`, with `eps`), ReLU."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(features if i == 0 else width, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width, eps=eps))
        layers.append(nn.ReLU())
    layers.append(nn.Linear(width if depth else features, classes))
    return nn.Sequential(*layers)

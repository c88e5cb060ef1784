"""The crossover of accuracy per label as the number of nodes in a head grows, with its convex-hull bound.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter): through a fixed
readout, a random subset of n nodes of a head predicts K(n) distinct labels. Its accuracy per label

    A(n) = mean over the labels it predicts of (correct predictions of label a / examples of label a)

first falls with n, like the 1/K(n) of random guessing among more reachable outputs, then rises where the
nodes cooperate; n = d_head is the full head. The labels a subset can ever predict are bounded by the number
of vertices of the upper convex hull of its lifted readout rows (`goldstone.theory.readout_bound`), exactly
so when the subset feeds the readout linearly, as here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from goldstone.core.result import Result, dims
from goldstone.observables.unit_performance import Readout, UnitGroups, unit_bias, unit_performance
from goldstone.theory.readout_bound import readout_bound


@dataclasses.dataclass
class CrossoverResult(Result):
    """Per subset size (S) and subset (R, `count` per head, heads in order): A(n), K(n) and the hull bound."""
    observable = "crossover"
    size: torch.Tensor = dims("size")
    accuracy_per_label: torch.Tensor = dims("size", "subset")
    predicted_labels: torch.Tensor = dims("size", "subset")
    bound: torch.Tensor = dims("size", "subset")
    head: torch.Tensor = dims("size", "subset")


def subset_sizes(head_dim: int) -> list[int]:
    """1, 2, 4, ... up to d_head, with d_head itself last."""
    sizes = [2 ** i for i in range(head_dim.bit_length()) if 2 ** i < head_dim]
    return [*sizes, head_dim]


def crossover(activations: torch.Tensor, labels: torch.Tensor, readout: Readout, heads: int, head_dim: int,
              sizes: Sequence[int] | None = None, count: int = 4, silence: str = "zero", seed: int = 0
              ) -> CrossoverResult:
    """A(n), K(n) and the hull bound for `count` random n-node subsets of every head (one subset, the head
    itself, at n = d_head), through the fixed `readout` of the "heads" site."""
    sizes = list(sizes) if sizes is not None else subset_sizes(head_dim)
    generator = torch.Generator().manual_seed(seed)
    rows = {name: [] for name in ("accuracy_per_label", "predicted_labels", "bound", "head")}
    for n in sizes:
        groups = UnitGroups.head_subsets(heads, head_dim, n, count, generator)
        if n == head_dim:  # every full-size subset is the head: repeat it so that the table stays rectangular
            groups = UnitGroups(groups.index, groups.names, "head")
        result = unit_performance(activations, labels, readout, groups, silence)
        predicted = result.predicted()
        rows["accuracy_per_label"].append((result.label_accuracy * predicted).sum(-1) / predicted.sum(-1))
        rows["predicted_labels"].append(predicted.sum(-1).double())
        bias = unit_bias(readout, groups, silence)
        rows["bound"].append(torch.tensor([float(readout_bound(readout.weight[:, index].double(), b.double()))
                                           for index, b in zip(groups.index, bias)], dtype=torch.float64))
        rows["head"].append((groups.index[:, 0] // head_dim).double())
    return CrossoverResult(size=torch.tensor(sizes, dtype=torch.float64),
                           **{name: torch.stack(values) for name, values in rows.items()})

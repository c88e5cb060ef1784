"""Neuron census: what parameter symmetries a trained network has restored, layer by layer.

"Parameter Symmetry Breaking and Restoration Determines the Hierarchical Learning in AI Systems"
(Ziyin, Xu, Poggio, Chuang, 2025) and "Symmetry Induces Structure and Constraint of Learning"
(Ziyin, 2024): weight decay and SGD noise pull networks onto the fixed points of their symmetries.
For each hidden layer (a Linear/Conv pair, `goldstone.models.layer_pairs`) the neuron vector of
unit i is v_i = [W_in[i, :], b_in[i], gamma_i, beta_i (BatchNorm, if any), W_out[:, i]], as in
"Stochastic Collapse" (Chen, Kunin et al., 2023). Then

- rescaling restored: **dead** units, |v_i| / max_j |v_j| < `dead` (literature: 0.1); with batches,
  also units whose activation is zero on every input;
- permutation restored: **identical** units, D_ij = 2 |v_i - v_j|^2 / (|v_i|^2 + |v_j|^2) < `same`
  (0.1; for odd activations also against -v_j); **independent** = the number of groups among the
  live units, by connected components of D < same (stable) and by greedy merging in index order
  (the Stochastic Collapse code's count, order-dependent);
- rotation restored: an unused hidden direction, **rotation_order** = sigma_min / sigma_max of
  [W_in | b | W_out^T] (h rows);
- ranks of W_in: **numerical** #{sigma > 1e-3 sigma_max}, **effective** exp(entropy of sigma / sum
  sigma) (Roy and Vetterli; Stochastic Collapse reports the entropy without the exp), **stable**
  |W|_F^2 / |W|_2^2;
- **balance**, the rescaling charge c_i = |W_in[i]|^2 + b_i^2 - |W_out[:, i]|^2 (with BatchNorm
  between, gamma_i^2 + beta_i^2 - |W_out[:, i]|^2), as mean |c_i| / mean(|in_i|^2 + |out_i|^2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe, to_device
from goldstone.core.result import Result, dims, meta
from goldstone.models.layer_pairs import LayerPair, layer_pairs

RANK_TOLERANCE = 1e-3
"""sigma_k > RANK_TOLERANCE * sigma_max counts towards the numerical rank."""


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The weight as (outputs, inputs): Linear and Conv weights flattened per output; Hugging
    Face's Conv1D stores (inputs, outputs)."""
    weight = module.weight.detach()
    return weight.T if type(module).__name__ == "Conv1D" else weight.flatten(1)


def neuron_vectors(model: nn.Module, pair: LayerPair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(V, incoming, outgoing): the neuron vectors (h, p) and the two sides of the rescaling
    charge per unit (|in|^2 with bias, or BatchNorm's gamma^2 + beta^2; |out|^2)."""
    modules = dict(model.named_modules())
    producer, consumer = modules[pair.producer], modules[pair.consumer]
    w_in = weight_matrix(producer)
    units = w_in.shape[0]
    bias = getattr(producer, "bias", None)
    parts = [w_in] + ([bias.detach()[:, None]] if bias is not None else [])
    if units == 0:
        raise GoldstoneError(f"layer {pair.name}: {pair.producer} has no neurons")
    w_out = weight_matrix(consumer)  # (outputs, units * block)
    block = pair.block
    if consumer.weight.dim() > 2 and type(consumer).__name__ != "Conv1D":  # a conv reads a kernel per channel
        block *= math.prod(consumer.weight.shape[2:])
    if w_out.shape[1] != units * block:
        raise GoldstoneError(f"layer {pair.name}: {pair.producer} has {units} outputs but {pair.consumer} reads "
                             f"{w_out.shape[1]} inputs ({block} per unit): the shapes do not chain")
    outgoing = w_out.reshape(w_out.shape[0], units, block).permute(1, 0, 2).reshape(units, -1)
    incoming = torch.cat(parts, 1).pow(2).sum(1)
    if pair.norm is not None:
        norm = modules[pair.norm]
        affine = [t.detach()[:, None] for t in (norm.weight, norm.bias) if t is not None]
        parts += affine
        incoming = torch.cat(affine, 1).pow(2).sum(1) if affine else incoming
    vectors = torch.cat(parts + [outgoing], 1).double()
    return vectors, incoming.double(), outgoing.double().pow(2).sum(1)


def closeness(vectors: torch.Tensor, same: float, odd: bool = False) -> torch.Tensor:
    """(h, h) bool: D_ij = 2 |v_i - v_j|^2 / (|v_i|^2 + |v_j|^2) < `same` for all pairs at once,
    i.e. 4 v_i.v_j > (2 - same)(|v_i|^2 + |v_j|^2), from one Gram matrix (with `odd`, v_j and -v_j
    both count). In float32: the threshold needs no more, and the Gram matrix costs half."""
    vectors = vectors.float()
    squared = vectors.pow(2).sum(1)
    scale = 4 / (2 - same)
    if odd:
        return (vectors @ vectors.T).abs_().mul_(scale).sub_(squared[None, :]) > squared[:, None]
    return torch.addmm(-squared[None, :], vectors, vectors.T, alpha=scale) > squared[:, None]


def identical_groups(vectors: torch.Tensor, same: float, odd: bool = False) -> torch.Tensor:
    """Group labels of the rows of `vectors`: connected components of the graph D_ij < `same`
    (transitive and independent of the order of the neurons)."""
    return components(closeness(vectors, same, odd))


def components(close: torch.Tensor) -> torch.Tensor:
    """Connected-component labels of the graph whose adjacency is the bool matrix `close`."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = close.nonzero(as_tuple=True)
    graph = coo_matrix((torch.ones(len(rows)).numpy(), (rows.cpu().numpy(), cols.cpu().numpy())),
                       shape=(len(close), len(close)))
    return torch.from_numpy(connected_components(graph, directed=False)[1])


def greedy_count(close: torch.Tensor) -> int:
    """The Stochastic Collapse count: each unassigned neuron, in index order, starts a group that
    takes every unassigned neuron close to it (order-dependent, not transitive)."""
    unassigned = torch.ones(len(close), dtype=torch.bool)
    count = 0
    while bool(unassigned.any()):  # one pass per group, each a batched row of the closeness matrix
        first = int(unassigned.nonzero()[0])
        unassigned &= ~close[first].cpu()
        unassigned[first] = False
        count += 1
    return count


def ranks(matrix: torch.Tensor) -> dict[str, float]:
    """Numerical, effective (Roy-Vetterli) and stable rank of `matrix`."""
    sigma = torch.linalg.svdvals(matrix.double())
    if sigma.numel() == 0 or float(sigma[0]) == 0:
        return {"numerical_rank": 0.0, "effective_rank": 0.0, "stable_rank": 0.0}
    p = sigma / sigma.sum()
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
    return {"numerical_rank": float((sigma > RANK_TOLERANCE * sigma[0]).sum()),
            "effective_rank": float(torch.exp(entropy)), "stable_rank": float(sigma.pow(2).sum() / sigma[0] ** 2)}


def _dead_by_activation(model: nn.Module, pairs: list[LayerPair], batches: Iterable[Any]) -> dict[str, torch.Tensor]:
    """Per pair, whether each unit's input to the consumer is zero on every example."""
    named = dict(model.named_modules())
    peak: dict[str, torch.Tensor] = {}
    hooks = []
    for pair in pairs:
        module = named[pair.consumer]
        def hook(_module, args, pair=pair):
            x = args[0].detach()
            units = x.shape[1] // pair.block if x.dim() == 2 else x.shape[1]
            if x.dim() == 2:
                per_unit = x.reshape(x.shape[0], units, pair.block).abs().amax(dim=(0, 2))
            elif x.dim() >= 3 and type(module).__name__ != "Linear":
                per_unit = x.abs().transpose(0, 1).reshape(x.shape[1], -1).amax(1)
            else:  # Linear on (..., units): a sequence model
                per_unit = x.abs().reshape(-1, x.shape[-1]).amax(0)
            peak[pair.name] = torch.maximum(peak.get(pair.name, per_unit), per_unit)
        hooks.append(module.register_forward_pre_hook(hook))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for batch in batches:
                inputs = to_device(batch[0] if isinstance(batch, tuple) else batch, device)
                model(**inputs) if isinstance(inputs, dict) else model(inputs)
    finally:
        for h in hooks:
            h.remove()
    return {name: value == 0 for name, value in peak.items()}


def neuron_census(model: nn.Module, batches: Iterable[Any] | None = None, dead: float = 0.1, same: float = 0.1,
                  example: Any = None) -> NeuronCensusResult:
    """Per hidden layer: neurons, dead, dead_by_activation (NaN without `batches`), independent,
    independent_greedy, numerical_rank, effective_rank, stable_rank, rotation_order, balance (see
    the module docstring), with each layer's producer, consumer and activation; ``.table()`` is
    one row per layer.

    `batches`: inputs (or (inputs, targets)) for the activation census and for tracing; `example`:
    one input for tracing when no batches are given (fx traces without data for most models)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"neuron_census: model must be a torch.nn.Module, got {type(model).__name__}")
    for key, value in (("dead", dead), ("same", same)):
        if not 0 < value < 1:
            raise GoldstoneError(f"neuron census: threshold {key!r}={value} must lie in (0, 1)")
    batches = list(batches) if batches is not None else None
    if example is None and batches:
        example = batches[0][0] if isinstance(batches[0], tuple) else batches[0]
    pairs, _ = layer_pairs(model, example)
    activity = _dead_by_activation(model, pairs, batches) if batches else {}
    rows = []
    for pair in pairs:
        vectors, incoming, outgoing = neuron_vectors(model, pair)
        norms = vectors.norm(dim=1)
        is_dead = norms < dead * norms.max().clamp_min(1e-300)
        live = vectors[~is_dead]
        close = closeness(live, same, pair.odd)  # one Gram matrix for both counts
        labels = components(close) if len(live) else torch.zeros(0)
        greedy = greedy_count(close) if len(live) else 0
        w_in = weight_matrix(dict(model.named_modules())[pair.producer])
        sigma = torch.linalg.svdvals(vectors)
        charge = incoming - outgoing
        rows.append({"layer": pair.name, "producer": pair.producer, "consumer": pair.consumer,
                     "activation": pair.activation, "neurons": len(vectors), "dead": int(is_dead.sum()),
                     "dead_by_activation": (int(activity[pair.name].sum()) if pair.name in activity else float("nan")),
                     "independent": int(labels.unique().numel()) if len(live) else 0,
                     "independent_greedy": greedy, **ranks(w_in),
                     "rotation_order": float(sigma[-1] / sigma[0]) if len(sigma) == len(vectors) else 0.0,
                     "balance": float(charge.abs().mean() / (incoming + outgoing).mean().clamp_min(1e-300))})
    columns = {c: torch.tensor([float(r[c]) for r in rows], dtype=torch.float64) for c in CENSUS_COLUMNS}
    if not activity:
        columns["dead_by_activation"] = None
    return NeuronCensusResult(**columns, layers=[r["layer"] for r in rows], producers=[r["producer"] for r in rows],
                              consumers=[r["consumer"] for r in rows], activations=[r["activation"] for r in rows])


CENSUS_COLUMNS = ("neurons", "dead", "dead_by_activation", "independent", "independent_greedy", "numerical_rank",
                  "effective_rank", "stable_rank", "rotation_order", "balance")


@dataclasses.dataclass
class NeuronCensusResult(Result):
    observable = "neuron_census"
    neurons: torch.Tensor = dims("layer")
    dead: torch.Tensor = dims("layer")
    dead_by_activation: torch.Tensor = dims("layer")
    independent: torch.Tensor = dims("layer")
    independent_greedy: torch.Tensor = dims("layer")
    numerical_rank: torch.Tensor = dims("layer")
    effective_rank: torch.Tensor = dims("layer")
    stable_rank: torch.Tensor = dims("layer")
    rotation_order: torch.Tensor = dims("layer")
    balance: torch.Tensor = dims("layer")
    layers: list[str] = meta()
    producers: list[str] = meta()
    consumers: list[str] = meta()
    activations: list[str] = meta()

    def axis_labels(self) -> dict[str, list[str]]:
        return {"layer": self.layers}

    def table(self) -> pd.DataFrame:
        """One row per hidden layer: layer, producer, consumer, activation, then the counts."""
        wide = super().table()
        wide.insert(1, "producer", self.producers)
        wide.insert(2, "consumer", self.consumers)
        wide.insert(3, "activation", self.activations)
        return wide


class NeuronCensus(Observable):
    """`neuron_census` of the weights as an observable (no forward pass), e.g. along training with
    a `Monitor` or over saved checkpoints with `scan_checkpoints`."""

    name = "neuron_census"
    summary = "dead, identical and independent neurons, ranks, rotation order and balance per hidden layer"
    needs_forward = False

    def __init__(self, dead: float = 0.1, same: float = 0.1, example: Any = None):
        self.dead, self.same, self.example = dead, same, example
        self.add_state("_results", [], "cat")

    def update(self, probe: Probe) -> None:
        self._results.append(neuron_census(probe.model, None, self.dead, self.same, self.example))

    def compute(self) -> NeuronCensusResult:
        return self._results[-1]

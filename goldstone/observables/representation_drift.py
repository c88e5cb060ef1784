"""How much the representations of a fixed probe change between measurements: linear CKA.

Linear CKA of two representations X, Y (examples x features) of the same inputs, from their
centred Gram matrices K = H X X^T H, L = H Y Y^T H (H the centring matrix):
CKA = <K, L>_F / (|K|_F |L|_F) ("Similarity of Neural Network Representations Revisited",
Kornblith et al., 2019), 1 for representations that differ by a rotation and isotropic scaling.
Only the n x n Grams of each measurement are kept, whatever the width.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims


def centred_gram(x: torch.Tensor) -> torch.Tensor:
    """H X X^T H of features (..., n, d) in float64."""
    x = x.double()
    x = x - x.mean(-2, keepdim=True)
    return x @ x.mT


def gram_cka(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Linear CKA from centred Grams (..., n, n) (see the module docstring)."""
    return (k * l).sum((-2, -1)) / (k.norm(dim=(-2, -1)) * l.norm(dim=(-2, -1))).clamp_min(1e-300)


def pooled_states(probe: Probe, layers: Sequence[str] | None) -> torch.Tensor:
    """(layer, example, features): the captured outputs of `layers`, or a Hugging Face model's
    hidden states, averaged over the tokens the attention mask keeps (one vector per example)."""
    if layers is not None:
        states = [probe.activations[name] for name in layers]
    else:
        states = getattr(probe.outputs, "hidden_states", None)
        if not states:
            raise GoldstoneError(f"{type(probe.model).__name__} returned no hidden states: pass layers=[module names]")
    stacked = torch.stack([s if s.dim() == 3 else s.flatten(1)[:, None] for s in states]).double()
    mask = probe.inputs.get("attention_mask") if isinstance(probe.inputs, Mapping) else None
    if mask is None or stacked.shape[2] != mask.shape[1]:
        return stacked.mean(2)
    weights = mask.to(stacked)[None, :, :, None]
    return (stacked * weights).sum(2) / weights.sum(2).clamp_min(1)


@dataclasses.dataclass
class RepresentationDriftResult(Result):
    observable = "representation_drift"
    cka_previous: torch.Tensor = dims("step", "layer")
    cka_first: torch.Tensor = dims("step", "layer")


class RepresentationDrift(Observable):
    """A stream, updated at a monitor's due steps: at every update the centred Gram of each layer's representation of the probe;
    `compute` gives, per update and layer, the CKA with the previous update and with the first
    (NaN at the first). `layers`: module names whose outputs to use (default: a Hugging Face
    model's hidden states)."""

    name = "representation_drift"
    summary = "linear CKA of each layer's representation of the probe with the previous and the first measurement"
    lifecycle = "stream"
    every_step = False  # a forward pass of the probe: at the due steps only

    def __init__(self, layers: Sequence[str] | None = None):
        self.layers = list(layers) if layers is not None else None
        self.add_state("_grams", [], "replicated")  # under DDP each process keeps its own probe's

    def hook_names(self, model: nn.Module) -> list[str]:
        return list(self.layers or [])

    def forward_kwargs(self) -> dict[str, Any]:
        return {} if self.layers is not None else {"output_hidden_states": True}

    def update(self, probe: Probe) -> None:
        self._grams.append(centred_gram(pooled_states(probe, self.layers)).cpu())

    def grams(self) -> torch.Tensor:
        """The centred Grams recorded so far, (update, layer, example, example)."""
        return torch.stack(self._grams)

    def compute(self) -> RepresentationDriftResult:
        return drift_from_grams(self.grams())


def drift_from_grams(grams: torch.Tensor) -> RepresentationDriftResult:
    """CKA of every measurement with the previous and the first, from their centred Grams
    (step, layer, n, n)."""
    nan = torch.full_like(grams[:1, :, 0, 0], float("nan"))
    previous = torch.cat([nan, gram_cka(grams[1:], grams[:-1])])
    first = torch.cat([nan, gram_cka(grams[1:], grams[:1].expand_as(grams[1:]))])
    return RepresentationDriftResult(cka_previous=previous, cka_first=first)

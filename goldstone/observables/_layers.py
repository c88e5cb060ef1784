"""Which modules of a model count as its layers, for per-layer observables."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.hooks import hook_points
from goldstone.core.observable import Observable, Probe


def layer_names(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    """`layers` if given, else the model's ``layer_hook_names()``, else all its `HookPoint`s."""
    if layers is not None:
        return list(layers)
    if hasattr(model, "layer_hook_names"):
        return list(model.layer_hook_names())
    names = hook_points(model)
    if not names:
        raise GoldstoneError(f"{type(model).__name__} has no hook points: pass layers=[module names]")
    return names


class LayerObservable(Observable):
    """Base of observables of k-blocks at every layer: `layers` names the modules (default: the
    model's layers), `k` the block size."""

    def __init__(self, k: int = 2, layers: Sequence[str] | None = None):
        self.k, self.layers = k, layers

    def hook_names(self, model: nn.Module) -> list[str]:
        self._names = layer_names(model, self.layers)
        return self._names

    def stacked(self, probe: Probe) -> torch.Tensor:
        """The captured activations as one float64 tensor (layer, batch, features); features must
        be whole blocks of `k`."""
        acts = [probe.activations[n].flatten(1).double() for n in self._names]
        odd = [(n, a.shape[-1]) for n, a in zip(self._names, acts) if a.shape[-1] % self.k]
        if odd:
            raise GoldstoneError(f"{type(self).__name__}: layer {odd[0][0]!r} has {odd[0][1]} features, not a whole "
                                 f"number of blocks of k = {self.k}")
        return torch.stack(acts)

"""Which modules of a model count as its layers, for per-layer observables."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.hooks import hook_points


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

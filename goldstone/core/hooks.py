"""Explicit hook points: capture the outputs of named modules for one forward pass.

Hooks live only inside the `capture` context and are removed on exit, even on error, so that
repeated measurements leave neither hooks nor cached tensors behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError


class HookPoint(nn.Identity):
    """An identity module that marks a place worth observing (TransformerLens' idea)."""


def hook_points(model: nn.Module) -> list[str]:
    """Names of every `HookPoint` in `model`, in forward order of registration."""
    return [name for name, module in model.named_modules() if isinstance(module, HookPoint)]


@contextlib.contextmanager
def capture(model: nn.Module, names: Iterable[str], detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each named module into the yielded dict while the context is open."""
    modules = dict(model.named_modules())
    names = list(dict.fromkeys(names))
    missing = [n for n in names if n not in modules]
    if missing:
        raise GoldstoneError(f"model has no module named {missing[0]!r} (hook points: {hook_points(model)[:5]}...)")
    cache: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            cache[name] = out.detach() if detach else out
        return hook

    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(make_hook(name)))
        yield cache
    finally:
        for handle in handles:
            handle.remove()
        cache.clear()

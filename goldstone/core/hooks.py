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


INPUT = ":input"
"""Suffix of a hook name that records a module's (first) input instead of its output,
e.g. ``"encoder.layer.3.attention.output.dense:input"``."""


@contextlib.contextmanager
def capture(model: nn.Module, names: Iterable[str], detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each named module (its input, for names ending in ":input") into the
    yielded dict while the context is open."""
    modules = dict(model.named_modules())
    names = list(dict.fromkeys(names))
    missing = [n for n in names if n.removesuffix(INPUT) not in modules]
    if missing:
        raise GoldstoneError(f"model has no module named {missing[0]!r} (hook points: {hook_points(model)[:5]}...)")
    cache: dict[str, torch.Tensor] = {}
    handles = []

    def store(name: str, value) -> None:
        value = value[0] if isinstance(value, tuple) else value
        cache[name] = value.detach() if detach else value

    try:
        for name in names:
            module = modules[name.removesuffix(INPUT)]
            if name.endswith(INPUT):
                handles.append(module.register_forward_pre_hook(lambda _m, args, name=name: store(name, args)))
            else:
                handles.append(module.register_forward_hook(lambda _m, _args, out, name=name: store(name, out)))
        yield cache
    finally:
        for handle in handles:
            handle.remove()
        cache.clear()

"""Explicit hook points: capture the outputs of named modules for one forward pass.

Hooks live only inside the `capture` context and are removed on exit, even on error, so that
repeated measurements leave neither hooks nor cached tensors behind.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterable, Iterator

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


HookKind = str
"""``"forward_pre"``, ``"forward"`` or ``"full_backward"``: which of a module's hooks to register."""


@contextlib.contextmanager
def registered(hooks: Iterable[tuple[nn.Module, HookKind, Callable]]) -> Iterator[None]:
    """Register each ``(module, kind, fn)`` hook while the context is open; remove them all on exit,
    even on error. Every hook goldstone places goes through here."""
    handles = []
    try:
        for module, kind, fn in hooks:
            handles.append(getattr(module, f"register_{kind}_hook")(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()


def resolve_modules(model: nn.Module, names: Iterable[str]) -> dict[str, str]:
    """`resolve_module` for each of `names`, walking the model once."""
    modules = [n for n, _ in model.named_modules() if n]
    known = set(modules)
    return {name: name if name.removesuffix(INPUT) in known else resolve_module(model, name, modules)
            for name in names}


def resolve_module(model: nn.Module, name: str, modules: list[str] | None = None) -> str:
    """The full name in `model` of module `name`: itself, or the one module whose name ends with
    ``"." + name`` (so ``encoder.layer.3`` finds ``bert.encoder.layer.3`` of a wrapped Hugging Face
    model). A name that fits no module, or several, is an error listing the closest candidates."""
    modules = modules if modules is not None else [n for n, _ in model.named_modules() if n]
    base = name.removesuffix(INPUT)
    if base in modules:
        return name
    suffixed = [n for n in modules if n.endswith("." + base)]
    if len(suffixed) == 1:
        return suffixed[0] + name[len(base):]
    if suffixed:
        raise GoldstoneError(f"module name {base!r} is ambiguous in {type(model).__name__}: "
                             f"{', '.join(suffixed[:4])}; give the full name")
    close = difflib.get_close_matches(base, modules, n=4, cutoff=0.5) or modules[:4]
    raise GoldstoneError(f"{type(model).__name__} has no module named {base!r}; closest: {', '.join(close)}")


@contextlib.contextmanager
def capture(model: nn.Module, names: Iterable[str], detach: bool = True) -> Iterator[dict[str, torch.Tensor]]:
    """Record the output of each named module (its input, for names ending in ":input") into the
    yielded dict, under the names asked for, while the context is open. With ``detach=False`` the
    recorded tensors stay in the graph, so that ``torch.autograd.grad(loss, recorded)`` gives the
    gradients at those hook points."""
    modules = dict(model.named_modules())
    names = list(dict.fromkeys(names))
    resolved = resolve_modules(model, names)
    cache: dict[str, torch.Tensor] = {}

    def store(name: str, value) -> None:
        value = value[0] if isinstance(value, tuple) else value
        cache[name] = value.detach() if detach else value

    hooks = [(modules[resolved[name].removesuffix(INPUT)], "forward_pre", lambda _m, args, name=name: store(name, args))
             if name.endswith(INPUT) else
             (modules[resolved[name]], "forward", lambda _m, _args, out, name=name: store(name, out)) for name in names]
    try:
        with registered(hooks):
            yield cache
    finally:
        cache.clear()


@contextlib.contextmanager
def capture_gradients(model: nn.Module, names: Iterable[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the gradient of the loss with respect to each named module's output during every
    backward pass inside the context (backward hooks; open it before the forward pass):

    >>> with capture_gradients(model, ["blocks.3"]) as grads:
    ...     loss_fn(model(x), y).backward()
    >>> grads["blocks.3"].shape   # like the module's output
    """
    modules = dict(model.named_modules())
    names = list(dict.fromkeys(names))
    resolved = resolve_modules(model, names)
    cache: dict[str, torch.Tensor] = {}

    def store(name: str, grad_output: tuple) -> None:
        if grad_output and grad_output[0] is not None:
            cache[name] = grad_output[0].detach()

    hooks = [(modules[resolved[name]], "full_backward", lambda _m, _grad_in, grad_out, name=name: store(name, grad_out))
             for name in names]
    try:
        with registered(hooks):
            yield cache
    finally:
        cache.clear()

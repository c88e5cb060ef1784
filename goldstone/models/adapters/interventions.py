"""Interventions at the nodes of a transformer block, through its adapter and on the hooks of
`goldstone.core.hooks`: record per-head outputs, silence heads or units (zero or mean), and the
hook names of unit sites (head outputs, attention output, MLP output)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.hooks import INPUT, registered
from goldstone.models.adapters.architecture import adapter_for, config_int, head_dim, num_heads, submodule


def _split_heads(x: Tensor, heads: int, d: int) -> Tensor:
    if x.shape[-1] != heads * d:
        raise GoldstoneError(f"output projection input has width {x.shape[-1]}, expected {heads} heads x {d}")
    return x.unflatten(-1, (heads, d))


@contextlib.contextmanager
def capture_head_outputs(model: nn.Module, layers: Iterable[int], detach: bool = True) -> Iterator[dict[int, Tensor]]:
    """Record, per layer, the per-head outputs (B, T, H, d) entering the output projection.

    The yielded dict holds the last forward pass run inside the context and stays readable after it closes;
    the hooks are removed on exit, even on error.
    """
    heads, d = num_heads(model), head_dim(model)
    cache: dict[int, Tensor] = {}

    def make_hook(layer: int) -> Callable:
        def hook(_module: nn.Module, args: tuple) -> None:
            x = _split_heads(args[0], heads, d)
            cache[layer] = x.detach() if detach else x
        return hook

    layers = list(dict.fromkeys(layers))
    with registered([(submodule(model, layer, "output_projection"), "forward_pre", make_hook(layer))
                     for layer in layers]):
        yield cache


def _check_broadcast(name: str, tensor: Tensor, shape: torch.Size) -> None:
    try:
        fits = torch.broadcast_shapes(tensor.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise GoldstoneError(f"{name} of shape {tuple(tensor.shape)} does not broadcast to head outputs {tuple(shape)}")


@contextlib.contextmanager
def silence_heads(model: nn.Module, layer: int, mask: Tensor, means: Tensor | None = None) -> Iterator[None]:
    """Silence heads or single nodes of `layer` while the context is open.

    The output projection sees the head outputs x (B, T, H, d) as x * mask, or x * mask + means * (1 - mask)
    when `means` is given (mean ablation). `mask` (1 keeps, 0 silences) and `means` broadcast to (B, T, H, d):
    a mask of shape (H, 1) silences whole heads, (H, d) single nodes, and (B, 1, H, 1) a different choice per
    batch row, so that many ablations run in one batched pass. The hook is removed on exit, even on error.
    """
    heads, d = num_heads(model), head_dim(model)

    def hook(_module: nn.Module, args: tuple) -> tuple:
        return (_silence(_split_heads(args[0], heads, d), mask, means).flatten(-2), *args[1:])

    with registered([(submodule(model, layer, "output_projection"), "forward_pre", hook)]):
        yield


def _silence(x: Tensor, mask: Tensor, means: Tensor | None) -> Tensor:
    """x * mask, or x * mask + means * (1 - mask): units where mask is 0 are zeroed or set to their mean."""
    _check_broadcast("mask", mask, x.shape)
    keep = mask.to(x)
    if means is None:
        return x * keep
    _check_broadcast("means", means, x.shape)
    return x * keep + means.to(x) * (1 - keep)


UNIT_SITES = ("heads", "attention", "mlp")
"""Where the nodes of a block are read ("Single-Nodal Spontaneous Symmetry Breaking in NLP Models"): the
concatenated head outputs before the output projection (H x d nodes, head h = nodes h*d .. h*d + d - 1),
the attention sub-block's output after the projection, or the feed-forward output (both `hidden` nodes,
before the residual sum)."""


def _site(model: nn.Module, layer: int, site: str) -> tuple[nn.Module, bool]:
    """The module of `site` and whether the site is its input (True) or its output."""
    if site not in UNIT_SITES:
        raise GoldstoneError(f"unknown site {site!r} (sites: {', '.join(UNIT_SITES)})")
    if site == "mlp":
        return submodule(model, layer, "mlp_out"), False
    return submodule(model, layer, "output_projection"), site == "heads"


def site_hook(model: nn.Module, layer: int, site: str) -> str:
    """The `goldstone.core.hooks.capture` name that records the (B, T, units) activations of `site` in `layer`."""

    module, is_input = _site(model, layer, site)
    name = next(n for n, m in model.named_modules() if m is module)
    return name + INPUT if is_input else name


def num_units(model: nn.Module, site: str) -> int:
    """The number of nodes at `site`: H x d for "heads", the hidden size otherwise."""
    _site(model, 0, site)
    return num_heads(model) * head_dim(model) if site == "heads" else config_int(model, adapter_for(model).hidden_size_attr)


@contextlib.contextmanager
def silence_units(model: nn.Module, layer: int, site: str, mask: Tensor, means: Tensor | None = None) -> Iterator[None]:
    """Silence nodes of `site` in `layer` while the context is open: its (B, T, units) activations x become
    x * mask, or x * mask + means * (1 - mask) (mean ablation), `mask` and `means` broadcasting to x.
    The hook is removed on exit, even on error."""
    module, is_input = _site(model, layer, site)
    if is_input:
        hook = ("forward_pre", lambda _m, args: (_silence(args[0], mask, means), *args[1:]))
    else:
        hook = ("forward", lambda _m, _args, out: _silence(out, mask, means))
    with registered([(module, *hook)]):
        yield

"""Equivariance test helpers (in the spirit of e3nn's `assert_equivariant`): the worst violation
of f(g x) = g f(x) over random group elements (`goldstone.groups`) and random inputs.

A function of one input takes ``in_features`` (an int: k-major features that the group rotates
block by block). A function of several inputs takes a sequence of specs, one per argument: an int
for rotated features, `Invariant(n)` for n features the group leaves alone (gates, scalars); its
outputs (a tensor or a tuple) transform as ``outputs`` says, True for rotated, False for invariant
(default: all rotated). For instance a recurrent update h' = F(h, U x, gates) is checked with
``[N, N, Invariant(2 n)]``: rotating the state and the input drive together rotates h'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from goldstone.groups import act, random_phase, random_rotation


@dataclasses.dataclass(frozen=True)
class Invariant:
    """`features` real inputs that the group does not act on."""

    features: int


Spec = int | Invariant


def equivariance_error(fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]], in_features: int | Sequence[Spec],
                       group: str, k: int = 2, n_elements: int = 8, batch: int = 16,
                       dtype: torch.dtype = torch.float64, seed: int = 0,
                       outputs: Sequence[bool] | None = None) -> float:
    """max over random g, inputs and outputs of |f(g x) - g f(x)| / max|f(x)|, for group 'u1' or 'ok'
    (g acting as the identity on invariant inputs and outputs)."""
    single = isinstance(in_features, int)
    specs = [in_features] if single else list(in_features)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    with torch.no_grad():
        for _ in range(n_elements):
            g = random_phase(gen, dtype) if group == "u1" else random_rotation(k, gen, dtype)
            xs = [torch.randn(batch, _width(spec), generator=gen, dtype=torch.float64).to(dtype) for spec in specs]
            moved = [x if isinstance(spec, Invariant) else act(g, x) for x, spec in zip(xs, specs)]
            plain, rotated = _outputs(fn(*xs)), _outputs(fn(*moved))
            for y, y_moved, transforms in zip(plain, rotated, outputs or [True] * len(plain)):
                expected = act(g, y) if transforms else y
                err = (y_moved - expected).abs().max() / y.abs().max().clamp_min(torch.finfo(dtype).tiny)
                worst = max(worst, float(err))
    return worst


def _width(spec: Spec) -> int:
    return spec.features if isinstance(spec, Invariant) else spec


def _outputs(value: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return value if isinstance(value, tuple) else (value,)


def assert_equivariant(fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]], in_features: int | Sequence[Spec],
                       group: str, k: int = 2, atol: float | None = None, dtype: torch.dtype = torch.float64,
                       **kwargs) -> float:
    """Raise AssertionError when the equivariance error exceeds `atol` (1e-12 in float64,
    1e-5 in float32 by default); returns the worst error found."""
    atol = atol if atol is not None else (1e-12 if dtype == torch.float64 else 1e-5)
    err = equivariance_error(fn, in_features, group, k, dtype=dtype, **kwargs)
    if err > atol:
        raise AssertionError(f"not {group}-equivariant: worst relative error {err:.3e} > {atol:.1e}")
    return err

"""Equivariance test helpers (in the spirit of e3nn's): the worst violation of f(g x) = g f(x)
over random group elements (`goldstone.groups`) and random inputs."""

from __future__ import annotations

from collections.abc import Callable

import torch

from goldstone.groups import act, random_phase, random_rotation


def equivariance_error(fn: Callable[[torch.Tensor], torch.Tensor], in_features: int, group: str, k: int = 2,
                       n_elements: int = 8, batch: int = 16, dtype: torch.dtype = torch.float64,
                       seed: int = 0) -> float:
    """max over random g and x of |f(g x) - g f(x)| / max|f(x)|, for group 'u1' or 'ok'."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return _worst_error(fn, in_features, group, k, n_elements, batch, dtype, gen)


def _worst_error(fn: Callable, in_features: int, group: str, k: int, n_elements: int, batch: int,
                 dtype: torch.dtype, gen: torch.Generator) -> float:
    worst = 0.0
    for _ in range(n_elements):
        g = random_phase(gen, dtype) if group == "u1" else random_rotation(k, gen, dtype)
        x = torch.randn(batch, in_features, generator=gen, dtype=torch.float64).to(dtype)
        fx = fn(x)
        err = (fn(act(g, x)) - act(g, fx)).abs().max() / fx.abs().max().clamp_min(torch.finfo(dtype).tiny)
        worst = max(worst, float(err))
    return worst


def assert_equivariant(fn: Callable[[torch.Tensor], torch.Tensor], in_features: int, group: str, k: int = 2,
                       atol: float | None = None, dtype: torch.dtype = torch.float64, **kwargs) -> float:
    """Raise AssertionError when the equivariance error exceeds `atol` (1e-12 in float64,
    1e-5 in float32 by default); returns the worst error found."""
    atol = atol if atol is not None else (1e-12 if dtype == torch.float64 else 1e-5)
    err = equivariance_error(fn, in_features, group, k, dtype=dtype, **kwargs)
    if err > atol:
        raise AssertionError(f"not {group}-equivariant: worst relative error {err:.3e} > {atol:.1e}")
    return err

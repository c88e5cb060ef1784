"""Equivariance test helpers (in the spirit of e3nn's): random group elements and the worst
violation of f(g x) = g f(x) over random inputs."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def random_rotation(k: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                    special: bool = False) -> torch.Tensor:
    """A Haar-random element of O(k) (SO(k) if `special`): QR of a Gaussian matrix with the
    signs of R's diagonal folded into Q (Mezzadri, "How to generate random matrices from the
    classical compact groups")."""
    a = torch.randn(k, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    if special and torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def random_phase(generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """e^{i theta} with theta uniform, as the 2x2 rotation acting on (Re z, Im z)."""
    theta = 2 * math.pi * torch.rand((), generator=generator, dtype=torch.float64)
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack((torch.stack((c, -s)), torch.stack((s, c)))).to(dtype)


def act(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply the k x k matrix `g` to every block of k features of `x` (..., n*k)."""
    k = g.shape[0]
    return (x.unflatten(-1, (-1, k)) @ g.T).flatten(-2)


def generator_matrix(k: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A generator T of the group's Lie algebra: i (as [[0,-1],[1,0]]) for k = 2, a random
    antisymmetric matrix for k > 2."""
    if k == 2:
        return torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=dtype)
    a = torch.randn(k, k, generator=generator, dtype=torch.float64)
    return (a - a.T).to(dtype)


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

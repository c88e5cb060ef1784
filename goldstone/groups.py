"""The symmetry groups of the equivariant layers: Haar-random elements of O(k) and U(1), their
action on k-blocks of features, and generators of their Lie algebras.

Feature layout (k-major): N = n k real features hold n blocks of k, component d of block j at
index d n + j. The k components are then k contiguous rows of n, so an O(k) layer w (x) I_k is a
single matrix multiply over them; for U(1) (k = 2) the first n features are Re z, the last n Im z.
"""

from __future__ import annotations

import math

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


def components(x: torch.Tensor, k: int) -> torch.Tensor:
    """The (..., k, n) view of features `x` (..., n*k): row d holds component d of every block."""
    return x.unflatten(-1, (k, -1))


def blocks(x: torch.Tensor, k: int) -> torch.Tensor:
    """The (..., n, k) view of features `x` (..., n*k): one row per block (a strided view, no copy)."""
    return components(x, k).transpose(-1, -2)


def act(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply the k x k matrix `g` to every block of k features of `x` (..., n*k)."""
    return (g @ components(x, g.shape[0])).flatten(-2)


def generator_matrix(k: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A generator T of the group's Lie algebra: i (as [[0,-1],[1,0]]) for k = 2, a random
    antisymmetric matrix for k > 2."""
    if k == 2:
        return torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=dtype)
    a = torch.randn(k, k, generator=generator, dtype=torch.float64)
    return (a - a.T).to(dtype)

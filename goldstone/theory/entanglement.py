"""Closed forms for entanglement profiles (`goldstone.observables.entanglement` measures them).

Page's mean entropy of a random complex state, <S> = psi(mn + 1) - psi(n + 1) - (m - 1)/(2n) for
m <= n ("Average entropy of a subsystem", Page 1993), and the random rank-r product B A, whose
centre entropy is about ln r - r/(2 d_out) - r/(2 d_in) ("Artificial Entanglement in the
Fine-Tuning of Large Language Models", Chen et al., 2026).
"""

from __future__ import annotations

import math

import torch

from goldstone.theory.arguments import whole, wholes


def page_entropy(m: int, n: int) -> float:
    """Page's mean von Neumann entropy (nats) of an m-dimensional part of a random complex pure state
    in C^m x C^n: psi(mn + 1) - psi(n + 1) - (m - 1) / (2n) with m <= n (whole numbers >= 1)."""
    m, n = sorted((whole("m", m), whole("n", n)))
    return float(torch.special.digamma(torch.tensor(m * n + 1.0, dtype=torch.float64))
                 - torch.special.digamma(torch.tensor(n + 1.0, dtype=torch.float64))) - (m - 1) / (2 * n)


def page_curve(dims: list[int]) -> torch.Tensor:
    """Page's mean entropy at every cut of a random state on sites `dims` (whole numbers >= 1)."""
    dims = wholes("dims", dims)
    total = math.prod(dims)
    return torch.tensor([page_entropy(math.prod(dims[:k]), total // math.prod(dims[:k]))
                         for k in range(1, len(dims))], dtype=torch.float64)


def low_rank_centre(rank: int, d_out: int, d_in: int) -> float:
    """The centre-cut entropy of a random Gaussian rank-r product B A: about ln r - r/(2 d_out) - r/(2 d_in)."""
    rank, d_out, d_in = whole("rank", rank), whole("d_out", d_out), whole("d_in", d_in)
    return math.log(rank) - rank / (2 * d_out) - rank / (2 * d_in)


def low_rank_curve(rank: int, row_dims: list[int], col_dims: list[int]) -> torch.Tensor:
    """The random rank-r null at every cut: Page's curve of a chain whose centre bond is r-dimensional
    (row cuts: Page(D_k, r d_out / D_k); column cuts: Page(r D_k / d_out, N / D_k)); the centre from
    `low_rank_centre`."""
    rank, row_dims, col_dims = whole("rank", rank), wholes("row_dims", row_dims), wholes("col_dims", col_dims)
    d_out, d_in = math.prod(row_dims), math.prod(col_dims)
    values = []
    for k in range(1, len(row_dims)):
        left = math.prod(row_dims[:k])
        values.append(page_entropy(left, max(rank * d_out // left, 1)))
    values.append(low_rank_centre(rank, d_out, d_in))
    for k in range(1, len(col_dims)):
        right = math.prod(col_dims[k:])
        values.append(page_entropy(right, max(rank * d_in // right, 1)))
    return torch.tensor(values, dtype=torch.float64)

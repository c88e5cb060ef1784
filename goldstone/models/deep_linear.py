"""A deep linear network W_L ... W_1 and a linear teacher T = U diag(s) V^T."""

from __future__ import annotations

import torch
from torch import nn


class DeepLinear(nn.Module):
    """x -> W_L ... W_1 x with `depth` matrices (dim -> width -> ... -> width -> dim), entries drawn
    N(0, init_scale^2), no biases."""

    def __init__(self, dim: int, width: int, depth: int, init_scale: float, generator: torch.Generator | None = None):
        super().__init__()
        sizes = [dim] + [width] * (depth - 1) + [dim]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(sizes[i + 1], sizes[i], generator=generator, dtype=torch.float64) * init_scale)
            for i in range(depth))

    def end_to_end(self) -> torch.Tensor:
        """The product W_L ... W_1 (dim x dim)."""
        product = self.weights[0]
        for w in self.weights[1:]:
            product = w @ product
        return product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.end_to_end().T


def linear_teacher(dim: int, singular_values: list[float], generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T, U, V): T = U diag(s) V^T with U, V the first len(s) columns of random orthogonal matrices."""
    u, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    k = len(singular_values)
    s = torch.tensor(singular_values, dtype=torch.float64)
    return u[:, :k] @ torch.diag(s) @ v[:, :k].T, u[:, :k], v[:, :k]

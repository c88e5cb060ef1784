"""The peer baseline for the Goldstone-mode MLPs: layers built the way "Spontaneous Symmetry
Breaking and Goldstone Modes for Deep Information Propagation" builds them in its public code
(github.com/nabiliqbal/ssb-goldstone-deep-info-prop, `equivariant_layers.py`), rewritten here:
every forward assembles the dense N x N weight in a fresh matrix by strided assignment (k copies
of w into a zero matrix for O(k), four blocks for U(1)) and multiplies by it; the radial tanh is
tanh(r) / (r + 1e-12) on blocks of adjacent features. Weight stds as theirs: sigma_W sqrt(k/N)
for O(k), sigma_W / sqrt(N) for U(1).
"""

from __future__ import annotations

import torch
from torch import nn


class AuthorsLinear(nn.Module):
    """The authors' equivariant linear map: the dense weight assembled at every call."""

    def __init__(self, group: str, k: int, width: int, sigma_w: float):
        super().__init__()
        self.group, self.k = group, k
        if group == "u1":
            self.w1 = nn.Parameter(torch.randn(width // 2, width // 2) * sigma_w / width ** 0.5)
            self.w2 = nn.Parameter(torch.randn(width // 2, width // 2) * sigma_w / width ** 0.5)
        else:
            self.w = nn.Parameter(torch.randn(width // k, width // k) * sigma_w * (k / width) ** 0.5)

    def weight(self) -> torch.Tensor:
        if self.group == "u1":
            m, n = self.w1.shape
            out = torch.empty(2 * m, 2 * n)
            out[0::2, 0::2], out[0::2, 1::2], out[1::2, 0::2], out[1::2, 1::2] = self.w1, self.w2, -self.w2, self.w1
            return out
        m, n = self.w.shape
        out = torch.zeros(m * self.k, n * self.k)
        for d in range(self.k):
            out[d::self.k, d::self.k] = self.w
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight().T


class AuthorsRadialTanh(nn.Module):
    def __init__(self, k: int, eps: float = 1e-12):
        super().__init__()
        self.k, self.eps = k, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.reshape(x.shape[0], x.shape[1] // self.k, self.k)
        r = torch.linalg.norm(y, dim=2, keepdim=True)
        return (y * (torch.tanh(r) / (r + self.eps))).reshape(x.shape)


def authors_model(group: str, k: int, width: int, depth: int, sigma_w: float, features: int, classes: int) -> nn.Module:
    """Input Linear, `depth` x (equivariant linear, radial tanh), readout Linear, as their MLP."""
    layers = [m for _ in range(depth) for m in (AuthorsLinear(group, k, width, sigma_w), AuthorsRadialTanh(k))]
    return nn.Sequential(nn.Linear(features, width), *layers, nn.Linear(width, classes))

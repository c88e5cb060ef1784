"""U(1)- and O(k)-equivariant linear layers and the radial non-linearity.

From "Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation"
(Iqbal, Keller, Song, Miyato, Welling). Real features come in blocks of size k (k = 2: the
pairs z_j = x_{2j} + i x_{2j+1} of U(1)). By Schur's lemma an O(k)-equivariant map is
W = w (x) I_k; a U(1)-equivariant one is a complex matrix, i.e. 2x2 real blocks
[[w1, w2], [-w2, w1]]. Neither has a bias (a bias would break the symmetry).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from goldstone.core.errors import ConfigError


def _check_width(name: str, width: int, k: int) -> None:
    if k < 2:
        raise ConfigError(f"k must be >= 2 (the block size of O(k)), got {k}")
    if width % k:
        raise ConfigError(f"{name}={width} is not divisible by k={k}")


class OkLinear(nn.Module):
    """y = (w (x) I_k) x for features in blocks of k: ``y[b, i, :] = sum_j w[i, j] x[b, j, :]``.

    sigma_W = std * sqrt(in_features / k); the weights are N(0, std^2).
    """

    def __init__(self, in_features: int, out_features: int, k: int, sigma_w: float = 1.0):
        super().__init__()
        _check_width("in_features", in_features, k)
        _check_width("out_features", out_features, k)
        self.k, self.in_blocks, self.out_blocks = k, in_features // k, out_features // k
        self.sigma_w = sigma_w
        self.weight = nn.Parameter(torch.empty(self.out_blocks, self.in_blocks))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=self.sigma_w / math.sqrt(self.in_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.unflatten(-1, (self.in_blocks, self.k))
        return torch.matmul(self.weight, blocks).flatten(-2)

    def dense_weight(self) -> torch.Tensor:
        """The assembled (out, in) real matrix w (x) I_k."""
        return torch.kron(self.weight, torch.eye(self.k, dtype=self.weight.dtype, device=self.weight.device))


class U1Linear(nn.Module):
    """Complex linear map on z = x_{2j} + i x_{2j+1}: z_out = (w1 - i w2) z, i.e. every 2x2 block
    of the real weight is [[w1, w2], [-w2, w1]].

    sigma_W = std * sqrt(in_features) with in_features the real width; w1, w2 ~ N(0, std^2).
    """

    k = 2

    def __init__(self, in_features: int, out_features: int, sigma_w: float = 1.0):
        super().__init__()
        _check_width("in_features", in_features, 2)
        _check_width("out_features", out_features, 2)
        self.in_features, self.sigma_w = in_features, sigma_w
        self.w1 = nn.Parameter(torch.empty(out_features // 2, in_features // 2))
        self.w2 = nn.Parameter(torch.empty(out_features // 2, in_features // 2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.sigma_w / math.sqrt(self.in_features)
        nn.init.normal_(self.w1, std=std)
        nn.init.normal_(self.w2, std=std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pairs = x.unflatten(-1, (-1, 2))
        re, im = pairs[..., 0], pairs[..., 1]
        out_re = re @ self.w1.T + im @ self.w2.T
        out_im = im @ self.w1.T - re @ self.w2.T
        return torch.stack((out_re, out_im), dim=-1).flatten(-2)

    def dense_weight(self) -> torch.Tensor:
        """The assembled (out, in) real matrix of 2x2 blocks [[w1, w2], [-w2, w1]]."""
        blocks = torch.stack((torch.stack((self.w1, self.w2), -1), torch.stack((-self.w2, self.w1), -1)), -2)
        return blocks.permute(0, 2, 1, 3).reshape(2 * self.w1.shape[0], 2 * self.w1.shape[1])


class GenericLinear(nn.Linear):
    """The generic baseline: a dense map with weights N(0, (sigma_W / sqrt(N))^2), no bias."""

    def __init__(self, in_features: int, out_features: int, sigma_w: float = 1.0):
        self.sigma_w = sigma_w
        super().__init__(in_features, out_features, bias=False)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=self.sigma_w / math.sqrt(self.in_features))


class RadialActivation(nn.Module):
    """phi(v) = f(|v|) v / |v| on every block of k features; f = tanh by default.

    Commutes with any rotation or reflection of each block, so it keeps U(1)/O(k) equivariance.
    """

    def __init__(self, k: int, profile: Callable[[torch.Tensor], torch.Tensor] = torch.tanh):
        super().__init__()
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        self.k, self.profile = k, profile

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = x.unflatten(-1, (-1, self.k))
        radius = torch.linalg.vector_norm(blocks, dim=-1, keepdim=True)
        safe = radius.clamp_min(torch.finfo(x.dtype).tiny ** 0.5)
        return (blocks * (self.profile(safe) / safe)).flatten(-2)

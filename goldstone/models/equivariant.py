"""U(1)- and O(k)-equivariant linear layers and the radial non-linearity.

From "Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation"
(Iqbal, Keller, Song, Miyato, Welling). Real features come in blocks of size k, stored k-major
(`goldstone.groups`: component d of block j at index d n + j). By Schur's lemma an
O(k)-equivariant map is W = w (x) I_k, which on k-major features is one matrix multiply of the k
component rows by w; a U(1)-equivariant one is a complex matrix w1 - i w2, i.e. the real matrix
[[w1, w2], [-w2, w1]] on (Re z, Im z). Neither has a bias (a bias would break the symmetry).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from goldstone.core.errors import ConfigError
from goldstone.groups import components


class RowMatrixLayer(nn.Module):
    """A linear layer that acts on rows of its input by one matrix M (`row_matrix`), which
    `goldstone.models.radial_stack` multiplies directly, several layers at a time."""

    def row_matrix(self) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def row_matrices(layers: list[RowMatrixLayer]) -> list[torch.Tensor]:
        """`row_matrix()` of each of `layers` (all of this class)."""
        return [layer.row_matrix() for layer in layers]

    @staticmethod
    def parameter_gradients(layers: list[RowMatrixLayer], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """dL/d(parameters) of all `layers`, in the order of their `parameters()`, from dL/dM of each."""
        return grads


def _check_width(name: str, width: int, k: int) -> None:
    if k < 2:
        raise ConfigError(f"k must be >= 2 (the block size of O(k)), got {k}")
    if width % k:
        raise ConfigError(f"{name}={width} is not divisible by k={k}")


class OkLinear(RowMatrixLayer):
    """y = (w (x) I_k) x for features in blocks of k: ``y_i^d = sum_j w[i, j] x_j^d`` for each
    component d, one matrix multiply over the k component rows (k-major layout, no copies).

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
        return torch.matmul(components(x, self.k), self.weight.T).flatten(-2)

    def row_matrix(self) -> torch.Tensor:
        """The matrix M of the layer on rows of features: y = rows(x) M^T, the rows of x being its k
        component rows of n."""
        return self.weight

    def dense_weight(self) -> torch.Tensor:
        """The assembled (out, in) real matrix w (x) I_k, in the k-major layout I_k (x) w."""
        return torch.kron(torch.eye(self.k, dtype=self.weight.dtype, device=self.weight.device), self.weight)


class U1Linear(RowMatrixLayer):
    """Complex linear map z_out = (w1 - i w2) z on z = Re z + i Im z (features [Re z, Im z]): one
    real matrix multiply by [[w1, w2], [-w2, w1]], assembled from the two halves at each call.

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
        return nn.functional.linear(x, self.dense_weight())

    def row_matrix(self) -> torch.Tensor:
        """The matrix of the layer on rows of features: each example is one row."""
        return self.dense_weight()

    @staticmethod
    def row_matrices(layers: list[U1Linear]) -> list[torch.Tensor]:
        """The dense matrices of all `layers`, assembled in one go."""
        w1, w2 = (torch.stack([getattr(layer, name) for layer in layers]) for name in ("w1", "w2"))
        return list(u1_matrix(w1, w2).unbind())

    @staticmethod
    def parameter_gradients(layers: list[U1Linear], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """(dL/dw1, dL/dw2) of every layer from dL/dM, M = [[w1, w2], [-w2, w1]]: dw1 is the sum of
        the two diagonal blocks of dM, dw2 the upper right minus the lower left."""
        m, n = layers[0].w1.shape
        g = torch.stack(grads)
        dw1, dw2 = g[:, :m, :n] + g[:, m:, n:], g[:, :m, n:] - g[:, m:, :n]
        return [grad for pair in zip(dw1.unbind(), dw2.unbind()) for grad in pair]

    def dense_weight(self) -> torch.Tensor:
        """The assembled (out, in) real matrix [[w1, w2], [-w2, w1]] (k-major layout)."""
        return u1_matrix(self.w1, self.w2)


def u1_matrix(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The real (..., 2m, 2n) matrix [[w1, w2], [-w2, w1]] of the complex map w1 - i w2 on
    (Re z, Im z), from its (..., m, n) halves."""
    return torch.cat((torch.cat((w1, w2), -1), torch.cat((-w2, w1), -1)), -2)


class GenericLinear(nn.Linear, RowMatrixLayer):
    """The generic baseline: a dense map with weights N(0, (sigma_W / sqrt(N))^2), no bias."""

    def __init__(self, in_features: int, out_features: int, sigma_w: float = 1.0):
        self.sigma_w = sigma_w
        super().__init__(in_features, out_features, bias=False)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=self.sigma_w / math.sqrt(self.in_features))

    def row_matrix(self) -> torch.Tensor:
        """The matrix of the layer on rows of features: each example is one row."""
        return self.weight


class RadialActivation(nn.Module):
    """phi(v) = tanh(|v|) v / |v| on every block of k features.

    Commutes with any rotation or reflection of each block, so it keeps U(1)/O(k) equivariance.
    |v|^2 is clamped at the dtype's `tiny`, so v = 0 gives phi'(0) = I and no NaN. Eight tensor
    ops on the (..., k, n) components; `goldstone.models.radial_stack` fuses it with the linear
    layers.
    """

    def __init__(self, k: int):
        super().__init__()
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return radial_tanh(x, self.k)


def radial_tanh(x: torch.Tensor, k: int) -> torch.Tensor:
    """phi(v) = tanh(|v|) v / |v| on every k-block of the k-major features `x` (..., n k)."""
    z = components(x, k)
    r = squared_block_norms(z).sqrt()
    return (z * (torch.tanh(r) / r)).flatten(-2)


def squared_block_norms(z: torch.Tensor) -> torch.Tensor:
    """|v_j|^2 of every block from its (..., k, n) components, as (..., 1, n), clamped at the dtype's
    `tiny` so that norms and 1/|v| stay finite at v = 0."""
    return (z * z).sum(-2, keepdim=True).clamp_min(torch.finfo(z.dtype).tiny)


def apply_row_matrix(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """A layer given by its `row_matrix()` M on a batch `x` (B, N_in): rows(x) M^T as (B, N_out)."""
    return (x.reshape(-1, matrix.shape[1]) @ matrix.T).view(x.shape[0], -1)

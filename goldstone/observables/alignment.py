"""Alignment of representations and of consecutive layers.

- Linear CKA ("Similarity of Neural Network Representations Revisited", Kornblith et al. 2019):
  CKA(X, Y) = |Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F) on centred features of the same inputs, e.g. two
  seeds or two models (1 for representations equal up to rotation and scale). The "universal
  representation" reading of Ziyin et al. (2025): noise and weight decay pick aligned minima.
- Cross-layer alignment of a hidden layer (producer W_l, consumer W_{l+1}): |<u_k(W_l), v_k(W_{l+1})>|,
  the k-th left singular vector of W_l against the k-th right singular vector of W_{l+1}, for the
  top `count` directions; 1 for a balanced deep linear network (W_{l+1}^T W_{l+1} = W_l W_l^T).
- Per-neuron balance c_i = |W_in[i]|^2 + b_i^2 - |W_out[:, i]|^2: the rescaling symmetry's charge,
  conserved by gradient flow and 0 at every stationary point with weight decay.
"""

from __future__ import annotations

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.models.layer_pairs import layer_pairs
from goldstone.observables.neuron_census import neuron_vectors, weight_matrix


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two feature matrices (examples x features) of the same examples."""
    if len(x) != len(y):
        raise GoldstoneError(f"linear CKA: {len(x)} and {len(y)} examples; give features of the same inputs")
    x = (x - x.mean(0)).double()
    y = (y - y.mean(0)).double()
    cross = (y.T @ x).pow(2).sum()
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()).clamp_min(1e-300))


def cross_layer_alignment(model: nn.Module, count: int = 4, example=None) -> dict[str, torch.Tensor]:
    """Per hidden layer, |<u_k(W_l), v_k(W_{l+1})>| for k < `count` (Linear pairs without a
    flatten; a conv pair compares channels)."""
    pairs, _ = layer_pairs(model, example)
    modules = dict(model.named_modules())
    out = {}
    for pair in pairs:
        w_in, w_out = (weight_matrix(modules[name]).double() for name in (pair.producer, pair.consumer))
        if pair.block != 1:
            w_out = w_out.reshape(w_out.shape[0], -1, pair.block).sum(-1)
        left = torch.linalg.svd(w_in, full_matrices=False).U[:, :count]
        right = torch.linalg.svd(w_out, full_matrices=False).Vh[:count].T
        k = min(left.shape[1], right.shape[1])
        out[pair.name] = (left[:, :k] * right[:, :k]).sum(0).abs()
    return out


def neuron_balance(model: nn.Module, example=None) -> dict[str, torch.Tensor]:
    """Per hidden layer, c_i for every unit (with BatchNorm between: gamma_i^2 + beta_i^2 - |W_out[:, i]|^2)."""
    pairs, _ = layer_pairs(model, example)
    out = {}
    for pair in pairs:
        _, incoming, outgoing = neuron_vectors(model, pair)
        out[pair.name] = incoming - outgoing
    return out

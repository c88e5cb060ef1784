"""Symmetry-protected neutral directions of an equivariant recurrence.

If h -> F(h) commutes with a compact group G, every trajectory h_t comes with the orbit g h_t, so
a perturbation along the orbit's tangent space neither grows nor decays: the Lyapunov spectrum has
at least dim(G/H) exponents at zero, H the stabiliser of the state ("Spontaneous Symmetry Breaking
and Goldstone Modes for Deep Information Propagation"; "Symmetry-Protected Lyapunov Neutral Modes
in Equivariant Recurrent Networks"). For O(k) acting alike on n blocks whose vectors span a
d-dimensional subspace, H = O(k - d), so dim(G/H) = k(k-1)/2 - (k-d)(k-d-1)/2 (= k(k-1)/2 once
d >= k - 1). For U(1) it is 1 unless the state is zero.
"""

from __future__ import annotations

import torch

from goldstone.core.errors import ConfigError
from goldstone.groups import blocks
from goldstone.theory.arguments import real, reals, whole


def neutral_mode_count(group: str, k: int, span: int) -> int:
    """dim(G/H) for a state whose blocks span a `span`-dimensional subspace of R^k."""
    k, span = whole("k", k), whole("span", span, 0)
    if group == "u1":
        return 1 if span > 0 else 0
    if group != "ok":
        raise ConfigError(f"group must be u1 or ok (a generic map has no protected modes), got {group!r}")
    if span > k:
        raise ValueError(f"span must lie in [0, k={k}], got {span}")
    return k * (k - 1) // 2 - (k - span) * (k - span - 1) // 2


def block_span(h: torch.Tensor, k: int, rtol: float = 1e-6, atol: float = 1e-6) -> int:
    """Dimension of the subspace of R^k spanned by the blocks of one state h (N,) (numerical rank
    of its (n, k) block matrix, singular values below max(atol, rtol x the largest) counted as zero).
    `atol` makes a state that has decayed onto the symmetric point h = 0 span nothing: there the
    orbit is a point and no direction is protected (a trained gated cell can fall there)."""
    reals("h", h)
    k, rtol, atol = whole("k", k), real("rtol", rtol, 0), real("atol", atol, 0)
    if h.shape[-1] % k:
        raise ValueError(f"h must hold whole blocks of k = {k} features, got {h.shape[-1]}")
    return int(torch.linalg.matrix_rank(blocks(h, k), atol=atol, rtol=rtol))

"""Lyapunov spectrum of a map h -> F(h) by the QR method.

Benettin et al. / Eckmann & Ruelle: carry an orthonormal frame Q along the trajectory,
J(h_t) Q_t = Q_{t+1} R_{t+1}, and average log |diag R|; the i-th average is the i-th exponent
(per step, natural log). The Jacobians of a batch of trajectories come from one vmapped jacrev,
the QR factorisations from one batched call per step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from goldstone.core.errors import GoldstoneError


def lyapunov_spectrum(step: Callable[[torch.Tensor], torch.Tensor], h0: torch.Tensor, steps: int,
                      transient: int = 0) -> torch.Tensor:
    """Exponents (B, N), largest first, of the map `step` (a function of one state (N,) or of a
    batch (B, N) row by row) from the states h0 (B, N), after `transient` untracked steps."""
    if h0.dim() != 2:
        raise GoldstoneError(f"h0 must be a batch of states (B, N), got shape {tuple(h0.shape)}")
    if steps < 1:
        raise GoldstoneError(f"steps must be >= 1, got {steps}")
    one = lambda h: step(h.unsqueeze(0)).squeeze(0)  # noqa: E731  (a single state through a batched map)
    jacobian = torch.func.vmap(torch.func.jacrev(one))
    h = h0.detach()
    with torch.no_grad():
        for _ in range(transient):
            h = step(h)
    q = torch.eye(h.shape[1], dtype=h.dtype, device=h.device).expand(h.shape[0], -1, -1)
    total = torch.zeros(h.shape, dtype=torch.float64, device=h.device)
    for _ in range(steps):
        q, r = torch.linalg.qr(jacobian(h) @ q)
        total += r.diagonal(dim1=-2, dim2=-1).abs().log().double()
        with torch.no_grad():
            h = step(h)
    return (total / steps).sort(dim=-1, descending=True).values

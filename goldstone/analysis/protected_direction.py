"""The protected direction of a recurrence through time.

For a map h -> F(h) that commutes with a group (an equivariant RNN under the blank input) and a
generator T of the group, d/dalpha F^t(e^{alpha T} h_0) = T F^t(h_0), so the Jacobian of t steps
maps T h_0 exactly onto T h_t: ratio = |J_t T h_0| / |T h_t| = 1 however long the delay, and the
gain |T h_t| / |T h_0| stays of order one in the broken phase: the Goldstone mode carries the
state's phase undamped ("Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information
Propagation"). A recurrence without the symmetry has no such direction (ratio away from one).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from goldstone.groups import act, generator_matrix


def protected_direction(step: Callable[[torch.Tensor], torch.Tensor], h0: torch.Tensor, steps: int, k: int,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratio, gain) per state of `h0` (B, N) after `steps` applications of `step`, by one
    forward-mode Jacobian-vector product along T h_0 (T from `generator_matrix`); NaN where the
    state has decayed to exactly zero (no direction to protect)."""
    t = generator_matrix(k, generator, dtype=h0.dtype).to(h0.device)

    def run(h: torch.Tensor) -> torch.Tensor:
        for _ in range(steps):
            h = step(h)
        return h

    tangent = act(t, h0)
    h_t, pushed = torch.func.jvp(run, (h0,), (tangent,))
    expected = act(t, h_t).norm(dim=-1)
    nonzero = lambda norm: norm.masked_fill(norm == 0, float("nan"))  # noqa: E731  (no direction: NaN)
    return pushed.norm(dim=-1) / nonzero(expected), expected / nonzero(tangent.norm(dim=-1))

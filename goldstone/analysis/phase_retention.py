"""What of a recurrent state survives a delay, up to one global rotation of its blocks.

For states a, b (..., n k) in the k-major layout, with block matrices A, B (n, k):

- correlation = <a, b> / (|a| |b|), the plain overlap: 1 only if b = a;
- retention = max over g in G of <g a, b> / (|a| |b|): 1 exactly when the delay moved the state
  only along the group orbit, the Goldstone (neutral) directions of a broken-phase recurrence
  ("Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation"). For
  O(k) it is the orthogonal Procrustes optimum ||A^T B||_* / (|a| |b|) (nuclear norm); for U(1)
  the magnitude of the complex overlap |sum_j conj(z_j^a) z_j^b| / (|a| |b|);
- rotation (U(1)): the phase arg sum_j conj(z_j^a) z_j^b that the delay applied.

Each state is scaled to unit norm first, so that states decayed to 1e-20 (a recurrence in its
symmetric phase) still give exact values in float32; a zero state gives NaN.
"""

from __future__ import annotations

import dataclasses

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.groups import blocks, components


def _unit(v: torch.Tensor) -> torch.Tensor:
    """v / |v| along the last axis, scaled by max |v_i| first so that squares cannot underflow;
    NaN for v = 0 (an undefined direction)."""
    largest = v.abs().amax(-1, keepdim=True)
    v = v / largest.masked_fill(largest == 0, float("nan"))
    return v / v.norm(dim=-1, keepdim=True)


@dataclasses.dataclass
class Retention:
    correlation: torch.Tensor  # (...,)
    retention: torch.Tensor    # (...,)
    rotation: torch.Tensor     # (...,) radians for U(1); NaN for O(k)


def phase_retention(a: torch.Tensor, b: torch.Tensor, group: str, k: int = 2) -> Retention:
    """Correlation, retention and rotation (see the module docstring) of state pairs (..., N)."""
    if a.shape != b.shape:
        raise GoldstoneError(f"states must have one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = map(_unit, (a, b))
    correlation = (a * b).sum(-1)
    if group == "u1":
        za, zb = (torch.complex(*components(v, 2).unbind(-2)) for v in (a, b))
        overlap = (za.conj() * zb).sum(-1)
        return Retention(correlation, overlap.abs(), torch.angle(overlap))
    if group in ("ok", "generic"):
        undefined = correlation.isnan()
        overlap = (blocks(a, k).transpose(-1, -2) @ blocks(b, k)).nan_to_num(0.0)  # SVD refuses NaN
        nuclear = torch.linalg.svdvals(overlap).sum(-1).masked_fill(undefined, float("nan"))
        return Retention(correlation, nuclear, torch.full_like(correlation, float("nan")))
    raise GoldstoneError(f"group must be u1, ok or generic, got {group!r}")

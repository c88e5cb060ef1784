"""Vortices of a phase field on a periodic lattice: winding numbers of every plaquette.

The standard lattice definition (as used for the U(1) 2-D convolutional RNN of "Spontaneous
Symmetry Breaking and Goldstone Modes for Deep Information Propagation", Appendix D.3): wrap each
link's phase difference into [-pi, pi), sum the four links around a plaquette anticlockwise and
divide by 2 pi. The result is an integer, +1 for a vortex, -1 for an antivortex; on a torus the
charges sum to zero. Vectorised over the lattice and over any leading axes (time, channels).
"""

from __future__ import annotations

import math

import torch

from goldstone.core.errors import GoldstoneError


def wrap(angle: torch.Tensor) -> torch.Tensor:
    """Angles mapped into [-pi, pi)."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def winding_numbers(phase: torch.Tensor) -> torch.Tensor:
    """Integer charge (..., H, W) of the plaquette whose corner is (i, j), for angles `phase`
    (..., H, W) on a periodic lattice (y along the second-to-last axis, x along the last).

    The loop is (i, j) -> (i, j+1) -> (i+1, j+1) -> (i+1, j) -> (i, j), anticlockwise in (x, y),
    so theta(i, j) = atan2(i - i0, j - j0) has charge +1 at the plaquette holding (i0, j0).
    """
    if phase.dim() < 2:
        raise GoldstoneError(f"phase must have at least 2 dimensions (..., H, W), got shape {tuple(phase.shape)}")
    if phase.is_complex():
        raise GoldstoneError("phase must hold real angles: pass torch.angle(z) for a complex field z")
    right = phase.roll(-1, -1)      # theta(i, j+1)
    down = phase.roll(-1, -2)       # theta(i+1, j)
    diagonal = right.roll(-1, -2)   # theta(i+1, j+1)
    circulation = wrap(right - phase) + wrap(diagonal - right) + wrap(down - diagonal) + wrap(phase - down)
    return torch.round(circulation / (2 * math.pi)).to(torch.int64)

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


def winding_numbers(phase: torch.Tensor) -> torch.Tensor:
    """Integer charge (..., H, W) of the plaquette whose corner is (i, j), for angles `phase`
    (..., H, W) on a periodic lattice (y along the second-to-last axis, x along the last).

    The loop is (i, j) -> (i, j+1) -> (i+1, j+1) -> (i+1, j) -> (i, j), anticlockwise in (x, y),
    so theta(i, j) = atan2(i - i0, j - j0) has charge +1 at the plaquette holding (i0, j0). Charges
    are int8 (a plaquette holds at most one unit).
    """
    if phase.dim() < 2:
        raise GoldstoneError(f"phase must have at least 2 dimensions (..., H, W), got shape {tuple(phase.shape)}")
    if phase.is_complex():
        raise GoldstoneError("phase must hold real angles: pass torch.angle(z) for a complex field z")
    # wrap(d) = d - 2 pi n(d), n(d) = floor((d + pi) / 2 pi); the raw differences cancel around a loop,
    # so the charge is minus the sum of the links' integer jumps n: two jump fields, one per axis.
    along_x, along_y = _jumps(phase, -1), _jumps(phase, -2)
    return along_y.roll(-1, -1).sub_(along_x.roll(-1, -2)).add_(along_x).sub_(along_y).neg_()


def _jumps(phase: torch.Tensor, dim: int) -> torch.Tensor:
    """n(theta_next - theta) for every link along `dim`, as int8 (in {-1, 0, 1})."""
    return (phase.roll(-1, dim) - phase).add_(math.pi).mul_(1 / (2 * math.pi)).floor_().to(torch.int8)


def gated_winding_numbers(field: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """`winding_numbers` of the phase of a complex field (..., H, W), kept only on plaquettes whose
    four corners have a mean amplitude of at least `threshold` x the frame's RMS amplitude: where
    the field has all but vanished its phase is noise, and its charges would be spurious pairs.
    A genuine vortex core (amplitude dipping towards zero at one point) keeps corners well above a
    small threshold."""
    if not field.is_complex():
        raise GoldstoneError("field must be complex (a U(1) state z); got a real tensor")
    if not 0 < threshold < 1:
        raise GoldstoneError(f"vortex threshold must lie in (0, 1), got {threshold}")
    amplitude = field.abs()
    corners = (amplitude + amplitude.roll(-1, -1) + amplitude.roll(-1, -2) + amplitude.roll((-1, -1), (-1, -2))) / 4
    rms = amplitude.square().mean((-2, -1), keepdim=True).sqrt()
    return winding_numbers(torch.angle(field)) * (corners >= threshold * rms)

"""Winding numbers on synthetic phase fields with known charges."""

import math

import pytest
import torch

from goldstone.analysis.vortices import winding_numbers
from goldstone.core.errors import GoldstoneError

SIZE = 32


def vortex(i0: float, j0: float, charge: int = 1, size: int = SIZE) -> torch.Tensor:
    """theta(i, j) = charge * atan2(i - i0, j - j0), the core at (i0, j0) inside a plaquette."""
    i, j = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    return charge * torch.atan2(i - i0, j - j0)


def test_single_vortex_has_charge_one_at_its_plaquette():
    """Off the torus's seams, a lone +1 vortex: one plaquette of charge +1 at its core (the seam of
    the non-periodic field adds compensating charges only at the lattice's wrap-around border)."""
    charges = winding_numbers(vortex(10.5, 12.5))
    assert charges[10, 12] == 1
    interior = charges[1:-2, 1:-2]
    assert int(interior.abs().sum()) == 1


@pytest.mark.parametrize("charge", [-1, 2, -2])
def test_charge_of_higher_and_negative_vortices(charge):
    """A plaquette holds at most one unit (four wrapped links sum to less than 4 pi in size), so a
    charge-2 core shows as two unit charges beside each other: the charge near the core is the
    vortex's, and nothing else appears off the seams."""
    charges = winding_numbers(vortex(15.3, 15.6, charge))
    core = charges[13:18, 13:18]
    assert int(core.sum()) == charge and int(core.abs().sum()) == abs(charge)
    assert int(charges[1:-2, 1:-2].abs().sum()) == abs(charge)


def test_vortex_antivortex_pair_and_zero_total_charge_on_the_torus():
    phase = vortex(8.5, 8.5) - vortex(8.5, 20.5)  # +1 at (8, 8), -1 at (8, 20)
    charges = winding_numbers(phase)
    assert charges[8, 8] == 1 and charges[8, 20] == -1
    assert int(charges.sum()) == 0  # any field on a torus
    noise = winding_numbers(2 * math.pi * torch.rand(5, SIZE, SIZE, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(noise.sum((-2, -1)), torch.zeros(5, dtype=torch.int64))


def test_invariant_under_a_global_phase_rotation_and_batched_over_leading_axes():
    phase = vortex(8.5, 8.5) - vortex(20.5, 20.5) + vortex(25.5, 4.5, 2)
    charges = winding_numbers(phase)
    stack = torch.stack([phase + angle for angle in torch.linspace(0, 2 * math.pi, 7, dtype=torch.float64)])
    assert torch.equal(winding_numbers(stack), charges.expand(7, -1, -1))


def test_bad_input_is_one_clear_error():
    with pytest.raises(GoldstoneError, match="at least 2 dimensions"):
        winding_numbers(torch.zeros(5))
    with pytest.raises(GoldstoneError, match="torch.angle"):
        winding_numbers(torch.zeros(4, 4, dtype=torch.complex64))

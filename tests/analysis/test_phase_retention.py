"""Phase retention and the protected direction through time, against their exact values."""

import math

import pytest
import torch

from goldstone.analysis.phase_retention import phase_retention
from goldstone.observables.jacobian import protected_direction
from goldstone.core.errors import GoldstoneError
from goldstone.groups import act, random_rotation
from goldstone.models.recurrent import EquivariantRNN


@pytest.mark.parametrize("group,k", [("u1", 2), ("ok", 3), ("ok", 4)])
def test_a_rotated_state_is_fully_retained_and_a_fresh_one_is_not(group, k):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(6, 12 * k, generator=generator, dtype=torch.float64)
    g = (torch.tensor([[math.cos(0.7), -math.sin(0.7)], [math.sin(0.7), math.cos(0.7)]], dtype=torch.float64)
         if group == "u1" else random_rotation(k, generator))
    rotated = phase_retention(a, act(g, a), group, k)
    torch.testing.assert_close(rotated.retention, torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
    assert (rotated.correlation < 0.99).all()
    if group == "u1":  # z -> e^{i 0.7} z in (Re, Im) blocks
        torch.testing.assert_close(rotated.rotation, torch.full((6,), 0.7, dtype=torch.float64))
    else:
        assert rotated.rotation.isnan().all()
    fresh = phase_retention(a, torch.randn(6, 12 * k, generator=generator, dtype=torch.float64), group, k)
    assert (fresh.retention < 0.9).all() and (fresh.retention >= fresh.correlation.abs() - 1e-12).all()


def test_tiny_states_are_exact_in_float32_and_zero_states_are_nan():
    """A state decayed to 1e-25 (its squared norm below float32's smallest normal) keeps exact
    correlation and retention; a zero state has no direction: NaN, as its protected ratio."""
    a = torch.randn(3, 8) * 1e-25
    memory = phase_retention(a, 2 * a, "u1")
    torch.testing.assert_close(memory.correlation, torch.ones(3))
    torch.testing.assert_close(memory.retention, torch.ones(3))
    assert phase_retention(torch.zeros(2, 8), torch.ones(2, 8), "ok", 4).retention.isnan().all()
    ratio, gain = protected_direction(lambda h: 0.5 * h, torch.zeros(2, 8, dtype=torch.float64), 3, 2)
    assert ratio.isnan().all() and gain.isnan().all()


def test_retention_refuses_mismatched_states_and_unknown_groups():
    with pytest.raises(GoldstoneError, match="one shape"):
        phase_retention(torch.zeros(2, 4), torch.zeros(2, 6), "u1")
    with pytest.raises(GoldstoneError, match="group must be"):
        phase_retention(torch.zeros(2, 4), torch.zeros(2, 4), "so3")


@pytest.mark.parametrize("group,k,cell", [("u1", 2, "rnn"), ("u1", 2, "gru"), ("ok", 3, "rnn"), ("ok", 4, "gru")])
def test_the_protected_direction_survives_a_long_blank_delay_exactly(group, k, cell):
    """J_t T h_0 = T h_t for 40 blank steps (ratio 1 to 1e-10); a generic W has no such direction."""
    torch.manual_seed(0)
    model = EquivariantRNN(5, 24, group, k, cell, sigma_w=1.5).double()
    h0 = torch.randn(8, 24, dtype=torch.float64)
    with torch.no_grad():
        ratio, gain = protected_direction(model.blank_step, h0, 40, model.k)
    torch.testing.assert_close(ratio, torch.ones(8, dtype=torch.float64), rtol=0, atol=1e-10)
    assert (gain > 0).all() and gain.isfinite().all()
    generic = EquivariantRNN(5, 24, "generic", model.k, cell, sigma_w=1.5).double()
    with torch.no_grad():
        ratio, _ = protected_direction(generic.blank_step, h0, 40, model.k)
    assert (ratio - 1).abs().max() > 1e-2

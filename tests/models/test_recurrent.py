"""Equivariant recurrent cells: equivariance at zero input, the input field breaking it, parameter
counts, and the symmetry-protected Lyapunov exponents against theory."""

import pytest
import torch

from goldstone.analysis.lyapunov import lyapunov_spectrum
from goldstone.core.errors import ConfigError
from goldstone.models.recurrent import EquivariantRNN, parameter_count
from goldstone.groups import components
from goldstone.testing import Invariant, assert_equivariant, equivariance_error
from goldstone.theory.neutral_modes import block_span, neutral_mode_count

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("group,k", [("u1", 2), ("ok", 3), ("ok", 4)])
@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_blank_recurrence_is_equivariant(group, k, cell, dtype):
    model = EquivariantRNN(5, 24, group, k, cell, sigma_w=1.5).to(dtype)
    with torch.no_grad():
        assert_equivariant(model.blank_step, 24, group, model.k, dtype=dtype, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("group,k", [("u1", 2), ("ok", 3)])
def test_the_update_is_equivariant_in_state_and_drive_together(group, k, dtype):
    """Several inputs with their own representations: rotating the state h and the input drive U x
    together (the gates' drive invariant) rotates h'; the block norms, a second output, stay put."""
    model = EquivariantRNN(5, 24, group, k, "gru", sigma_w=1.5).to(dtype)
    n = 24 // model.k

    def update(h, drive, gate_drive):
        new = model.step(h, drive, gate_drive)
        return new, components(new, model.k).norm(dim=-2)
    assert_equivariant(update, [24, 24, Invariant(2 * n)], group, model.k, dtype=dtype, outputs=[True, False],
                       atol=TOLERANCE[dtype])
    with pytest.raises(AssertionError, match="not"):  # the drive left unrotated is a symmetry-breaking field
        assert_equivariant(update, [24, Invariant(24), Invariant(2 * n)], group, model.k, dtype=dtype,
                           outputs=[True, False], atol=TOLERANCE[dtype])


def test_an_input_field_or_a_generic_recurrence_breaks_the_symmetry():
    model = EquivariantRNN(5, 24, "u1", cell="gru", sigma_w=1.5).double()
    drive = torch.randn(16, 24, dtype=torch.float64)
    gate = torch.zeros(16, 24, dtype=torch.float64)
    with torch.no_grad():
        assert equivariance_error(lambda h: model.step(h, drive, gate), 24, "u1") > 1e-3
        generic = EquivariantRNN(5, 24, "generic", 2, sigma_w=1.5).double()
        assert equivariance_error(generic.blank_step, 24, "u1") > 1e-3


def test_sequence_module_matches_stepping_and_counts_parameters():
    model = EquivariantRNN(10, 64, "u1", cell="gru")
    x = torch.randn(3, 7, 10)
    states, last = model(x)
    h = torch.zeros(3, 64)
    for t in range(7):
        h = model.step(h, model.input(x[:, t]), model.gate_input(x[:, t]))
    torch.testing.assert_close(states[:, -1], h)
    torch.testing.assert_close(last, h)
    # 32 complex units: 2 * 32^2 recurrent + 64 x 10 input + gates (32 -> 64 with bias, 10 -> 64)
    assert parameter_count(model) == 2 * 32 ** 2 + 640 + (32 * 64 + 64) + 640
    assert parameter_count(EquivariantRNN(10, 64, "u1")) == 2 * 32 ** 2 + 640
    states.sum().backward()  # from the zero state: finite gradients
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("group,k", [("u1", 2), ("ok", 3), ("generic", 4)])
def test_the_fused_sequence_matches_the_plain_steps_and_gradcheck(group, k, cell):
    """One autograd node for the whole sequence: the states and every gradient (inputs, h0,
    recurrent, gate and input weights) equal the step-by-step plain ops, and gradcheck passes."""
    torch.manual_seed(0)
    model = EquivariantRNN(5, 12, group, k, cell, sigma_w=1.5).double()
    x = torch.randn(4, 6, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 12, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 6, 12, dtype=torch.float64)
    results = []
    for fused in (True, False):
        model.zero_grad()
        if fused:
            states = model(x, h0)[0]
        else:
            h, steps = h0, []
            for t in range(6):
                h = model.step(h, model.input(x[:, t]), model.gate_input(x[:, t]) if cell == "gru" else None)
                steps.append(h)
            states = torch.stack(steps, 1)
        grads = torch.autograd.grad((states * weights).sum(), [x, h0, *model.parameters()])
        results.append((states, grads))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-14)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.autograd.gradcheck(lambda x, h0: model(x, h0)[0], (x, h0))


def test_bad_widths_and_cells():
    with pytest.raises(ConfigError, match="not divisible by the block size 4"):
        EquivariantRNN(3, 30, "ok", 4)
    with pytest.raises(ConfigError, match="cell must be one of"):
        EquivariantRNN(3, 32, "u1", cell="lstm")


def test_neutral_mode_counts():
    assert neutral_mode_count("u1", 2, 2) == 1
    assert [neutral_mode_count("ok", 4, d) for d in range(5)] == [0, 3, 5, 6, 6]
    aligned = torch.stack([torch.full((4,), c) for c in (1.0, 2.0, 0.5)]).flatten()  # 4 equal blocks, k-major
    assert block_span(aligned, 3) == 1 and block_span(torch.randn(12, dtype=torch.float64), 3) == 3
    assert block_span(1e-15 * torch.randn(12, dtype=torch.float64), 3) == 0  # decayed onto the symmetric point
    assert neutral_mode_count("u1", 2, block_span(1e-15 * torch.randn(8, dtype=torch.float64), 2)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("group,k,cell,sigma_w", [("ok", 3, "rnn", 1.5), ("u1", 2, "gru", 3.0)])
def test_lyapunov_spectrum_has_the_protected_zero_modes(group, k, cell, sigma_w):
    """On the broken-phase attractor of the blank recurrence, exactly dim(G/H) exponents sit within
    0.01 of zero (measured: within 0.003), the next below -0.02 (measured: -0.033 for O(3), -0.065
    for U(1)): 3 for O(3) with blocks spanning R^3, 1 for U(1). 1000 steps after a 1000-step
    transient, 3 trajectories."""
    torch.manual_seed(0)
    model = EquivariantRNN(5, 24, group, k, cell, sigma_w).double()
    step = model.blank_step
    h0 = torch.randn(3, 24, dtype=torch.float64)
    with torch.no_grad():
        exponents = lyapunov_spectrum(step, h0, 1000, transient=1000)
        h = h0
        for _ in range(2000):
            h = step(h)
    for b in range(3):
        expected = neutral_mode_count(group, model.k, block_span(h[b], model.k))
        near_zero = int((exponents[b].abs() < 0.01).sum())
        assert near_zero == expected, (exponents[b, :6], expected)
        assert float(exponents[b, expected]) < -0.02

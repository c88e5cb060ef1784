"""The U(1) 2-D convolutional RNN: global phase and lattice translation symmetry of the blank
recurrence, the generic kernel breaking the first, and the sequence module equal to its steps."""

import pytest
import torch

from goldstone.core.errors import ConfigError
from goldstone.models.conv_rnn import ConvRNN, periodic_interpolation, phase_field
from goldstone.testing import assert_equivariant, equivariance_error

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def blank_step(model: ConvRNN):
    """z -> F(z) under the blank input, on flat k-major states (B, 2 C H W)."""
    shape = (2 * model.channels, model.size, model.size)

    def step(flat):
        z = flat.view(-1, *shape)
        return model.step(z, torch.zeros_like(z)).flatten(1)
    return step


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blank_recurrence_commutes_with_a_global_phase(dtype):
    model = ConvRNN(3, channels=2, size=6, sigma_w=1.5).to(dtype)
    with torch.no_grad():
        assert_equivariant(blank_step(model), 2 * 2 * 36, "u1", dtype=dtype, atol=TOLERANCE[dtype])
        generic = ConvRNN(3, channels=2, size=6, group="generic", sigma_w=1.5).to(dtype)
        assert equivariance_error(blank_step(generic), 2 * 2 * 36, "u1", dtype=dtype) > 1e-3


def test_blank_recurrence_commutes_with_translations_of_the_torus():
    model = ConvRNN(3, channels=2, size=7, kernel_size=5, sigma_w=1.5).double()
    z = torch.randn(4, 4, 7, 7, dtype=torch.float64)
    zero = torch.zeros_like(z)
    with torch.no_grad():
        shifted = model.step(z.roll((2, -3), (-2, -1)), zero)
        torch.testing.assert_close(shifted, model.step(z, zero).roll((2, -3), (-2, -1)), rtol=1e-12, atol=1e-14)


def test_sequence_equals_its_steps_and_the_phase_field_reads_the_channels():
    torch.manual_seed(0)
    model = ConvRNN(3, channels=2, size=5).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    states, last = model(x)
    assert states.shape == (2, 4, 4, 5, 5)
    z = torch.zeros(2, 4, 5, 5, dtype=torch.float64)
    for t in range(4):
        z = model.step(z, model.input(x[:, t]).view(2, 4, 5, 5))
        torch.testing.assert_close(states[:, t], z)
    torch.testing.assert_close(last, z)
    field = phase_field(states)
    assert field.shape == (2, 4, 2, 5, 5) and field.is_complex()
    torch.testing.assert_close(field.real, states[:, :, :2])
    torch.testing.assert_close(field.imag, states[:, :, 2:])
    assert field.abs().max() < 1  # the radial tanh keeps every |z| below one


def test_bad_shapes_are_refused():
    with pytest.raises(ConfigError, match="odd"):
        ConvRNN(3, kernel_size=4)
    with pytest.raises(ConfigError, match="smaller than kernel_size"):
        ConvRNN(3, size=2, kernel_size=3)
    with pytest.raises(ConfigError, match="u1, generic"):
        ConvRNN(3, group="ok")


def test_periodic_interpolation_keeps_constants_wraps_round_and_is_the_identity_at_full_size():
    spread = periodic_interpolation(4, 16).double()
    assert spread.shape == (256, 16)
    torch.testing.assert_close(spread.sum(1), torch.ones(256, dtype=torch.float64))
    torch.testing.assert_close(periodic_interpolation(5, 5), torch.eye(25))
    coarse = torch.zeros(4, 4, dtype=torch.float64)
    coarse[0, 0] = 1.0  # one coarse cell: its bump reaches across the torus's seam
    fine = (spread @ coarse.flatten()).view(16, 16)
    assert fine[0, 0] > 0 and fine[15, 15] > 0 and fine[8, 8] == 0  # wraps round, stays local
    assert (fine.diff(dim=1).abs().max() <= 0.25 + 1e-12)  # smooth: steps of at most 1 / (16 / 4)


def test_a_coarse_input_grid_keeps_the_symmetry_and_feeds_smooth_drives():
    torch.manual_seed(0)
    model = ConvRNN(3, channels=2, size=8, input_grid=2, sigma_w=1.5).double()
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    states, _ = model(x)
    drive = (model.input(x[:, 0]).unflatten(-1, (4, -1)) @ model.spread.double().T).view(2, 4, 8, 8)
    torch.testing.assert_close(states[:, 0], model.step(torch.zeros_like(drive), drive))
    with torch.no_grad():
        assert_equivariant(model.blank_step, 2 * 2 * 64, "u1")
    with pytest.raises(ConfigError, match="input_grid"):
        ConvRNN(3, size=8, input_grid=9)

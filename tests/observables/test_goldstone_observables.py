import math

import pytest
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import measure
from goldstone.models import DeepMLP
from goldstone.observables import JacobianSpectrum, OrderParameter, Overlap, ProtectedJacobian
from goldstone.groups import act


def test_order_parameter_is_mean_block_norm():
    model = DeepMLP(6, 2, "ok", k=3, width=12, depth=3, sigma_w=1.5)
    x = torch.randn(5, 6)
    (result,) = measure(model, [OrderParameter(k=3)], x)
    with torch.no_grad():
        h = model.features(x)
        expected = []
        for block in model.blocks:
            h = block(h)
            expected.append(h.double().unflatten(-1, (-1, 3)).pow(2).sum(-1).mean())
    torch.testing.assert_close(result.c, torch.stack(expected))


def test_a_block_size_that_does_not_divide_the_width_is_one_error():
    model = DeepMLP(6, 2, "ok", k=3, width=12, depth=3)
    for observable in (OrderParameter(k=5), Overlap(k=5)):
        with pytest.raises(GoldstoneError, match="has 12 features, not a whole number of blocks of k = 5"):
            measure(model, [observable], torch.randn(4, 6))


def test_order_parameter_accumulates_over_batches():
    model = DeepMLP(6, 2, "u1", width=8, depth=2)
    x = torch.randn(8, 6)
    (whole,) = measure(model, [OrderParameter()], x)
    (split,) = measure(model, [OrderParameter()], [x[:4], x[4:]])
    torch.testing.assert_close(whole.c, split.c)


@pytest.mark.parametrize("group", ["u1", "ok"])
def test_protected_direction_ratio_is_one(group):
    """J (T x^0) = T x^L exactly for an equivariant trunk, to 1e-5 (float32 model, 100 layers)."""
    model = DeepMLP(64, 10, group, k=4, width=64, depth=100, sigma_w=1.2)
    (result,) = measure(model, [ProtectedJacobian(k=model.k)], torch.randn(8, 64))
    assert result.max_deviation < 1e-5
    assert float(result.gain.mean()) > 1e-2  # of order one in the broken phase


def test_generic_network_has_no_protected_direction():
    model = DeepMLP(64, 10, "generic", k=4, width=64, depth=30, sigma_w=1.2)
    (result,) = measure(model, [ProtectedJacobian(k=4)], torch.randn(8, 64))
    assert result.max_deviation > 0.1


def test_jacobian_spectrum_matches_autograd():
    model = DeepMLP(8, 2, "ok", k=2, width=8, depth=5, sigma_w=1.3)
    x = torch.randn(3, 8)
    (result,) = measure(model, [JacobianSpectrum()], x)
    m = model.double()
    jac = torch.autograd.functional.jacobian(lambda v: m.trunk(v.unsqueeze(0)).squeeze(0), m.features(x.double())[0])
    s = torch.linalg.svdvals(jac)
    assert float(result.top[0]) == pytest.approx(float(s[0]), rel=1e-10)
    p = s / s.sum()
    assert float(result.effective_rank[0]) == pytest.approx(float(torch.exp(-(p * p.log()).sum())), rel=1e-10)
    assert 1.0 < float(result.effective_rank[0]) < 8.0


class Trunk(nn.Module):
    """A user-style model: only the equivariant stack, inputs are x^0."""

    def __init__(self, model: DeepMLP):
        super().__init__()
        self.m = model

    def forward(self, x0):
        return self.m.trunk(x0)


def pair_phases(group: str, width: int = 2048, depth: int = 20, theta: float = 1.0):
    torch.manual_seed(0)
    trunk = Trunk(DeepMLP(4, 2, group, k=2, width=width, depth=depth, sigma_w=1.5).double())
    a = torch.randn(1, width, dtype=torch.float64) / 2 ** 0.5
    rotation = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
                            dtype=torch.float64)
    b = 0.8 * act(rotation, a) + 0.6 * torch.randn(1, width, dtype=torch.float64) / 2 ** 0.5  # z_b = e^{i theta} z_a + noise
    layers = [f"m.blocks.{l}.hook_out" for l in range(depth)]
    (result,) = measure(trunk, [Overlap(k=2, layers=layers)], torch.cat([a, b]))
    return result


def test_u1_overlap_phase_is_conserved_and_magnitude_decays():
    """Eq. 11 in mean field: the phase of q_ab = <z_a conj(z_b)> (-1 rad at the input) is
    conserved while |q| relaxes; at N = 2048 it stays within 0.2 rad over 20 layers. A generic
    network mixes real and imaginary parts: its phase collapses to about 0 at once."""
    u1 = pair_phases("u1")
    assert float((u1.phase[:, 0] + 1.0).abs().max()) < 0.2
    assert float(u1.correlation[-1, 0]) < 0.7 * float(u1.correlation[0, 0])
    generic = pair_phases("generic")
    assert float(generic.phase[:, 0].abs().max()) < 0.3

import pytest
import torch

from goldstone.core.errors import ConfigError
from goldstone.core.hooks import capture
from goldstone.models import DeepMLP, GenericLinear, OkLinear, RadialActivation, U1Linear
from goldstone.groups import act, blocks, random_rotation
from goldstone.testing import assert_equivariant, equivariance_error

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_u1_linear_and_activation_are_equivariant(dtype):
    layer = U1Linear(32, 48).to(dtype)
    assert_equivariant(layer, 32, "u1", dtype=dtype, atol=TOLERANCE[dtype])
    assert_equivariant(RadialActivation(2), 32, "u1", dtype=dtype, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_ok_linear_and_activation_are_equivariant(k, dtype):
    layer = OkLinear(8 * k, 4 * k, k).to(dtype)
    assert_equivariant(layer, 8 * k, "ok", k, dtype=dtype, atol=TOLERANCE[dtype])
    assert_equivariant(RadialActivation(k), 8 * k, "ok", k, dtype=dtype, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("group", ["u1", "ok"])
def test_deep_trunk_is_equivariant(group, dtype):
    model = DeepMLP(10, 3, group, k=4, width=32, depth=30, sigma_w=1.5).to(dtype)
    assert_equivariant(model.trunk, 32, group, 4, dtype=dtype, atol=10 * TOLERANCE[dtype])


def test_generic_layer_is_not_equivariant():
    """The check can fail: a dense layer violates O(4) equivariance by order one."""
    assert equivariance_error(GenericLinear(16, 16).double(), 16, "ok", 4) > 0.1
    with pytest.raises(AssertionError, match="not ok-equivariant"):
        assert_equivariant(GenericLinear(16, 16).double(), 16, "ok", 4)


def test_u1_is_not_reflection_equivariant():
    """U(1) commutes with phases, not with complex conjugation (a reflection of O(2))."""
    layer = U1Linear(8, 8).double()
    reflect = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    x = torch.randn(4, 8, dtype=torch.float64)
    assert (layer(act(reflect, x)) - act(reflect, layer(x))).abs().max() > 1e-3


def test_dense_weights_match_forward():
    x = torch.randn(5, 24, dtype=torch.float64)
    for layer in (U1Linear(24, 12), OkLinear(24, 12, 3)):
        layer = layer.double()
        torch.testing.assert_close(layer(x), x @ layer.dense_weight().T)
    u1 = U1Linear(6, 4).double()  # 2 output and 3 input pairs: Re z_j at j, Im z_j at n + j
    w = u1.dense_weight()
    pair = w[[1, 3]][:, [2, 5]]  # output pair 1, input pair 2
    torch.testing.assert_close(pair, torch.stack((torch.stack((u1.w1[1, 2], u1.w2[1, 2])),
                                                  torch.stack((-u1.w2[1, 2], u1.w1[1, 2])))))


def test_k_major_layout_matches_the_block_major_dense_weight():
    """Our O(k) weight I_k (x) w is the authors' block-major w (x) I_k with features relabelled
    d*n + j <-> j*k + d; `blocks` is that relabelling as a view."""
    k, n = 3, 4
    layer = OkLinear(n * k, n * k, k).double()
    order = torch.arange(n * k).view(k, n).T.reshape(-1)  # block-major position -> k-major index
    block_major = torch.kron(layer.weight, torch.eye(k, dtype=torch.float64))
    torch.testing.assert_close(layer.dense_weight()[order][:, order], block_major)
    x = torch.randn(2, n * k, dtype=torch.float64)
    torch.testing.assert_close(blocks(x, k).flatten(-2), x[:, order])


def test_radial_activation_at_and_near_zero():
    """phi(0) = 0 with phi'(0) = I (no NaN from |v| = 0), and exact gradients at small radii."""
    act_ = RadialActivation(3)
    zero = torch.zeros(1, 6, requires_grad=True)
    (act_(zero) * torch.arange(6.0)).sum().backward()
    torch.testing.assert_close(zero.grad, torch.arange(6.0).view(1, 6))
    for scale in (1.0, 1e-3, 1e-9):
        torch.autograd.gradcheck(act_, (torch.randn(4, 12, dtype=torch.float64) * scale).requires_grad_())


def test_haar_rotation_is_orthogonal():
    q = random_rotation(5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(q @ q.T, torch.eye(5, dtype=torch.float64))


def test_haar_rotations_have_the_haar_moments_and_the_unfixed_qr_does_not():
    """Haar O(k), k >= 2: E tr Q = 0 and E (tr Q)^2 = 1 (Diaconis-Shahshahani), and Q_00 is positive
    half of the time. Plain QR of a Gaussian (LAPACK's sign convention) fails the last check."""
    gen = torch.Generator().manual_seed(0)
    qs = torch.stack([random_rotation(5, gen) for _ in range(4000)])
    trace = qs.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(float(trace.mean())) < 0.1  # 5 standard errors
    assert float(trace.pow(2).mean()) == pytest.approx(1.0, abs=0.15)
    assert float((qs[:, 0, 0] > 0).double().mean()) == pytest.approx(0.5, abs=0.05)
    unfixed = torch.linalg.qr(torch.randn(4000, 5, 5, generator=gen, dtype=torch.float64)).Q
    assert abs(float((unfixed[:, 0, 0] > 0).double().mean()) - 0.5) > 0.4


@pytest.mark.parametrize("cls,args", [(U1Linear, (64, 64, 1.0)), (OkLinear, (64, 64, 4, 1.0))])
def test_initialisation_scale_sets_sigma_w(cls, args):
    """Var of one output block coordinate = sigma_W^2 * mean block norm^2 / k."""
    layer = cls(*args[:-1], sigma_w=2.0).double()
    k = getattr(layer, "k", 2)
    x = torch.randn(4000, 64, dtype=torch.float64) / k ** 0.5  # c = 1
    with torch.no_grad():
        variance = layer(x).var().item()
    assert variance == pytest.approx(4.0 / k, rel=0.25)


def test_bad_widths_and_k():
    with pytest.raises(ConfigError, match="not divisible by k=2"):
        U1Linear(7, 8)
    with pytest.raises(ConfigError, match="not divisible by k=4"):
        OkLinear(10, 8, 4)
    with pytest.raises(ConfigError, match="k must be >= 2"):
        OkLinear(8, 8, 1)
    with pytest.raises(ConfigError, match="sigma_w must be > 0"):
        DeepMLP(4, 2, "ok", 4, 16, 2, sigma_w=0.0)


@pytest.mark.parametrize("group", ["u1", "ok", "generic"])
@pytest.mark.parametrize("scale", [1.0, 1e-4])
def test_fused_blocks_match_the_plain_ops(group, scale):
    """The fused block (one autograd node) gives the plain layer + activation's outputs and
    gradients, at order-one and at small radii, and passes gradcheck in float64."""
    torch.manual_seed(0)
    fused = DeepMLP(6, 3, group, k=4, width=16, depth=3, sigma_w=1.3).double()
    plain = DeepMLP(6, 3, group, k=4, width=16, depth=3, sigma_w=1.3, fused=False).double()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(5, 6, dtype=torch.float64) * scale
    outputs = []
    for model in (fused, plain):
        model.zero_grad()
        out = model(x)
        out.pow(2).sum().backward()
        outputs.append((out, [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=1e-12, atol=1e-15)
    for a, b in zip(outputs[0][1], outputs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    block = fused.blocks[0]
    torch.autograd.gradcheck(block, (torch.randn(4, 16, dtype=torch.float64, requires_grad=True) * scale,))


@pytest.mark.parametrize("group", ["u1", "ok", "generic"])
def test_hooks_see_every_block_of_the_fused_stack(group):
    """With a hook placed, the stack runs block by block; outputs and gradients are the same as
    the whole stack's, and the hook sees each block's output."""
    torch.manual_seed(1)
    model = DeepMLP(6, 3, group, k=4, width=16, depth=4, sigma_w=1.3).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    plain = DeepMLP(6, 3, group, k=4, width=16, depth=4, sigma_w=1.3, fused=False).double()
    plain.load_state_dict(model.state_dict())
    names = model.layer_hook_names()
    results = []
    for net, hooked in ((model, False), (model, True), (plain, True)):
        net.zero_grad()
        with capture(net, names if hooked else [], detach=False) as captured:
            out = net(x)
            seen = dict(captured)
        out.pow(2).sum().backward()
        results.append((out, [p.grad.clone() for p in net.parameters()], seen))
    for out, grads, _ in results[1:]:
        torch.testing.assert_close(out, results[0][0], rtol=1e-12, atol=1e-15)
        for a, b in zip(grads, results[0][1]):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)
    assert list(results[1][2]) == names
    for name in names:
        torch.testing.assert_close(results[1][2][name], results[2][2][name], rtol=1e-12, atol=1e-15)


def test_fused_blocks_refuse_double_backward_and_step_aside_for_torch_func():
    model = DeepMLP(6, 3, "ok", k=4, width=16, depth=2, sigma_w=1.3).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    (grad,) = torch.autograd.grad(model(x).pow(2).sum(), model.blocks[0].linear.weight, create_graph=True)
    with pytest.raises(RuntimeError, match="twice"):
        grad.sum().backward()
    plain = DeepMLP(6, 3, "ok", k=4, width=16, depth=2, sigma_w=1.3, fused=False).double()
    plain.load_state_dict(model.state_dict())
    h = torch.randn(3, 16, dtype=torch.float64)
    torch.testing.assert_close(torch.func.jacrev(model.trunk)(h), torch.func.jacrev(plain.trunk)(h))

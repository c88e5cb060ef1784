"""CKA, cross-layer alignment and per-neuron balance on exact cases; the mirror structure at a
symmetric point (research notes: to 1e-12 in float64)."""

import pytest
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.observables.alignment import cross_layer_alignment, linear_cka, neuron_balance


def test_cka_is_invariant_to_rotation_and_scale_and_low_for_independent_features():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 8, generator=g, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    assert linear_cka(x, 3 * x @ rotation) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, torch.randn(500, 8, generator=g, dtype=torch.float64)) < 0.1
    with pytest.raises(GoldstoneError, match="same inputs"):
        linear_cka(x, x[:10])


def test_balanced_linear_layers_are_aligned_and_balanced():
    g = torch.Generator().manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    w, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    s = torch.tensor([3.0, 2.0, 1.5, 1.0], dtype=torch.float64)
    model = nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 6, bias=False)).double()
    with torch.no_grad():  # W1 = R S V^T, W2 = U S R^T: W2^T W2 = W1 W1^T (balanced), u_k(W1) = v_k(W2)
        model[0].weight.copy_(w @ torch.diag(s) @ v[:, :4].T)
        model[2].weight.copy_(u[:, :4] @ torch.diag(s) @ w.T)
    alignment = cross_layer_alignment(model, example=torch.randn(2, 5, dtype=torch.float64))["0 → 2"]
    assert torch.allclose(alignment, torch.ones(4, dtype=torch.float64), atol=1e-10)
    balance = neuron_balance(model, example=torch.randn(2, 5, dtype=torch.float64))["0 → 2"]
    assert balance.shape == (4,)
    assert float(balance.sum()) == pytest.approx(0.0, abs=1e-10)  # traces agree: sum_i c_i = |W1|^2 - |W2|^2 = 0


def test_mirror_structure_at_a_symmetric_point():
    """Two identical tanh units (theta_0 = theta_1): with P the projector on (theta_0 - theta_1)/sqrt(2),
    l(theta) = l((I - 2P) theta), O^T grad l = 0 and P H (I - P) = 0, to 1e-12 in float64."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    y = torch.randn(50, generator=g, dtype=torch.float64)
    w = torch.randn(3, 4, generator=g, dtype=torch.float64)
    a = torch.randn(3, generator=g, dtype=torch.float64)
    w[1], a[1] = w[0], a[0]
    theta = torch.cat([w.flatten(), a])

    def loss(t):
        ww, aa = t[:12].view(3, 4), t[12:]
        return 0.5 * (torch.tanh(x @ ww.T) @ aa - y).pow(2).mean()

    columns = torch.zeros(len(theta), 5, dtype=torch.float64)  # O: unit 0 minus unit 1, per coordinate
    for j, (first, second) in enumerate([(0, 4), (1, 5), (2, 6), (3, 7), (12, 13)]):
        columns[first, j], columns[second, j] = 2 ** -0.5, -(2 ** -0.5)
    projector = columns @ columns.T
    identity = torch.eye(len(theta), dtype=torch.float64)
    swapped = (identity - 2 * projector) @ (theta + torch.randn(len(theta), generator=g, dtype=torch.float64))
    assert abs(float(loss(swapped) - loss((identity - 2 * projector) @ swapped))) < 1e-12  # a mirror anywhere
    grad = torch.func.grad(loss)(theta)
    assert float((columns.T @ grad).norm()) < 1e-12 and float(grad.norm()) > 1e-3
    hessian = torch.func.hessian(loss)(theta)
    assert float((projector @ hessian @ (identity - projector)).norm()) < 1e-12


def test_per_neuron_balance_is_conserved_by_gd_and_decays_with_weight_decay():
    """Research notes (E: ReLU MLP 10-64-1, unbalanced init, full-batch GD, lr 0.01): c_i stays put
    without weight decay and follows exp(-2 eta lambda t) with it, to 1e-3."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 10, generator=g, dtype=torch.float64)
    y = torch.randn(256, 1, generator=g, dtype=torch.float64)
    ratios = {}
    for decay in (0.0, 0.01):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1)).double()
        with torch.no_grad():
            model[0].weight.mul_(3.0)  # unbalanced: |in_i|^2 >> |out_i|^2
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=decay)
        start = neuron_balance(model, example=x[:2])["0 → 2"]
        for _ in range(1000):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        ratios[decay] = neuron_balance(model, example=x[:2])["0 → 2"].sum() / start.sum()
    assert abs(float(ratios[0.0]) - 1) < 1e-3
    assert abs(float(ratios[0.01]) / torch.exp(torch.tensor(-2 * 0.01 * 0.01 * 1000.0)) - 1) < 1e-3

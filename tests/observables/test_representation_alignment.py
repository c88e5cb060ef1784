"""CRH alignments: the six cosines against covariances written out by hand, exactly 1 where theory
says so (a whitened input's first layer; a deep linear network at a weight-decay stationary point),
and below 1 where the symmetry is not restored (no weight decay, unbalanced start)."""

import pytest
import torch
from torch import nn
import torch.nn.functional as F

from goldstone.core.observable import measure
from goldstone.observables.representation_alignment import PAIRS, RepresentationAlignment, matrix_cosine


def whitened(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """n inputs whose second moment is exactly the identity: sqrt(n) times orthonormal columns."""
    q, _ = torch.linalg.qr(torch.randn(n, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    return q * n ** 0.5


def test_the_six_cosines_against_covariances_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).double()
    x, y = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))
    (result,) = measure(model, [RepresentationAlignment((x, y), F.cross_entropy)])
    h1 = model[0](x)
    a1 = model[1](h1)
    h2 = model[2](a1)
    h1.retain_grad(), a1.retain_grad(), h2.retain_grad()
    F.cross_entropy(h2, y).backward()
    moment = lambda t: t.T @ t / len(t)  # noqa: E731
    for i, (h_in, h_out, w) in enumerate([(x, h1, model[0].weight), (a1, h2, model[2].weight)]):
        w = w.detach()
        g_in = moment(h_in.grad) if h_in.grad is not None else None
        expected = [matrix_cosine(moment(h_in.detach()), w.T @ w), None if g_in is None else matrix_cosine(w.T @ w, g_in),
                    None if g_in is None else matrix_cosine(moment(h_in.detach()), g_in),
                    matrix_cosine(moment(h_out.detach()), w @ w.T), matrix_cosine(w @ w.T, moment(h_out.grad)),
                    matrix_cosine(moment(h_out.detach()), moment(h_out.grad))]
        for j, value in enumerate(expected):
            measured = float(result.alignment[i, j])
            if value is None:
                assert measured != measured, PAIRS[j]  # NaN: the first layer reads the data
            else:
                assert measured == pytest.approx(float(value), rel=1e-12), PAIRS[j]
    assert list(result.table().pair.unique()) == list(PAIRS)


def train_deep_linear(weight_decay: float, scale: tuple[float, float], steps: int = 6000) -> nn.Sequential:
    """Two bias-free linear layers, full-batch GD on a whitened teacher of singular values 3, 2, 1."""
    generator = torch.Generator().manual_seed(1)
    x = whitened(64, 6)
    u, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=generator))
    teacher = u[:, :3] @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ u[:, 3:].T
    model = nn.Sequential(nn.Linear(6, 6, bias=False), nn.Linear(6, 6, bias=False)).double()
    with torch.no_grad():
        for layer, s in zip(model, scale):
            layer.weight.copy_(s * torch.randn(6, 6, dtype=torch.float64, generator=generator) / 6 ** 0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * (model(x) - x @ teacher.T).pow(2).sum(1).mean()).backward()
        optimizer.step()
    return model, x, teacher


def test_weight_decay_restores_the_alignment_that_plain_gd_keeps_broken():
    """Whitened inputs make the first layer's H_out = W W^T exactly (cosine 1 however trained). At a
    stationary point of the loss plus weight decay, Noether's balance W_2^T W_2 = W_1 W_1^T makes the
    second layer's H_in = W_1 W_1^T align with its W^T W (to 1e-6); GD without weight decay from an
    unbalanced start conserves the imbalance, and the cosine stays well below 1."""
    loss = lambda out, target: 0.5 * (out - target).pow(2).sum(1).mean()  # noqa: E731
    cosines = {}
    for weight_decay in (0.05, 0.0):
        model, x, teacher = train_deep_linear(weight_decay, (2.0, 0.5))
        (result,) = measure(model, [RepresentationAlignment((x, x @ teacher.T), loss)])
        assert float(result.alignment[0, PAIRS.index("H_out~WWt")]) == pytest.approx(1, abs=1e-12)
        cosines[weight_decay] = float(result.alignment[1, PAIRS.index("H_in~WtW")])
    assert cosines[0.05] == pytest.approx(1, abs=1e-6) and cosines[0.0] < 0.95


def test_a_model_without_linear_layers_is_named():
    with pytest.raises(ValueError, match="no nn.Linear"):
        measure(nn.Sequential(nn.ReLU()), [RepresentationAlignment((torch.ones(2, 3), None), lambda o, t: o.sum())])

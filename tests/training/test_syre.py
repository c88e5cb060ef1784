"""The syre wrapper: a decoupled pull toward a fixed anchor after the wrapped step."""

import pytest
import torch

from goldstone.training.syre import Syre


def test_pull_toward_the_anchor_and_state_round_trip():
    p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = Syre(torch.optim.SGD([p], lr=0.1), anchor_scale=0.5, weight_decay=0.2, seed=1)
    anchor = optimizer.anchors[p].clone()
    p.grad = torch.zeros_like(p)
    optimizer.step()
    assert torch.allclose(p.detach(), 1 - 0.1 * 0.2 * (1 - anchor))
    again = Syre(torch.optim.SGD([p], lr=0.1), anchor_scale=0.5, weight_decay=0.2, seed=1)
    assert torch.equal(again.anchors[p], anchor)  # seeded: the same anchor every time
    state = optimizer.state_dict()
    other = Syre(torch.optim.SGD([p], lr=0.1), anchor_scale=0.0, weight_decay=0.2)
    other.load_state_dict(state)
    assert torch.equal(other.anchors[p], anchor)


def test_syre_ar_pulls_through_a_seeded_diagonal_metric_and_is_syre_at_zero_spread():
    """syre-AR: theta <- theta - lr wd D (theta - theta_0), D_ii in [1 - d, 1 + d], distinct; the
    anchors are those of plain syre with the same seed; d = 0 is plain syre bit for bit."""
    p = torch.nn.Parameter(torch.ones(50, dtype=torch.float64))
    ar = Syre(torch.optim.SGD([p], lr=0.1), anchor_scale=0.5, weight_decay=0.2, seed=3, metric_spread=0.1)
    plain = Syre(torch.optim.SGD([torch.nn.Parameter(p.detach().clone())], lr=0.1), 0.5, 0.2, seed=3)
    assert torch.equal(ar.anchors[p], next(iter(plain.anchors.values())))
    d = ar.metrics[p]
    assert ((d >= 0.9) & (d <= 1.1)).all() and len(d.unique()) == 50
    anchor = ar.anchors[p].clone()
    p.grad = torch.zeros_like(p)
    ar.step()
    assert torch.allclose(p.detach(), 1 - 0.1 * 0.2 * d * (1 - anchor), rtol=0, atol=1e-15)
    restored = Syre(torch.optim.SGD([p], lr=0.1), anchor_scale=0.0, weight_decay=0.2)
    restored.load_state_dict(ar.state_dict())
    assert torch.equal(restored.metrics[p], d)

    q, r = (torch.nn.Parameter(torch.ones(5, dtype=torch.float64)) for _ in range(2))
    zero = Syre(torch.optim.SGD([q], lr=0.1), 0.5, 0.2, seed=1, metric_spread=0.0)
    syre = Syre(torch.optim.SGD([r], lr=0.1), 0.5, 0.2, seed=1)
    for parameter, optimizer in ((q, zero), (r, syre)):
        parameter.grad = torch.zeros_like(parameter)
        optimizer.step()
    assert torch.equal(q, r)
    with pytest.raises(ValueError, match="metric_spread"):
        Syre(torch.optim.SGD([q], lr=0.1), 0.5, 0.2, metric_spread=1.5)

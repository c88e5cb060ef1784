"""The syre wrapper: a decoupled pull toward a fixed anchor after the wrapped step."""

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

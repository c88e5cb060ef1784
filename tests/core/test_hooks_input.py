import pytest
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.hooks import INPUT, capture


class Pair(nn.Module):
    def forward(self, a, b):
        return a + b


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.last = nn.Linear(4, 2)
        self.pair = Pair()

    def forward(self, x):
        y = self.last(self.act(self.first(x)))
        return self.pair(y, 2 * y)


def hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


def test_input_and_output_of_a_linear():
    torch.manual_seed(0)
    model = Net()
    x = torch.randn(5, 3)
    assert INPUT == ":input"
    with capture(model, ["first:input", "first", "last:input", "last", "pair:input"]) as seen:
        out = model(x)
        torch.testing.assert_close(seen["first:input"], x)
        torch.testing.assert_close(seen["first"], model.first(x))
        torch.testing.assert_close(seen["last:input"], torch.relu(model.first(x)))
        assert not torch.equal(seen["last:input"], seen["first"])  # the ReLU is between them
        torch.testing.assert_close(seen["last"], out / 3)
        torch.testing.assert_close(seen["pair:input"], out / 3)  # the first positional input only
        assert not seen["first"].requires_grad
    assert hook_count(model) == 0 and seen == {}


def test_detach_false_keeps_the_graph():
    model = Net()
    with capture(model, ["last:input"], detach=False) as seen:
        model(torch.randn(2, 3))
        assert seen["last:input"].requires_grad


@pytest.mark.parametrize("name", ["nope", "nope:input", "first:output"])
def test_unknown_names_are_refused(name):
    model = Net()
    with pytest.raises(GoldstoneError, match=f"no module named '{name.removesuffix(':input')}'; closest: "):
        with capture(model, ["first", name]):
            pass
    assert hook_count(model) == 0


def test_hooks_are_removed_on_error():
    model = Net()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(model, ["first:input", "last"]):
            assert hook_count(model) == 2
            raise RuntimeError("boom")
    assert hook_count(model) == 0


def test_backward_hooks_record_the_gradient_at_a_hook_point():
    from goldstone.core.hooks import capture_gradients

    model = Net()
    x = torch.randn(5, 3)
    with capture_gradients(model, ["act"]) as grads, capture(model, ["act"], detach=False) as seen:
        loss = model(x).pow(2).sum()
        expected, = torch.autograd.grad(loss, seen["act"], retain_graph=True)
        loss.backward()
        torch.testing.assert_close(grads["act"], expected)
    assert sum(len(m._backward_hooks) for m in model.modules()) == 0 and hook_count(model) == 0

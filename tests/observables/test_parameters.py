"""Parameter observables: selection by pattern and role, references, gradients, optimiser state,
and a Noether charge written in a few lines on the API."""

import dataclasses

import pytest
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.monitor import Monitor
from goldstone.core.observable import measure
from goldstone.core.result import Result, dims
from goldstone.observables import ParameterObservable, WeightNorms


@dataclasses.dataclass
class ChargeResult(Result):
    observable = "rescale_charge"
    charge: torch.Tensor = dims("unit")


class RescaleCharge(ParameterObservable):
    """Q_j = |w_in[j]|^2 + b_in[j]^2 - |w_out[:, j]|^2 of each hidden ReLU unit ("Neural Mechanics"):
    conserved by gradient flow, since the loss is invariant under w_in[j] *= a, w_out[:, j] /= a."""

    def __init__(self):
        super().__init__(["0.weight", "0.bias", "2.weight"])
        self.add_state("charge", torch.zeros(()), "sum")

    def update(self, probe):
        w_in, b_in, w_out = self.selected(probe.model).values()
        self.charge = self.charge + w_in.pow(2).sum(1) + b_in.pow(2) - w_out.pow(2).sum(0)

    def compute(self):
        return ChargeResult(self.charge)


def relu_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))


def test_a_noether_charge_is_conserved_by_small_step_gradient_descent():
    model, x, y = relu_net(), torch.randn(64, 5), torch.randint(0, 3, (64,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    charge = RescaleCharge()
    monitor = Monitor(model, [charge], schedule={0, 200})
    for step in range(201):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        monitor(step, optimizer)
        optimizer.step()
    frame = monitor.frame()
    before, after = (frame[frame.step == s].value.to_numpy() for s in (0, 200))
    w_in = model[0].weight.detach()
    assert len(before) == 16
    # the charge moves by O(lr^2) per step; the weights themselves move by O(lr)
    drift = abs(after - before).max()
    assert drift < 1e-4 < float((w_in.pow(2).sum(1)).max()) * 1e-2


def test_selection_by_pattern_and_its_errors():
    model = relu_net()
    (result,) = measure(model, [WeightNorms("*.weight")])  # no forward pass, no batch
    assert result.names == ["0.weight", "2.weight"]
    torch.testing.assert_close(result.norm[1], model[2].weight.detach().double().norm())
    assert set(result.to_frame(0).parameter) == {"0.weight", "2.weight"}
    with pytest.raises(GoldstoneError, match=r"pattern '1\.weight' matches nothing in Sequential; closest names"):
        measure(model, [WeightNorms("1.weight")])


def test_reference_gives_deltas_and_names_shape_mismatches(tmp_path):
    model, start = relu_net(), relu_net(1)
    (result,) = measure(model, [WeightNorms("0.*", reference=start.state_dict())])
    expected = (model[0].weight.detach() - start[0].weight.detach()).double().norm()
    torch.testing.assert_close(result.delta_norm[0], expected)
    bad = {**start.state_dict(), "0.weight": torch.zeros(3, 3)}
    with pytest.raises(GoldstoneError, match=r"parameter '0\.weight' has shape \(16, 5\) in the model and \(3, 3\)"):
        measure(model, [WeightNorms("0.*", reference=bad)])


class GradNorm(ParameterObservable):
    needs_gradients = True

    def __init__(self):
        super().__init__("*.weight")
        self.add_state("norm", torch.zeros(()), "sum")

    def update(self, probe):
        self.norm = self.norm + sum(g.pow(2).sum() for g in self.gradients(probe.model).values())

    def compute(self):
        return ChargeResult(self.norm.reshape(1))


def test_gradients_before_backward_are_refused_and_read_after():
    model = relu_net()
    with pytest.raises(GoldstoneError, match=r"reads gradients but the model has none: measure after loss\.backward"):
        measure(model, [GradNorm()])
    model(torch.randn(4, 5)).sum().backward()
    (result,) = measure(model, [GradNorm()])
    assert float(result.charge) > 0


def test_optimizer_state_is_read_per_parameter():
    model = relu_net()
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "weight_decay": 0.1},
                                 {"params": model[2].parameters()}], lr=0.5, momentum=0.9)
    model(torch.randn(4, 5)).sum().backward()
    optimizer.step()
    state = WeightNorms("*.weight").optimizer_state(model, optimizer)
    assert state["0.weight"]["group"]["weight_decay"] == 0.1 and state["2.weight"]["group"]["weight_decay"] == 0
    assert state["0.weight"]["group"]["lr"] == 0.5 and "momentum_buffer" in state["0.weight"]["state"]
    with pytest.raises(GoldstoneError, match="measure with optimizer="):
        WeightNorms("*.weight").optimizer_state(model, None)


def test_roles_select_each_layers_projection_of_a_hugging_face_model():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=8, num_labels=2)
    model = transformers.BertForSequenceClassification(config)
    names = WeightNorms(roles=["query", "mlp_out"]).parameter_names(model)
    assert names == ["bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.output.dense.weight",
                     "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.1.output.dense.weight"]
    with pytest.raises(GoldstoneError, match="unknown role 'gate'"):
        WeightNorms(roles=["gate"])


def test_a_task_model_meets_its_base_models_names_under_another_prefix():
    """A fine-tuned classifier names its encoder `bert.…`; the base model it started from does not."""
    from goldstone.core.weights import match_names

    class Task(nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = relu_net()
            self.classifier = nn.Linear(3, 2)

    model, base = Task(), relu_net(1)
    (result,) = measure(model, [WeightNorms("bert.*.weight", reference=base.state_dict())])
    expected = (model.bert[0].weight.detach() - base[0].weight.detach()).double().norm()
    torch.testing.assert_close(result.delta_norm[0], expected)
    assert match_names(["encoder.0.weight"], {"bert.encoder.0.weight": torch.zeros(1)}) == \
        {"encoder.0.weight": "bert.encoder.0.weight"}
    with pytest.raises(GoldstoneError, match=r"the reference has no parameter 'classifier\.weight'"):
        measure(model, [WeightNorms("classifier.weight", reference=base.state_dict())])
    twice = {"a.0.weight": torch.zeros(1), "b.0.weight": torch.zeros(1)}
    with pytest.raises(GoldstoneError, match="more than one parameter '0.weight'"):
        match_names(["0.weight"], twice)

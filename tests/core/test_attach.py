"""One Monitor, every kind of observable, three ways to attach it: a gradient observable, a
parameter observable, an activation observable and the `NoetherCharges` stream, unchanged, in a
plain loop, under a Hugging Face Trainer and over the Trainer's checkpoints."""

import math

import pytest
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.monitor import Monitor, scan_checkpoints, trainer_callback
from goldstone.observables import GradientNorms, NoetherCharges, OrderParameter, WeightNorms
from goldstone.observables.symmetry_detection import detect_symmetries
from tests.training.test_charge_callback import Examples

transformers = pytest.importorskip("transformers")


def relu_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).double()


def rescale_charge(model: nn.Sequential) -> torch.Tensor:
    """|w_in|^2 + |b_in|^2 - |w_out|^2 summed over hidden neurons: the charge of each ReLU neuron's
    rescale group, by definition."""
    w_in, b_in, w_out = model[0].weight.detach(), model[0].bias.detach(), model[2].weight.detach()
    return w_in.pow(2).sum(1) + b_in.pow(2) - w_out.pow(2).sum(0)


def every_kind(model, batch, loss_fn, layers):
    groups = detect_symmetries(model, [batch], loss_fn)
    return [GradientNorms(), WeightNorms(), OrderParameter(k=2, layers=layers), NoetherCharges(groups)]


def test_plain_loop_every_kind_in_one_monitor():
    model = relu_net()
    x, y = torch.randn(64, 5, dtype=torch.float64), torch.randint(0, 3, (64,))
    loss_fn = nn.functional.cross_entropy
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    observables = every_kind(model, (x, y), loss_fn, ["1"])
    monitor = Monitor(model, observables, x[:8], schedule=5, optimizer=optimizer)
    expected = {}
    for step in range(11):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        if step % 5 == 0:
            grads = torch.stack([p.grad.norm() for p in model.parameters()])
            expected[step] = (grads, rescale_charge(model).sort().values)
        monitor(step)
        optimizer.step()
    frame = monitor.frame()
    assert sorted(frame.step.unique()) == [0, 5, 10]
    assert set(frame.observable) == {"gradient_norms", "weight_norms", "order_parameter", "noether_charges"}
    result = observables[-1].compute()
    rescale_groups = [name for name, kind in zip(result.names, result.kinds) if kind == "rescale"]
    assert len(rescale_groups) == 16
    for step, (grads, charge) in expected.items():
        at = frame[frame.step == step]
        measured = at[(at.observable == "gradient_norms") & (at.metric == "norm")].value.to_numpy()
        assert measured == pytest.approx(grads.numpy(), rel=1e-12)
        rescale = at[(at.observable == "noether_charges") & (at.metric == "charge")]
        rescale = rescale[rescale.group.isin(rescale_groups)].value.sort_values().to_numpy()
        assert rescale == pytest.approx(charge.numpy(), rel=1e-10, abs=1e-12)
    # the stream saw every step: its exact recursion predicts the charge at step 10 from step 0
    assert result.charge.shape[0] == 11
    quadratic = [i for i, kind in enumerate(result.kinds) if kind != "translation"]
    assert float(result.relative_error("exact")[10, quadratic].max()) < 1e-10


def test_a_monitor_refuses_what_cannot_work_in_one_line():
    model = relu_net()
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 3, (16,))
    with pytest.raises(GoldstoneError, match="OrderParameter needs a forward pass; pass probe="):
        Monitor(model, [WeightNorms(), OrderParameter(k=2, layers=["1"])])
    groups = detect_symmetries(model, [(x, y)], nn.functional.cross_entropy)
    monitor = Monitor(model, [NoetherCharges(groups)])
    nn.functional.cross_entropy(model(x), y).backward()
    with pytest.raises(GoldstoneError, match=r"^NoetherCharges reads the optimiser: pass Monitor\(\.\.\., optimizer="):
        monitor(0)
    model.zero_grad(set_to_none=True)
    with pytest.raises(GoldstoneError, match="GradientNorms reads gradients but the model has none"):
        Monitor(model, [GradientNorms()])(0)
    with pytest.raises(GoldstoneError, match=r"GradientNorms reads gradients; scan_checkpoints computes them .* loss_fn="):
        scan_checkpoints(model, [], [GradientNorms()], x)
    with pytest.raises(GoldstoneError, match="steps must increase"):
        monitor = Monitor(model, [WeightNorms()], schedule=1)
        monitor(3)
        monitor(3)


def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=3,
                                     attn_implementation="eager")
    return transformers.BertForSequenceClassification(config).train()


def logits_loss(outputs, labels):
    return nn.functional.cross_entropy(outputs.logits, labels)


def test_trainer_and_its_checkpoints_every_kind_in_one_monitor(tmp_path):
    model, data = tiny_bert(), Examples(n=32)
    probe = ({"input_ids": data.ids[:8]}, data.labels[:8])
    layers = [f"encoder.layer.{i}.output" for i in range(2)]
    observables = every_kind(model, probe, logits_loss, layers)
    monitor = Monitor(model, observables, probe[0], schedule=2)
    args = transformers.TrainingArguments(str(tmp_path), per_device_train_batch_size=8, max_steps=4, learning_rate=0.05,
                                          optim="sgd", max_grad_norm=0.01, report_to=[], save_strategy="steps",
                                          save_steps=2, logging_strategy="no", use_cpu=True, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
    trainer.add_callback(trainer_callback(monitor, trainer))
    trainer.train()
    frame = monitor.frame()
    assert sorted(frame.step.unique()) == [0, 2, 4]
    gradients = frame[frame.observable == "gradient_norms"]
    assert sorted(gradients.step.unique()) == [0, 2]  # the state after the last step has no gradients
    for step in (0, 2):  # the gradients the optimiser steps with: clipped to a total norm of 0.01
        total = math.sqrt((gradients[gradients.step == step].value ** 2).sum())
        assert total == pytest.approx(0.01, rel=1e-4)
    charges = observables[-1].compute()
    assert charges.charge.shape[0] == 5 and all("measured" in t or t == "exact" for t in charges.theory)

    # the Trainer's checkpoints, scanned with the same observables: the same weights give the same rows
    checkpoints = sorted(tmp_path.glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-2", "checkpoint-4"]
    fresh = tiny_bert()
    again = every_kind(fresh, probe, logits_loss, layers)
    scanned = scan_checkpoints(fresh, checkpoints + [checkpoints[0]], again, probe,
                               loss_fn=logits_loss, quiet=True)
    assert scanned.attrs["duplicates"] == {str(checkpoints[0]): str(checkpoints[0])}
    assert sorted(scanned.step.unique()) == [2, 4]
    for observable in ("weight_norms", "order_parameter"):
        for step in (2, 4):
            live = frame[(frame.observable == observable) & (frame.step == step)].value.to_numpy()
            saved = scanned[(scanned.observable == observable) & (scanned.step == step)].value.to_numpy()
            assert saved == pytest.approx(live, rel=1e-5)
    live_charge = frame[(frame.observable == "noether_charges") & (frame.metric == "charge")]
    saved_charge = scanned[(scanned.observable == "noether_charges") & (scanned.metric == "charge")]
    for step in (2, 4):
        assert saved_charge[saved_charge.step == step].value.to_numpy() == pytest.approx(
            live_charge[live_charge.step == step].value.to_numpy(), rel=1e-5, abs=1e-6)
    grads = scanned[scanned.observable == "gradient_norms"]
    fresh.load_state_dict(dict(transformers.BertForSequenceClassification.from_pretrained(checkpoints[1]).state_dict()))
    fresh.eval().zero_grad()
    logits_loss(fresh(**probe[0]), probe[1]).backward()
    expected = [p.grad.double().norm().item() for p in fresh.parameters()]
    assert grads[grads.step == 4].value.to_numpy() == pytest.approx(expected, rel=1e-6)

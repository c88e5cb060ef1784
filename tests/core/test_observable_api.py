import dataclasses
import gc
import weakref

import pytest
import torch
from safetensors.torch import save_file

from goldstone.core.hooks import capture
from goldstone.core.monitor import Monitor, trainer_callback, scan_checkpoints
from goldstone.core.observable import measure
from goldstone.models import DeepMLP
from goldstone.core.result import Result, dims
from goldstone.observables import OrderParameter, ParameterObservable, ProtectedJacobian
from goldstone.observables.order_parameter import OrderParameterResult


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_measure_leaves_no_hooks_or_tensors_behind():
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=4)
    x = torch.randn(4, 6)
    observable = OrderParameter()
    seen = []
    original = observable.update

    def spy(probe):
        seen.append(weakref.ref(next(iter(probe.activations.values()))))
        original(probe)

    observable.update = spy
    for _ in range(5):
        measure(model, [observable, ProtectedJacobian()], x)
    assert hook_count(model) == 0
    gc.collect()
    assert all(ref() is None for ref in seen)


def test_hooks_are_removed_on_error():
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=2)
    with pytest.raises(RuntimeError):
        with capture(model, ["blocks.0.hook_out"]):
            model(torch.randn(2, 5))  # wrong input width
    assert hook_count(model) == 0


def test_unknown_hook_name_is_named():
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=2)
    with pytest.raises(Exception, match="no module named 'blocks.9.hook_out'"):
        with capture(model, ["blocks.9.hook_out"]):
            pass


def test_result_rows_and_round_trip(tmp_path):
    result = OrderParameterResult(c=torch.tensor([0.5, 0.25], dtype=torch.float64))
    frame = result.to_frame(step=3)
    assert list(frame.columns) == ["step", "observable", "metric", "layer", "value"]
    assert frame.value.tolist() == [0.5, 0.25] and frame.layer.tolist() == [0, 1]
    result.save(tmp_path / "r.safetensors")
    torch.testing.assert_close(OrderParameterResult.load(tmp_path / "r.safetensors").c, result.c)


def test_monitor_in_a_plain_training_loop():
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = Monitor(model, [OrderParameter()], torch.randn(4, 6), schedule=5)
    for step in range(12):
        loss = model(torch.randn(8, 6)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        monitor(step)
    frame = monitor.frame()
    assert sorted(frame.step.unique()) == [0, 5, 10]
    assert len(frame) == 3 * 3 and hook_count(model) == 0


def test_scan_checkpoints_after_the_fact(tmp_path):
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=3)
    probe = torch.randn(4, 6)
    paths, expected = [], []
    for step in (10, 20):
        for p in model.parameters():
            p.data.mul_(1.5)
        save_file(model.state_dict(), str(tmp_path / f"step_{step}.safetensors"))
        paths.append(tmp_path / f"step_{step}.safetensors")
        expected.append(measure(model, [OrderParameter()], probe)[0].c)
    fresh = DeepMLP(6, 2, "ok", k=2, width=8, depth=3)
    frame = scan_checkpoints(fresh, paths, [OrderParameter()], probe, quiet=True)
    assert sorted(frame.step.unique()) == [10, 20]
    for step, c in zip((10, 20), expected):
        assert frame[frame.step == step].value.tolist() == pytest.approx(c.tolist(), rel=1e-12)


def tiny_trainer(tmp_path):
    """A 2-layer BERT classifier and a Trainer for 4 steps of batch 4 (and its input ids)."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    ids = torch.randint(0, 50, (16, 8))
    data = [{"input_ids": ids[i], "labels": int(i % 2)} for i in range(16)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4,
                                          report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no")
    return transformers.Trainer(model=model, args=args, train_dataset=data), ids


def test_hugging_face_trainer_callback(tmp_path):
    trainer, ids = tiny_trainer(tmp_path)
    layers = [f"encoder.layer.{i}.output" for i in range(2)]  # resolved to bert.encoder.layer.i.output
    monitor = Monitor(trainer.model, [OrderParameter(k=2, layers=layers)], ids[:4], schedule=2)
    trainer.add_callback(trainer_callback(monitor))
    trainer.train()
    frame = monitor.frame()
    assert sorted(frame.step.unique()) == [0, 2, 4]
    assert set(frame.layer.unique()) == {0, 1} and (frame.value > 0).all()
    assert hook_count(trainer.model) == 0


class ClassifierNorm(ParameterObservable):
    """A scalar per measurement: |W| of the classifier (reaches the Trainer's log)."""

    def __init__(self):
        super().__init__("classifier.weight")
        self.add_state("norm", torch.zeros(()), "sum")

    def update(self, probe):
        self.norm = self.norm + self.selected(probe.model)["classifier.weight"].norm()

    def compute(self):
        return NormResult(self.norm)


@dataclasses.dataclass
class NormResult(Result):
    observable = "classifier"
    norm: torch.Tensor = dims()


def test_trainer_callback_writes_scalars_into_the_trainers_log(tmp_path):
    trainer, _ = tiny_trainer(tmp_path)
    model = trainer.model
    trainer.add_callback(trainer_callback(Monitor(model, [ClassifierNorm()], schedule=2), trainer))
    trainer.train()
    logged = [(row["step"], row["goldstone/classifier/norm"]) for row in trainer.state.log_history
              if "goldstone/classifier/norm" in row]
    assert [step for step, _ in logged] == [0, 2, 4] and all(value > 0 for _, value in logged)
    assert logged[0][1] != logged[-1][1]  # measured on the weights of each step

"""Monitor schedules and scan_checkpoints: order, restore, accumulate, checked names."""

import pytest
import torch
from safetensors.torch import save_file

from goldstone.core.errors import GoldstoneError
from goldstone.core.monitor import Monitor, log_spaced_steps, parse_schedule, scan_checkpoints
from goldstone.models import DeepMLP
from goldstone.observables import OrderParameter, WeightNorms


@pytest.mark.parametrize("schedule,due", [(3, [0, 3, 6, 9]), ({1, 4}, [1, 4]), (lambda s: s in (2, 7), [2, 7]),
                                          ("log:4", [0, 1, 2, 5, 10])])
def test_schedules(schedule, due):
    assert [s for s in range(11) if parse_schedule(schedule, total_steps=10)(s)] == due


@pytest.mark.parametrize("schedule", [0, "every 5", 2.5, {1, "a"}, "log:5"])
def test_bad_schedules_are_named(schedule):
    with pytest.raises(GoldstoneError, match="schedule"):
        parse_schedule(schedule)  # "log:5" without total_steps fails too


def test_log_spaced_steps_start_at_zero_and_end_at_total():
    steps = log_spaced_steps(20, 1000)
    assert steps[0] == 0 and steps[1] == 1 and steps[-1] == 1000 and steps == sorted(set(steps))


def test_monitor_checks_module_names_when_built():
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=2)
    with pytest.raises(GoldstoneError, match=r"no module named 'blocks\.9\.hook_out'; closest: "):
        Monitor(model, [OrderParameter(2, layers=["blocks.9.hook_out"])], torch.randn(2, 6))
    with pytest.raises(GoldstoneError, match="needs a forward pass; pass probe="):
        Monitor(model, [OrderParameter(2)])


def test_scan_checkpoints_in_step_order_restores_the_model_and_accumulates(tmp_path):
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=2)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    paths = []
    for step in (30, 5, 100):
        torch.manual_seed(step)
        state = DeepMLP(6, 2, "ok", k=2, width=8, depth=2).state_dict()
        save_file(state, str(tmp_path / f"step_{step}.safetensors"))
        paths.append(tmp_path / f"step_{step}.safetensors")
    frame = scan_checkpoints(model, paths, [WeightNorms("readout.weight")], quiet=True)
    assert frame.step.tolist() == [5, 30, 100]
    assert all(torch.equal(v, own[k]) for k, v in model.state_dict().items())  # its own weights are back
    x = torch.randn(4, 6)
    single = [scan_checkpoints(model, [p], [OrderParameter(2)], x, quiet=True) for p in paths]
    pooled = scan_checkpoints(model, paths, [OrderParameter(2)], x, quiet=True, accumulate=True)
    assert pooled.step.unique().tolist() == [100]
    mean = sum(f.value.to_numpy() for f in single) / 3
    assert pooled.value.to_numpy() == pytest.approx(mean, rel=1e-12)


def test_checkpoints_holding_the_same_weights_are_measured_once(tmp_path):
    """The same bytes under another name, and the same tensors saved in another order (as some
    hubs serve a copy), are duplicates of the first; a changed tensor is not."""
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "step_10.safetensors"))
    (tmp_path / "step_20.safetensors").write_bytes((tmp_path / "step_10.safetensors").read_bytes())
    save_file(dict(reversed(list(state.items()))), str(tmp_path / "step_30.safetensors"))
    changed = {**state, "readout.weight": state["readout.weight"] + 1e-6}
    save_file(changed, str(tmp_path / "step_40.safetensors"))
    paths = [tmp_path / f"step_{s}.safetensors" for s in (40, 30, 20, 10)]
    frame = scan_checkpoints(model, paths, [WeightNorms("readout.weight")], quiet=True)
    assert sorted(frame.step.unique()) == [10, 40]
    first = str(tmp_path / "step_10.safetensors")
    assert frame.attrs["duplicates"] == {str(tmp_path / "step_20.safetensors"): first,
                                         str(tmp_path / "step_30.safetensors"): first}


def test_unreadable_checkpoints_are_skipped_with_their_reason_when_asked(tmp_path):
    model = DeepMLP(6, 2, "ok", k=2, width=8, depth=2)
    save_file(model.state_dict(), str(tmp_path / "step_10.safetensors"))
    (tmp_path / "step_20.safetensors").write_bytes(b"\x00" * 40)
    paths = [tmp_path / "step_10.safetensors", tmp_path / "step_20.safetensors"]
    with pytest.raises(GoldstoneError, match="step_20.safetensors: not a readable safetensors file"):
        scan_checkpoints(model, paths, [WeightNorms("readout.weight")], quiet=True)
    frame = scan_checkpoints(model, paths, [WeightNorms("readout.weight")], quiet=True, skip_unreadable=True)
    assert frame.step.unique().tolist() == [10]
    assert list(frame.attrs["skipped"]) == [str(paths[1])] and "not a readable" in frame.attrs["skipped"][str(paths[1])]
    save_file({"other.weight": torch.zeros(2, 2)}, str(tmp_path / "step_30.safetensors"))
    with pytest.raises(GoldstoneError, match=r"step_30\.safetensors: weights do not fit DeepMLP"):  # readable, wrong model
        scan_checkpoints(model, paths + [tmp_path / "step_30.safetensors"], [WeightNorms("readout.weight")], quiet=True,
                         skip_unreadable=True)


@pytest.mark.parametrize("observables, message", [
    (WeightNorms, "WeightNorms is a class; give an instance, WeightNorms()"),
    ([WeightNorms], "WeightNorms is a class; give an instance, WeightNorms()"),
    (["weight_norms"], "'weight_norms' is not an observable; give instances such as goldstone.WeightNorms()"),
])
def test_what_is_not_an_observable_instance_is_one_error_saying_what_to_give(observables, message):
    with pytest.raises(GoldstoneError, match=f"^Monitor: {message}"):
        Monitor(torch.nn.Linear(3, 2), observables)


def test_one_observable_alone_is_a_list_of_one():
    model = torch.nn.Linear(3, 2)
    monitor = Monitor(model, WeightNorms(), schedule=1)
    monitor(0)
    assert set(monitor.frame().parameter) == {"weight", "bias"}

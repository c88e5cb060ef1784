"""Attach observables to training, one way for every kind: a `Monitor` in a plain loop, the same
monitor in a Hugging Face `Trainer` (`trainer_callback`), or over saved checkpoints
(`scan_checkpoints`).

A monitor is called once per optimiser step, after ``loss.backward()`` and before
``optimizer.step()``: parameter observables see the weights the gradients belong to, gradient
observables see the gradients the optimiser steps with, optimiser observables see the state the
step will use, and activation observables run their own forward pass on the probe batch (under
``no_grad``, in eval mode). Snapshots are measured afresh at the steps of the schedule; streams
(e.g. `NoetherCharges`) are updated at every call and computed when the frame is asked for.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError, RunFolderError
from goldstone.core.extras import optional_import
from goldstone.core.hooks import resolve_modules
from goldstone.core.observable import (Batch, Observable, accumulate, as_batches, model_device, observable_list,
                                      run_batch)
from goldstone.core.progress import log, progress
from goldstone.core.weights import fit_weights, read_weights

Schedule = int | Iterable[int] | str | Callable[[int], bool]


def log_spaced_steps(count: int, total: int) -> list[int]:
    """Step 0 and `count` steps spaced evenly in log(step) from 1 to `total` (rounded, distinct)."""
    if total < 1:
        return [0]
    steps = np.unique(np.rint(np.logspace(0, math.log10(total), count)).astype(int))
    return sorted({0, *steps.tolist()})


def parse_schedule(schedule: Schedule, total_steps: int | None = None) -> Callable[[int], bool]:
    """When to measure: every `n` steps (an int), at a set of steps, at "log:N" (N log-spaced
    steps up to `total_steps`), or whenever a callable of the step says so."""
    if isinstance(schedule, bool):
        pass
    elif isinstance(schedule, int):
        if schedule < 1:
            raise GoldstoneError(f"schedule: every {schedule} steps; it must be >= 1")
        return lambda step: step % schedule == 0
    elif isinstance(schedule, str) and re.fullmatch(r"log:\d+", schedule):
        if total_steps is None:
            raise GoldstoneError(f"schedule {schedule!r} needs total_steps (the length of training)")
        steps = set(log_spaced_steps(int(schedule[4:]), total_steps))
        return steps.__contains__
    elif callable(schedule):
        return lambda step: bool(schedule(step))
    elif isinstance(schedule, Iterable) and not isinstance(schedule, (str, bytes)):
        steps = set(schedule)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise GoldstoneError("schedule: a set of steps must hold integers only")
        return steps.__contains__
    raise GoldstoneError(f"schedule must be an int, a set of steps, 'log:N' or a callable; got {schedule!r}")


class Monitor:
    """Measure `observables` along training: snapshots on the probe batch at the steps of
    `schedule` (step 0 included), streams at every call.

    >>> monitor = Monitor(model, [OrderParameter(), GradientNorms(), NoetherCharges(groups)], probe=x,
    ...                   schedule="log:20", total_steps=n, optimizer=opt)
    >>> for step in range(n + 1): ...; loss.backward(); monitor(step); optimizer.step()
    >>> monitor.frame()   # tidy rows of every due step: step, observable, metric, layer, ..., value

    What an observable needs is checked when the monitor is built (module names, a probe for
    activation observables) or at its first call (gradients, the optimiser), in one line naming
    it. `forward` replaces ``model(x)`` for the probe (e.g. ``model.trunk``). `sink`, if given,
    receives each step's snapshot rows instead of the monitor keeping them. `training=False`
    measures saved states (as `scan_checkpoints` does): no optimiser is asked for.
    """

    def __init__(self, model: nn.Module, observables: Observable | Sequence[Observable], probe: Batch | None = None,
                 schedule: Schedule = 10, sink: Callable[[pd.DataFrame], None] | None = None, *,
                 optimizer: torch.optim.Optimizer | None = None, total_steps: int | None = None,
                 forward: Callable[..., Any] | None = None, training: bool = True):
        self.model, self.observables, self.probe = model, observable_list(observables, "Monitor"), probe
        self.due = parse_schedule(schedule, total_steps)
        self.sink, self.optimizer, self.forward, self.training = sink, optimizer, forward, training
        odd = [o for o in self.observables if o.lifecycle not in ("snapshot", "stream")]
        if odd:
            raise GoldstoneError(f"{type(odd[0]).__name__}: lifecycle {odd[0].lifecycle!r}; expected snapshot or stream")
        self.snapshots = [o for o in self.observables if o.lifecycle == "snapshot"]
        self.streams = [o for o in self.observables if o.lifecycle == "stream"]
        resolve_modules(model, [name for obs in self.observables for name in obs.hook_names(model)])
        if probe is None:
            blind = [o for o in self.observables if o.needs_forward]
            if blind:
                raise GoldstoneError(f"Monitor: {type(blind[0]).__name__} needs a forward pass; pass probe= (a batch)")
        for obs in self.streams:
            obs.reset()
        self._frames: list[pd.DataFrame] = []
        self._stream_steps: dict[int, list[int]] = {id(obs): [] for obs in self.streams}
        self._seen: list[int] = []
        self._due_steps: list[int] = []

    def _check_optimizer(self, optimizer: torch.optim.Optimizer | None) -> None:
        readers = [o for o in self.observables if o.needs_optimizer]
        if self.training and readers and optimizer is None:
            raise GoldstoneError(f"{type(readers[0]).__name__} reads the optimiser: pass Monitor(..., optimizer=opt) "
                                 "or call monitor(step, optimizer)")

    def __call__(self, step: int, optimizer: torch.optim.Optimizer | None = None, *,
                 gradients: bool = True) -> pd.DataFrame | None:
        """Update the streams and, if `step` is due, measure the snapshots; returns the snapshot
        rows of a due step (also handed to `sink`). `gradients=False` marks a state without
        gradients (after the last step): observables that read them sit it out."""
        optimizer = optimizer or self.optimizer
        self._check_optimizer(optimizer)
        if self._seen and step <= self._seen[-1]:
            raise GoldstoneError(f"Monitor: step {step} comes after step {self._seen[-1]}; steps must increase")
        self._seen.append(step)
        due = self.due(step)
        streams = [o for o in self.streams if (gradients or not o.needs_gradients) and (due or o.every_step)]
        if streams:
            accumulate(self.model, streams, self.probe, step=step, optimizer=optimizer, forward=self.forward)
            for obs in streams:
                self._stream_steps[id(obs)].append(step)
        if not due:
            return None
        self._due_steps.append(step)
        snapshots = [o for o in self.snapshots if gradients or not o.needs_gradients]
        if not snapshots:
            return None
        for obs in snapshots:
            obs.reset()
        accumulate(self.model, snapshots, self.probe, step=step, optimizer=optimizer, forward=self.forward)
        frame = pd.concat([obs.compute().to_frame(step) for obs in snapshots], ignore_index=True)
        if self.sink is not None:
            self.sink(frame)
        else:
            self._frames.append(frame)
        return frame

    def finish(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> pd.DataFrame | None:
        """Record the state after the last optimiser step, which has no gradients (a Trainer's
        end of training): streams take their last update, due snapshots that read no gradients
        are measured. Nothing happens for a step already measured."""
        if self._seen and step <= self._seen[-1]:
            return None
        return self(step, optimizer, gradients=False)

    def frame(self) -> pd.DataFrame:
        """Every due step's rows, snapshots and streams (computed now), in step order."""
        frames = self._frames + [stream_rows(obs, self._stream_steps[id(obs)], set(self._due_steps))
                                 for obs in self.streams if self._stream_steps[id(obs)]]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True).sort_values("step", kind="stable", ignore_index=True)


def stream_rows(observable: Observable, steps: list[int], due: set[int] | None = None) -> pd.DataFrame:
    """A stream's result as tidy rows (`place_rows`)."""
    return place_rows(observable.compute().to_frame(), steps, due)


def place_rows(frame: pd.DataFrame, steps: list[int], due: set[int] | None = None) -> pd.DataFrame:
    """Tidy rows of a result on the training steps of its updates: a result with a "step" axis (one
    entry per update) gets the step of each update, kept where due; any other result is placed at
    the last step."""
    if "step" in frame.columns:
        index = frame.step.to_numpy()
        if len(index) and index.max() >= len(steps):
            raise GoldstoneError(f"{frame.observable.iloc[0]}: {index.max() + 1} steps recorded but {len(steps)} "
                                 "updates seen by this monitor")
        frame["step"] = np.asarray(steps)[index]
        if due is not None:
            frame = frame[frame.step.isin(due)]
        columns = ["step"] + [c for c in frame.columns if c != "step"]
        return frame[columns].reset_index(drop=True)
    frame.insert(0, "step", steps[-1])
    return frame


def scalar_logs(frame: pd.DataFrame) -> dict[str, float]:
    """The rows of `frame` that are single numbers (no layer, head, ... index), as
    ``{"goldstone/<observable>/<metric>": value}`` for a training logger."""
    index = [c for c in frame.columns if c not in ("step", "observable", "metric", "value")]
    scalars = frame[frame[index].isna().all(axis=1)] if index else frame
    return {f"goldstone/{r.observable}/{r.metric}": float(r.value) for r in scalars.itertuples()}


def _inner(optimizer: Any) -> Any:
    """The torch optimiser under Accelerate's `AcceleratedOptimizer` (or the optimiser itself)."""
    return getattr(optimizer, "optimizer", optimizer)


def trainer_callback(monitor: Monitor, trainer: Any = None):
    """A `transformers.TrainerCallback` that runs `monitor` where the gradients are final (clipped,
    accumulated, reduced across processes) and before every optimiser step, at the Trainer's
    global step, with the Trainer's optimiser; and once more when training ends (`Monitor.finish`).
    Every kind of observable works there, and gradient observables see the gradients the optimiser
    steps with. Scalar results go into the Trainer's log: through ``trainer.log`` when `trainer`
    is given (so wandb / TensorBoard / MLflow reporters receive them), else into
    ``state.log_history``.

    >>> trainer.add_callback(trainer_callback(monitor, trainer))
    """
    TrainerCallback = optional_import("transformers", "hf", "the Hugging Face Trainer callback").TrainerCallback

    class GoldstoneCallback(TrainerCallback):
        def _log(self, state, frame: pd.DataFrame | None) -> None:
            logs = scalar_logs(frame) if frame is not None else {}
            if not logs:
                return
            if trainer is not None:
                trainer.log(logs)
            else:
                state.log_history.append({**logs, "step": state.global_step})

        def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
            monitor.model = model if model is not None else monitor.model
            self._log(state, monitor(state.global_step, _inner(optimizer)))
            return control

        def on_train_end(self, args, state, control, model=None, optimizer=None, **kwargs):
            monitor.model = model if model is not None else monitor.model
            self._log(state, monitor.finish(state.global_step, _inner(optimizer)))
            return control

    return GoldstoneCallback()


def checkpoint_step(path: str | Path) -> int | None:
    """The training step a checkpoint's name carries (``step_000120``, ``checkpoint-120``)."""
    match = re.search(r"(\d+)(?!.*\d)", Path(path).name)
    return int(match.group(1)) if match else None


def in_step_order(checkpoints: Sequence[str | Path]) -> list[tuple[str | Path, int]]:
    """The checkpoints in order of the step their names carry (those without one last, as given),
    each with its step (its rank when the name carries none)."""
    steps = [checkpoint_step(p) for p in checkpoints]
    order = sorted(range(len(checkpoints)), key=lambda i: (steps[i] is None, steps[i] or 0, i))
    return [(checkpoints[i], rank if steps[i] is None else steps[i]) for rank, i in enumerate(order)]


def load_checkpoint(model: nn.Module, path: str | Path, seen: dict[str, str], quiet: bool = False,
                    skip_unreadable: bool = True) -> tuple[str, str]:
    """Load a checkpoint into `model` and say what it is: ("measured", path) for weights not in
    `seen` (digest -> path, updated), ("duplicate", the path seen first), or ("skipped", reason)
    for a file that cannot be read (missing, truncated, corrupt; raised unless `skip_unreadable`).
    Weights that do not fit the model are always an error naming the file."""
    try:
        weights = read_weights(path)
    except RunFolderError as err:
        if not skip_unreadable:
            raise
        log(f"skipped {path}: {err}", quiet)
        return "skipped", str(err)
    fit_weights(model, weights, path)
    digest = state_digest(model)
    if digest in seen:
        log(f"{path}: the same weights as {seen[digest]}; measured once", quiet)
        return "duplicate", seen[digest]
    seen[digest] = str(path)
    return "measured", str(path)


def state_digest(model: nn.Module) -> str:
    """A SHA-256 of the model's tensors in its own order: checkpoints that load the same weights
    (the same file, or the same tensors saved under other names) have the same digest."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _backward(model: nn.Module, probe: Batch, loss_fn: Callable[[Any, Any], torch.Tensor],
              forward: Callable[..., Any] | None) -> None:
    """Gradients of ``loss_fn(outputs, targets)`` summed over the probe's batches, in eval mode
    (no dropout)."""
    forward = forward or model
    was_training = model.training
    model.eval()
    try:
        model.zero_grad(set_to_none=True)
        for batch in as_batches(probe):
            loss_fn(*run_batch(forward, batch, model_device(model))).backward()
    finally:
        model.train(was_training)


def scan_checkpoints(model: nn.Module, checkpoints: Sequence[str | Path], observables: Sequence[Observable],
                     probe: Batch | None = None, *, loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
                     forward: Callable[..., Any] | None = None, quiet: bool = False, accumulate: bool = False,
                     skip_unreadable: bool = False) -> pd.DataFrame:
    """Load each checkpoint (safetensors file, run checkpoint or HF model folder) into `model`, in
    order of the step its name carries, and measure, as a `Monitor` would at that step: snapshots
    afresh per checkpoint, streams updated once per checkpoint and computed at the end. Gradient
    observables need `loss_fn` (``loss_fn(outputs, targets)`` on the probe, whose gradients they
    read); observables of the optimiser measure what they can without one.

    Checkpoints that load the same weights as an earlier one are measured once and listed in
    ``frame.attrs["duplicates"]`` (path -> the path measured); with `skip_unreadable`, a
    checkpoint that cannot be read is skipped and listed in ``frame.attrs["skipped"]`` (path ->
    reason); weights that do not fit the model are an error either way. Tied weights may be absent
    from a file. The model gets its own weights back
    afterwards. With `accumulate`, every observable accumulates over all checkpoints and one result
    is computed at the end (at the last step)."""
    needy = [o for o in observables if o.needs_gradients]
    if needy and (loss_fn is None or probe is None):
        raise GoldstoneError(f"{type(needy[0]).__name__} reads gradients; scan_checkpoints computes them on the probe "
                             "with loss_fn= (loss_fn(outputs, targets)) and probe=")
    monitor = Monitor(model, observables, probe, schedule=lambda step: True, forward=forward, training=False)
    if accumulate:  # every observable pooled over the checkpoints, as a stream is
        monitor.snapshots, monitor.streams = [], list(observables)
        monitor._stream_steps = {id(obs): [] for obs in observables}
        for obs in observables:
            obs.reset()
    own = {k: v.detach().clone() for k, v in model.state_dict().items()}
    seen: dict[str, str] = {}
    found: dict[str, dict[str, str]] = {"duplicate": {}, "skipped": {}}
    try:
        for path, step in progress(in_step_order(checkpoints), "scanning checkpoints", quiet, unit="checkpoints"):
            status, detail = load_checkpoint(model, path, seen, quiet, skip_unreadable)
            if status != "measured":
                found[status][str(path)] = detail
                continue
            if loss_fn is not None and probe is not None:
                _backward(model, probe, loss_fn, forward)
            monitor(step)
    finally:
        model.load_state_dict(own)
        model.zero_grad(set_to_none=True)
    frame = monitor.frame()
    frame.attrs.update(duplicates=found["duplicate"], skipped=found["skipped"])
    return frame

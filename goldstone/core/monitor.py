"""Attach observables to training: a plain loop (`Monitor`), a Hugging Face `Trainer`
(`goldstone_trainer_callback`), or a list of saved checkpoints (`scan_checkpoints`).

In a plain loop, call the monitor after ``loss.backward()`` and before ``optimizer.step()`` /
``optimizer.zero_grad()``: then parameter observables see the weights the gradients belong to,
gradient observables see ``param.grad``, and optimiser observables see the state the step will
use. Activation observables run their own forward pass on the probe batch, under ``no_grad``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.hooks import resolve_modules
from goldstone.core.observable import Batch, Observable, measure
from goldstone.core.observable import accumulate as accumulate_into
from goldstone.core.progress import progress
from goldstone.core.weights import load_weights

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
    """Measure `observables` on a fixed probe batch at the steps of `schedule` (step 0 included).

    >>> monitor = Monitor(model, [OrderParameter()], probe=x, schedule="log:20", total_steps=n)
    >>> for step in range(n + 1): ...; loss.backward(); monitor(step, optimizer); optimizer.step()
    >>> monitor.frame()   # tidy rows: step, observable, metric, layer, ..., value

    The modules the observables hook are checked when the monitor is built, not at the first
    measured step. `forward` replaces ``model(x)`` for the probe (e.g. ``model.trunk``).
    """

    def __init__(self, model: nn.Module, observables: Sequence[Observable], probe: Batch | None = None,
                 schedule: Schedule = 10, sink: Callable[[pd.DataFrame], None] | None = None, *,
                 optimizer: torch.optim.Optimizer | None = None, total_steps: int | None = None,
                 forward: Callable[..., Any] | None = None):
        self.model, self.observables, self.probe = model, list(observables), probe
        self.due = parse_schedule(schedule, total_steps)
        self.sink, self.optimizer, self.forward = sink, optimizer, forward
        self._frames: list[pd.DataFrame] = []
        resolve_modules(model, [name for obs in self.observables for name in obs.hook_names(model)])
        if probe is None and any(obs.needs_forward for obs in self.observables):
            raise GoldstoneError("Monitor: an observable needs a forward pass; pass probe= (a batch)")

    def __call__(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> pd.DataFrame | None:
        """Measure if `step` is due; returns the tidy rows (and hands them to `sink`, if any)."""
        if not self.due(step):
            return None
        results = measure(self.model, self.observables, self.probe, step=step,
                          optimizer=optimizer or self.optimizer, forward=self.forward)
        frame = pd.concat([r.to_frame(step) for r in results], ignore_index=True)
        if self.sink is not None:
            self.sink(frame)
        else:
            self._frames.append(frame)
        return frame

    def frame(self) -> pd.DataFrame:
        return pd.concat(self._frames, ignore_index=True) if self._frames else pd.DataFrame()


def scalar_logs(frame: pd.DataFrame) -> dict[str, float]:
    """The rows of `frame` that are single numbers (no layer, head, ... index), as
    ``{"goldstone/<observable>/<metric>": value}`` for a training logger."""
    index = [c for c in frame.columns if c not in ("step", "observable", "metric", "value")]
    scalars = frame[frame[index].isna().all(axis=1)] if index else frame
    return {f"goldstone/{r.observable}/{r.metric}": float(r.value) for r in scalars.itertuples()}


def goldstone_trainer_callback(monitor: Monitor, trainer: Any = None):
    """A `transformers.TrainerCallback` that runs `monitor` at step 0 (training start) and at every
    due global step, with the Trainer's optimizer. Scalar results go into the Trainer's log:
    through ``trainer.log`` when `trainer` is given (so wandb / TensorBoard / MLflow reporters
    receive them), else into ``state.log_history``.

    >>> trainer.add_callback(goldstone_trainer_callback(monitor, trainer))
    """
    from goldstone.core.extras import optional_import

    TrainerCallback = optional_import("transformers", "hf", "the Hugging Face Trainer callback").TrainerCallback

    class GoldstoneCallback(TrainerCallback):
        def _measure(self, state, model, optimizer) -> None:
            monitor.model = model if model is not None else monitor.model
            frame = monitor(state.global_step, optimizer)
            logs = scalar_logs(frame) if frame is not None else {}
            if not logs:
                return
            if trainer is not None:
                trainer.log(logs)
            else:
                state.log_history.append({**logs, "step": state.global_step})

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            self._measure(state, model, optimizer)
            return control

        def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
            self._measure(state, model, optimizer)
            return control

    return GoldstoneCallback()


def checkpoint_step(path: str | Path) -> int | None:
    """The training step a checkpoint's name carries (``step_000120``, ``checkpoint-120``)."""
    match = re.search(r"(\d+)(?!.*\d)", Path(path).name)
    return int(match.group(1)) if match else None


def scan_checkpoints(model: nn.Module, checkpoints: Sequence[str | Path], observables: Sequence[Observable],
                     probe: Batch | None = None, quiet: bool = False, accumulate: bool = False) -> pd.DataFrame:
    """Load each checkpoint (safetensors file, run checkpoint or HF model folder) into `model`, in
    order of the step its name carries, and measure; tied weights may be absent from a file. The
    model gets its own weights back afterwards. With `accumulate`, the observables accumulate over
    all checkpoints and one result is computed at the end (at the last step)."""
    steps = [checkpoint_step(p) for p in checkpoints]
    order = sorted(range(len(checkpoints)), key=lambda i: (steps[i] is None, steps[i] or 0, i))
    own = {k: v.detach().clone() for k, v in model.state_dict().items()}
    frames, step = [], 0
    try:
        for rank, i in enumerate(progress(order, "scanning checkpoints", quiet, unit="checkpoints")):
            load_weights(model, checkpoints[i])
            step = rank if steps[i] is None else steps[i]
            if accumulate:
                if rank == 0:
                    for obs in observables:
                        obs.reset()
                accumulate_into(model, observables, probe, step=step)
            else:
                frames.extend(r.to_frame(step) for r in measure(model, observables, probe, step=step))
        if accumulate and order:
            frames.extend(obs.compute().to_frame(step) for obs in observables)
    finally:
        model.load_state_dict(own)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

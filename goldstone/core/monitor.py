"""Attach observables to training: a plain loop (`Monitor`), a Hugging Face `Trainer`
(`goldstone_trainer_callback`), or a list of saved checkpoints (`scan_checkpoints`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from torch import nn

from goldstone.core.checkpoint import load_weights
from goldstone.core.observable import Batch, Observable, measure
from goldstone.core.progress import progress


class Monitor:
    """Measure `observables` on a fixed probe batch every `every` steps of a training loop.

    >>> monitor = Monitor(model, [OrderParameter()], probe=x, every=10)
    >>> for step in range(n): ...; monitor(step)
    >>> monitor.frame()   # tidy rows: step, observable, metric, layer, ..., value
    """

    def __init__(self, model: nn.Module, observables: Sequence[Observable], probe: Batch, every: int = 10,
                 sink: Callable[[pd.DataFrame], None] | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.observables, self.probe, self.every = model, list(observables), probe, every
        self.sink = sink
        self._frames: list[pd.DataFrame] = []

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def __call__(self, step: int) -> pd.DataFrame | None:
        if not self.due(step):
            return None
        results = measure(self.model, self.observables, self.probe)
        frame = pd.concat([r.to_frame(step) for r in results], ignore_index=True)
        if self.sink is not None:
            self.sink(frame)
        else:
            self._frames.append(frame)
        return frame

    def frame(self) -> pd.DataFrame:
        return pd.concat(self._frames, ignore_index=True) if self._frames else pd.DataFrame()


def goldstone_trainer_callback(monitor: Monitor):
    """A `transformers.TrainerCallback` that runs `monitor` at every `monitor.every`-th global step."""
    from goldstone.core.extras import optional_import

    TrainerCallback = optional_import("transformers", "hf", "the Hugging Face Trainer callback").TrainerCallback

    class GoldstoneCallback(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            monitor.model = model if model is not None else monitor.model
            monitor(state.global_step)
            return control

    return GoldstoneCallback()


def checkpoint_step(path: str | Path) -> int | None:
    """The training step a checkpoint's name carries (``step_000120``, ``checkpoint-120``)."""
    match = re.search(r"(\d+)(?!.*\d)", Path(path).name)
    return int(match.group(1)) if match else None


def scan_checkpoints(model: nn.Module, checkpoints: Sequence[str | Path], observables: Sequence[Observable],
                     probe: Batch, quiet: bool = False) -> pd.DataFrame:
    """Load each checkpoint (safetensors file, run checkpoint or HF model folder) into `model`
    and measure; the step comes from the name, else the position in the list."""
    frames = []
    for i, path in enumerate(progress(list(checkpoints), "scanning checkpoints", quiet, unit="checkpoints")):
        load_weights(model, path)
        step = checkpoint_step(path)
        results = measure(model, observables, probe)
        frames.extend(r.to_frame(i if step is None else step) for r in results)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

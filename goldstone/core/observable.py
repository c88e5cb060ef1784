"""One observable API for every finding (torchmetrics-style).

An observable is configured once, accumulates with ``update(probe)`` over batches, steps or
checkpoints, returns a typed `Result` from ``compute()`` and starts afresh after ``reset()``.
It names the hook points it needs (`hook_names`); `measure` registers exactly those, runs one
forward pass per batch, and removes the hooks again.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from goldstone.core.hooks import capture
from goldstone.core.result import Result

OBSERVABLES: dict[str, type[Observable]] = {}


@dataclasses.dataclass
class Probe:
    """What an observable sees of one batch: the model, its inputs and the captured activations."""

    model: nn.Module
    inputs: Any
    targets: Any
    activations: dict[str, torch.Tensor]
    outputs: Any = None


class Observable(ABC):
    """Base class. Subclasses set `name` (registered for `goldstone list`) and `summary`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            OBSERVABLES[cls.name] = cls

    def hook_names(self, model: nn.Module) -> list[str]:
        """Modules whose outputs `update` reads from ``probe.activations``."""
        return []

    def forward_kwargs(self) -> dict[str, Any]:
        """Keyword arguments the forward pass needs (e.g. ``output_attentions=True``); they are
        passed when the batch's inputs are a mapping, as for Hugging Face models."""
        return {}

    @abstractmethod
    def update(self, probe: Probe) -> None:
        """Accumulate one batch."""

    @abstractmethod
    def compute(self) -> Result:
        """The result over everything accumulated since the last reset."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated."""


Inputs = torch.Tensor | Mapping[str, torch.Tensor]
Batch = Inputs | tuple[Inputs, Any]


def _split(batch: Batch) -> tuple[Inputs, Any]:
    return batch if isinstance(batch, tuple) else (batch, None)


def measure(model: nn.Module, observables: Sequence[Observable], batches: Batch | Iterable[Batch]) -> list[Result]:
    """Reset, feed every batch to every observable (one hooked forward per batch), compute.

    A batch is inputs or ``(inputs, targets)``; inputs are a tensor (``model(x)``) or a mapping
    (``model(**x, **kwargs)`` with the observables' `forward_kwargs`). One batch alone may be
    passed instead of an iterable of batches."""
    if torch.is_tensor(batches) or isinstance(batches, (tuple, Mapping)):
        batches = [batches]
    names = list(dict.fromkeys(n for obs in observables for n in obs.hook_names(model)))
    kwargs = {k: v for obs in observables for k, v in obs.forward_kwargs().items()}
    for obs in observables:
        obs.reset()
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs, targets = _split(batch)
            with torch.no_grad(), capture(model, names) as activations:
                outputs = model(**inputs, **kwargs) if isinstance(inputs, Mapping) else model(inputs)
                probe = Probe(model, inputs, targets, dict(activations), outputs)
            for obs in observables:
                obs.update(probe)
            del probe
    finally:
        model.train(was_training)
    return [obs.compute() for obs in observables]

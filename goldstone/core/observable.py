"""One observable API for every finding (torchmetrics-style).

An observable is configured once, accumulates with ``update(probe)`` over batches, steps or
checkpoints, returns a typed `Result` from ``compute()`` and starts afresh after ``reset()``.
It names the hook points it needs (`hook_names`); `measure` registers exactly those, runs one
forward pass per batch, and removes the hooks again.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
from torch import nn

from goldstone.core.hooks import capture
from goldstone.core.result import Result

OBSERVABLES: dict[str, type[Observable]] = {}


@dataclasses.dataclass
class Probe:
    """What an observable sees of one batch: the model, its inputs and the captured activations."""

    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor | None
    activations: dict[str, torch.Tensor]
    outputs: torch.Tensor | None = None


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

    @abstractmethod
    def update(self, probe: Probe) -> None:
        """Accumulate one batch."""

    @abstractmethod
    def compute(self) -> Result:
        """The result over everything accumulated since the last reset."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything accumulated."""


Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def measure(model: nn.Module, observables: Sequence[Observable], batches: Batch | Iterable[Batch]) -> list[Result]:
    """Reset, feed every batch to every observable (one hooked forward per batch), compute."""
    if torch.is_tensor(batches) or (isinstance(batches, tuple) and torch.is_tensor(batches[0])):
        batches = [batches]
    names = list(dict.fromkeys(n for obs in observables for n in obs.hook_names(model)))
    for obs in observables:
        obs.reset()
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs, targets = (batch, None) if torch.is_tensor(batch) else batch
            with torch.no_grad(), capture(model, names) as activations:
                outputs = model(inputs)
                probe = Probe(model, inputs, targets, dict(activations), outputs)
            for obs in observables:
                obs.update(probe)
            del probe
    finally:
        model.train(was_training)
    return [obs.compute() for obs in observables]

"""One observable API for every finding (torchmetrics-style).

An observable is configured once, accumulates with ``update(probe)`` over batches, steps or
checkpoints, returns a typed `Result` from ``compute()`` and starts afresh after ``reset()``.
Its accumulators are declared with `add_state` (torchmetrics' model: a default, and a reduction
that `sync` applies across processes), so `reset` comes for free and `compute` before any
`update` is a clear error. It names the hook points it needs (`hook_names`); `measure` registers
exactly those, runs one forward pass per batch, and removes the hooks again; observables of
parameters, gradients or optimiser state declare ``needs_forward = False`` and see no batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.distributed as dist
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.hooks import capture
from goldstone.core.result import Result

OBSERVABLES: dict[str, type[Observable]] = {}

Reduction = Literal["sum", "max", "min", "cat", "replicated"]
_REDUCE_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


@dataclasses.dataclass
class Probe:
    """What an observable sees at one measurement: the model, the training step and optimizer
    (when measured from a training loop), and, for observables that need a forward pass, one
    batch's inputs, targets, captured activations and outputs."""

    model: nn.Module
    inputs: Any = None
    targets: Any = None
    activations: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    outputs: Any = None
    step: int | None = None
    optimizer: torch.optim.Optimizer | None = None


def _fresh(default: torch.Tensor | list) -> torch.Tensor | list:
    return [] if isinstance(default, list) else default.detach().clone()


class Observable(ABC):
    """Base class. Subclasses set `name` (registered for `goldstone list`) and `summary`, declare
    their accumulators with `add_state` in ``__init__``, and implement `update` and `compute`.

    `needs_forward`: whether `update` reads a batch (inputs, activations, outputs); when no
    observable of a `measure` call does, no forward pass runs. `needs_gradients`: whether `update`
    reads ``param.grad`` (measure after ``loss.backward()``, before ``optimizer.step()``).
    `needs_optimizer`: whether `update` reads the optimiser (hyper-parameters, state buffers); in
    training it must be given, over saved checkpoints there is none and the observable measures
    what it can without it.

    `lifecycle`: a "snapshot" stands alone at each measurement (a census, UAS, weight norms), and
    a `Monitor` resets it before every measurement; a "stream" accumulates across steps (Noether
    charges, representation drift), and a `Monitor` updates it at every call (`every_step`, as the
    Noether recursions need) or at the due steps only, and computes it when its frame is asked for.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    lifecycle: ClassVar[Literal["snapshot", "stream"]] = "snapshot"
    every_step: ClassVar[bool] = True
    needs_forward: ClassVar[bool] = True
    needs_gradients: ClassVar[bool] = False
    needs_optimizer: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            OBSERVABLES[cls.name] = cls
        if "update" in cls.__dict__:
            cls.update = _counting(cls.__dict__["update"])
        if "compute" in cls.__dict__:
            cls.compute = _checked(cls.__dict__["compute"])

    # -- declared state (torchmetrics' add_state) ------------------------------------------
    def add_state(self, name: str, default: torch.Tensor | list, reduce: Reduction) -> None:
        """Declare an accumulator: `reset` restores `default` (a tensor, or ``[]`` for "cat" and
        "replicated"); `sync` combines it across processes by `reduce`: "sum", "max" or "min" of a
        tensor, "cat" (concatenation of the per-process lists), or "replicated" (a list that every
        process holds alike, e.g. of parameters under DDP: left as it is)."""
        if reduce not in ("sum", "max", "min", "cat", "replicated"):
            raise GoldstoneError(f"{type(self).__name__}: state {name!r} has reduce={reduce!r}; "
                                 "expected sum, max, min, cat or replicated")
        listed = reduce in ("cat", "replicated")
        if listed != isinstance(default, list) or (isinstance(default, list) and default):
            raise GoldstoneError(f"{type(self).__name__}: state {name!r}: 'cat' and 'replicated' take default [] "
                                 "and the other reductions a tensor")
        self.__dict__.setdefault("_states", {})[name] = (default, reduce)
        setattr(self, name, _fresh(default))
        self._updates = 0

    def reset(self) -> None:
        """Forget everything accumulated: every declared state back to its default."""
        for name, (default, _) in self.__dict__.get("_states", {}).items():
            setattr(self, name, _fresh(default))
        self._updates = 0

    def sync(self) -> None:
        """Combine the declared states of every process of the default `torch.distributed` group
        (no-op unless it is initialised with more than one process)."""
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return
        for name, (_, reduce) in self.__dict__.get("_states", {}).items():
            value = getattr(self, name)
            if reduce == "replicated":
                continue
            if reduce == "cat":
                parts: list[Any] = [None] * dist.get_world_size()
                dist.all_gather_object(parts, value)
                setattr(self, name, [item for part in parts for item in part])
            else:
                combined = torch.as_tensor(value).clone()
                dist.all_reduce(combined, op=getattr(dist.ReduceOp, _REDUCE_OPS[reduce]))
                setattr(self, name, combined)
        count = torch.tensor(self._updates)
        dist.all_reduce(count)
        self._updates = int(count)

    # -- what a subclass provides ----------------------------------------------------------
    def hook_names(self, model: nn.Module) -> list[str]:
        """Modules whose outputs `update` reads from ``probe.activations``."""
        return []

    def forward_kwargs(self) -> dict[str, Any]:
        """Keyword arguments the forward pass needs (e.g. ``output_attentions=True``); they are
        passed when the batch's inputs are a mapping, as for Hugging Face models."""
        return {}

    @abstractmethod
    def update(self, probe: Probe) -> None:
        """Accumulate one batch (or one step, for observables without a forward pass)."""

    @abstractmethod
    def compute(self) -> Result:
        """The result over everything accumulated since the last reset (across processes when
        `torch.distributed` is initialised)."""


def _counting(update: Callable) -> Callable:
    @functools.wraps(update)
    def counted(self: Observable, probe: Probe) -> None:
        update(self, probe)
        self._updates = getattr(self, "_updates", 0) + 1
    return counted


def _checked(compute: Callable) -> Callable:
    """compute() refuses to run before any update(), and runs on the states of every process."""
    @functools.wraps(compute)
    def checked(self: Observable) -> Result:
        if getattr(self, "_syncing", False):
            return compute(self)
        if getattr(self, "_updates", 0) == 0:
            raise GoldstoneError(f"{type(self).__name__}: compute() before any update(); measure at least one "
                                 "batch (or step) first")
        local = {name: getattr(self, name) for name in self.__dict__.get("_states", {})}
        count = self._updates
        self._syncing = True
        try:
            self.sync()
            return compute(self)
        finally:
            self._syncing = False
            for name, value in local.items():
                setattr(self, name, value)
            self._updates = count
    return checked


Inputs = torch.Tensor | Mapping[str, torch.Tensor]
Batch = Inputs | tuple[Inputs, Any]


def observable_list(observables: Observable | Sequence[Observable], where: str) -> list[Observable]:
    """`observables` as a list (one alone becomes a list of one); a class, a name or anything else
    that is not an observable instance is one error saying what to give instead."""
    items = [observables] if isinstance(observables, Observable) else observables
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        items = [items]
    items = list(items)
    for item in items:
        if isinstance(item, type) and issubclass(item, Observable):
            raise GoldstoneError(f"{where}: {item.__name__} is a class; give an instance, {item.__name__}()")
        if not isinstance(item, Observable):
            raise GoldstoneError(f"{where}: {item!r} is not an observable; give instances such as "
                                 "goldstone.WeightNorms() (`goldstone list` names them all)")
    return items


def split_batch(batch: Batch) -> tuple[Inputs, Any]:
    """``(inputs, targets)`` of a batch given as inputs alone or as that pair."""
    if isinstance(batch, tuple) and len(batch) != 2:
        raise GoldstoneError(f"a batch is inputs or a pair (inputs, targets); got a tuple of {len(batch)}")
    return batch if isinstance(batch, tuple) else (batch, None)


def as_batches(batches: Batch | Iterable[Batch]) -> Iterable[Batch]:
    """One batch alone as a list of one; an iterable of batches as it is."""
    return [batches] if torch.is_tensor(batches) or isinstance(batches, (tuple, Mapping)) else batches


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model with neither."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_device(value: Any, device: torch.device) -> Any:
    """Tensors (alone, in a mapping, list or tuple) moved to `device`; anything else as it is."""
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value


@contextlib.contextmanager
def evaluating_with_grad(model: nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) with gradients on, the model's own mode restored afterwards: how an
    observable differentiates a loss on its own batch."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        model.train(was_training)


def run_batch(forward: Callable[..., Any], batch: Batch, device: torch.device) -> tuple[Any, Any]:
    """``(forward(inputs), targets)`` of `batch` moved to `device` (keyword inputs for a mapping)."""
    inputs, targets = (to_device(part, device) for part in split_batch(batch))
    return (forward(**inputs) if isinstance(inputs, Mapping) else forward(inputs)), targets


def batch_loss(model: nn.Module, batch: Batch, loss_fn: Callable[[Any, Any], torch.Tensor]) -> torch.Tensor:
    """``loss_fn(model(inputs), targets)`` on `batch` moved to the model's device (keyword inputs for a mapping)."""
    return loss_fn(*run_batch(model, batch, model_device(model)))


def check_gradients(model: nn.Module, observables: Sequence[Observable]) -> None:
    """Refuse to measure gradient observables when the model holds no gradients."""
    readers = [o for o in observables if o.needs_gradients]
    if readers and not any(p.grad is not None for p in model.parameters()):
        raise GoldstoneError(f"{type(readers[0]).__name__} reads gradients but the model has none: measure after "
                             "loss.backward() and before optimizer.step()")


def measure(model: nn.Module, observables: Sequence[Observable], batches: Batch | Iterable[Batch] | None = None, *,
            step: int | None = None, optimizer: torch.optim.Optimizer | None = None,
            forward: Callable[..., Any] | None = None) -> list[Result]:
    """Reset, feed every batch to every observable (`accumulate`), compute."""
    observables = observable_list(observables, "measure")
    for obs in observables:
        obs.reset()
    accumulate(model, observables, batches, step=step, optimizer=optimizer, forward=forward)
    return [obs.compute() for obs in observables]


def accumulate(model: nn.Module, observables: Sequence[Observable], batches: Batch | Iterable[Batch] | None = None,
               *, step: int | None = None, optimizer: torch.optim.Optimizer | None = None,
               forward: Callable[..., Any] | None = None) -> None:
    """Feed every batch to every observable, on top of what they hold (one hooked forward per batch).

    A batch is inputs or ``(inputs, targets)``; inputs are a tensor (``forward(x)``) or a mapping
    (``forward(**x, **kwargs)`` with the observables' `forward_kwargs`), moved to the model's
    device; `forward` defaults to the model itself (e.g. ``forward=model.trunk``). One batch
    alone may be passed instead of an iterable. Observables that need no forward pass (parameters,
    gradients, optimiser state) are updated once, with `step` and `optimizer`; when none needs
    one, `batches` may be None and no forward pass runs.
    """
    observables = observable_list(observables, "accumulate")
    check_gradients(model, observables)
    forward_observables = [o for o in observables if o.needs_forward]
    if forward_observables and batches is None:
        raise GoldstoneError(f"{type(forward_observables[0]).__name__} needs a forward pass: pass batches")
    static = Probe(model, step=step, optimizer=optimizer)
    for obs in observables:
        if not obs.needs_forward:
            obs.update(static)
    if forward_observables:
        _feed(model, forward_observables, as_batches(batches), forward or model, step, optimizer)


def _feed(model: nn.Module, observables: list[Observable], batches: Iterable[Batch], forward: Callable[..., Any],
          step: int | None, optimizer: torch.optim.Optimizer | None) -> None:
    names = list(dict.fromkeys(n for obs in observables for n in obs.hook_names(model)))
    kwargs = {k: v for obs in observables for k, v in obs.forward_kwargs().items()}
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs, targets = (to_device(part, device) for part in split_batch(batch))
            with torch.no_grad(), capture(model, names) as activations:
                outputs = forward(**inputs, **kwargs) if isinstance(inputs, Mapping) else forward(inputs)
                probe = Probe(model, inputs, targets, dict(activations), outputs, step, optimizer)
            for obs in observables:
                obs.update(probe)
            del probe
    finally:
        model.train(was_training)

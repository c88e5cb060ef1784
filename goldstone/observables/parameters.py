"""Observables of parameters (and their gradients and optimiser state), measured without a
forward pass.

`ParameterObservable` selects parameters by name pattern (``fnmatch`` globs such as
``"encoder.layer.*.attention.self.query.weight"``) and/or by adapter role per layer of a Hugging
Face transformer (query, key, value, output, mlp_in, mlp_out), and can measure them against a
reference: ``W - W_ref`` with W_ref read by `read_weights` (a pre-trained start, a checkpoint, a
merged LoRA adapter). Subclasses declare their state and implement `update` and `compute`,
reading `selected`, `deltas` or `gradients` of ``probe.model``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims, meta
from goldstone.core.weights import match_names, read_weights

ROLES = {"query": "query", "key": "key", "value": "value", "output": "output_projection", "mlp_in": "mlp_in",
         "mlp_out": "mlp_out"}
"""Adapter roles a parameter may be selected by (role name -> the adapter's module field)."""


class ParameterObservable(Observable):
    """Base of observables of selected parameters.

    `params`: glob patterns over parameter names (None: every parameter unless `roles` is given).
    `roles`: adapter roles (`ROLES`), with `layers` (None: every layer), selecting each role
    module's weight. `reference`: a state dict, or a path for `read_weights`; then `deltas` gives
    W - W_ref. A pattern or role that selects nothing, and a reference whose shapes differ, are
    errors naming the parameter.
    """

    needs_forward = False

    def __init__(self, params: str | Sequence[str] | None = None, roles: Sequence[str] | None = None,
                 layers: Sequence[int] | None = None, reference: Mapping[str, torch.Tensor] | str | Path | None = None):
        self.patterns = [params] if isinstance(params, str) else list(params or [])
        self.roles, self.layers = list(roles or []), layers
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise GoldstoneError(f"unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})")
        self.reference = dict(read_weights(reference) if isinstance(reference, (str, Path)) else reference or {})
        self._names: dict[int, list[str]] = {}

    def parameter_names(self, model: nn.Module) -> list[str]:
        """The names of the selected parameters of `model`, in the model's order (cached per model)."""
        if id(model) not in self._names:
            self._names[id(model)] = self._select(model)
        return self._names[id(model)]

    def _select(self, model: nn.Module) -> list[str]:
        names = [n for n, _ in model.named_parameters()]
        chosen: set[str] = set()
        for pattern in self.patterns:
            hits = fnmatch.filter(names, pattern)
            if not hits:
                close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.3)
                raise GoldstoneError(f"parameter pattern {pattern!r} matches nothing in {type(model).__name__}"
                                     + (f"; closest names: {', '.join(close)}" if close else ""))
            chosen.update(hits)
        chosen.update(self._role_names(model))
        if not self.patterns and not self.roles:
            chosen.update(names)
        selected = [n for n in names if n in chosen]
        if self.reference:
            self._check_reference(model, selected)
        return selected

    def _role_names(self, model: nn.Module) -> list[str]:
        if not self.roles:
            return []
        from goldstone.models.adapters import num_layers, submodule

        owner = {id(m): n for n, m in model.named_modules()}
        out = []
        for layer in self.layers if self.layers is not None else range(num_layers(model)):
            for role in self.roles:
                module = submodule(model, layer, ROLES[role])
                out.append(f"{owner[id(module)]}.weight")
        return out

    def _check_reference(self, model: nn.Module, names: list[str]) -> None:
        params = dict(model.named_parameters())
        self._reference_keys = match_names(names, self.reference)
        for name, key in self._reference_keys.items():
            if self.reference[key].shape != params[name].shape:
                raise GoldstoneError(f"parameter {name!r} has shape {tuple(params[name].shape)} in the model and "
                                     f"{tuple(self.reference[key].shape)} in the reference")

    def selected(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The selected parameters, detached."""
        params = dict(model.named_parameters())
        return {n: params[n].detach() for n in self.parameter_names(model)}

    def deltas(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """W - W_ref for every selected parameter (needs `reference`)."""
        if not self.reference:
            raise GoldstoneError(f"{type(self).__name__}: deltas need a reference (reference=state dict or path)")
        return {n: w - self.reference[self._reference_keys[n]].to(w) for n, w in self.selected(model).items()}

    def gradients(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``param.grad`` of every selected parameter (measure after ``loss.backward()``)."""
        params = dict(model.named_parameters())
        absent = [n for n in self.parameter_names(model) if params[n].grad is None]
        if absent:
            raise GoldstoneError(f"{type(self).__name__}: parameter {absent[0]!r} has no gradient; measure after "
                                 "loss.backward() and before optimizer.zero_grad()")
        return {n: params[n].grad.detach() for n in self.parameter_names(model)}

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, dict]:
        """For every selected parameter: its param group's hyper-parameters (``lr``,
        ``weight_decay``, ``momentum`` or ``betas``, ...) and its state buffers
        (``momentum_buffer``, ``exp_avg``, ...), under ``"group"`` and ``"state"``."""
        if optimizer is None:
            raise GoldstoneError(f"{type(self).__name__} reads the optimiser: measure with optimizer= "
                                 "(Monitor(..., optimizer=) or monitor(step, optimizer))")
        params = dict(model.named_parameters())
        groups = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        out = {}
        for name in self.parameter_names(model):
            group = groups.get(id(params[name]))
            if group is None:
                raise GoldstoneError(f"parameter {name!r} is not optimised by the given optimizer")
            out[name] = {"group": {k: v for k, v in group.items() if k != "params"},
                         "state": dict(optimizer.state.get(params[name], {}))}
        return out


@dataclasses.dataclass
class PerParameterResult(Result):
    """Base of results with one entry per selected parameter, named in `names`."""
    names: list[str] = meta()

    def axis_labels(self) -> dict[str, list[str]]:
        return {"parameter": self.names}


@dataclasses.dataclass
class WeightNormsResult(PerParameterResult):
    observable = "weight_norms"
    norm: torch.Tensor = dims("parameter")
    delta_norm: torch.Tensor = dims("parameter")


class WeightNorms(ParameterObservable):
    """Frobenius norm |W| of every selected parameter, and |W - W_ref| when a reference is given."""

    name = "weight_norms"
    summary = "|W| of selected parameters, and |W - W_ref| against a reference (e.g. the pre-trained start)"

    def __init__(self, params: str | Sequence[str] | None = None, roles: Sequence[str] | None = None,
                 layers: Sequence[int] | None = None, reference: Mapping[str, torch.Tensor] | str | Path | None = None):
        super().__init__(params, roles, layers, reference)
        self.add_state("_norm", [], "cat")
        self.add_state("_delta", [], "cat")
        self._labels: list[str] = []

    def update(self, probe: Probe) -> None:
        weights = self.selected(probe.model)
        self._labels = list(weights)
        self._norm.append(torch.stack([w.double().norm() for w in weights.values()]).cpu())
        if self.reference:
            self._delta.append(torch.stack([d.double().norm() for d in self.deltas(probe.model).values()]).cpu())

    def compute(self) -> WeightNormsResult:
        return WeightNormsResult(norm=self._norm[-1], delta_norm=self._delta[-1] if self._delta else None,
                                 names=self._labels)


@dataclasses.dataclass
class GradientNormsResult(PerParameterResult):
    observable = "gradient_norms"
    norm: torch.Tensor = dims("parameter")


class GradientNorms(ParameterObservable):
    """Frobenius norm |dL/dW| of the gradient of every selected parameter: the gradient the
    optimiser steps with when measured after ``loss.backward()`` and before ``optimizer.step()``."""

    name = "gradient_norms"
    summary = "|dL/dW| of selected parameters, the gradient the optimiser steps with"
    needs_gradients = True

    def __init__(self, params: str | Sequence[str] | None = None, roles: Sequence[str] | None = None,
                 layers: Sequence[int] | None = None):
        super().__init__(params, roles, layers)
        self.add_state("_norm", [], "cat")
        self._labels: list[str] = []

    def update(self, probe: Probe) -> None:
        gradients = self.gradients(probe.model)
        self._labels = list(gradients)
        self._norm.append(torch.stack([g.double().norm() for g in gradients.values()]).cpu())

    def compute(self) -> GradientNormsResult:
        return GradientNormsResult(norm=self._norm[-1], names=self._labels)

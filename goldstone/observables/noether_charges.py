"""Noether charges of parameter symmetry groups along training, with their theory.

`NoetherCharges(groups)` is updated once per optimiser step, after ``loss.backward()`` and
before ``optimizer.step()`` (`train_loop`'s `after_backward`, or `noether_trainer_callback`). Each
update reduces every group at once (per-axis sums, float64, one sparse product; no ``.item()``):
the charge q_A, c_A or s_A, the gradient energy |g_A|^2, the constraint <g, X_A>, and for SGD the
update that the step applies: the momentum buffer v (read after the previous step), or
d = g + lambda theta without momentum. `compute` stacks the steps and predicts every charge from
its start with the exact discrete recursions and the continuous forms of
`goldstone.theory.noether.recursions`. Optimisers without a closed form (Adam, AdamW, RMSprop, SGD
with Nesterov) get the measured drift only, the theory marked not applicable with the reason.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims, meta
from goldstone.theory.noether import recursions
from goldstone.theory.noether.families import ChargeMap, SymmetryGroup

HYPER = ("lr", "weight_decay", "momentum", "dampening")
DRIVE = [0, 2, 3]
"""The hyper-parameters (lr, momentum, dampening) a group's members must share for any recursion."""
MEASURED_DECAY = ("exact, with the weight-decay term sum_i lambda_i |theta_i|^2 measured: the group's parameters "
                  "decay at different rates (e.g. no decay on biases)")


@dataclasses.dataclass
class NoetherChargesResult(Result):
    """Per step (axis 0: step 0 .. n) and group: the measured charge and its predictions."""
    observable = "noether_charges"
    charge: torch.Tensor = dims("step", "group")
    exact: torch.Tensor = dims("step", "group")
    continuous: torch.Tensor = dims("step", "group")
    noether_charge: torch.Tensor = dims("step", "group")
    noether_charge_exact: torch.Tensor = dims("step", "group")
    energy: torch.Tensor = dims("step", "group")
    gradient_energy: torch.Tensor = dims("step", "group")
    constraint: torch.Tensor = dims("step", "group")
    reference: torch.Tensor = dims("step", "group")
    lr: torch.Tensor = dims("step", "group")
    weight_decay: torch.Tensor = dims("step", "group")
    momentum: torch.Tensor = dims("step", "group")
    names: list[str] = meta()
    kinds: list[str] = meta()
    theory: list[str] = meta()

    def axis_labels(self) -> dict[str, list[str]]:
        return {"group": self.names}

    def relative_error(self, prediction: str = "exact") -> torch.Tensor:
        """|measured - predicted| / reference per step and group, the reference being |theta_A|^2
        over both sides for q and c, and sqrt(|A|) |theta_A| >= sum |theta_A| >= |s| for s (signed
        charges can cancel)."""
        return (self.charge - getattr(self, prediction)).abs() / self.reference.clamp_min(1e-300)


FULL_PAIRS = [(0, 0), (1, 1), (0, 1), (2, 2), (0, 2)]
"""Products of (theta, g, v) summed at a full measurement: q, |g|^2, <g, theta>, |v|^2, <theta, v>."""


class NoetherCharges(Observable):
    """Charges of `groups` (from `detect_symmetries`); see the module docstring.

    `every`: a full measurement (charges, |g|^2, the constraint, the Noether charge) every
    `every` updates; in between only what drives the recursions, the update energy |v_A|^2 (and
    the decay term of groups with mixed weight decay), which costs one product per parameter
    instead of five. The exact recursions and the momentum forms run at every step either way;
    the continuous form without momentum and NLD's Eq. 17 need |g|^2 at every step (every = 1).
    """

    name = "noether_charges"
    summary = "Noether charges of symmetry groups every step, against exact and continuous SGD theory"
    needs_forward = False

    def __init__(self, groups: Sequence[SymmetryGroup], every: int = 1):
        if not groups:
            raise GoldstoneError("NoetherCharges: no symmetry groups to track (detect_symmetries found none)")
        if every < 1:
            raise GoldstoneError(f"NoetherCharges: every={every}; it must be >= 1")
        self.groups, self.every = list(groups), every
        self.quadratic = [g for g in self.groups if g.kind != "translation"]
        self.linear = [g for g in self.groups if g.kind == "translation"]
        self.add_state("_rows", [], "cat")
        self.add_state("_measured", [], "cat")
        self._built: tuple[int, int] | None = None
        self._problems: dict[str, str] = {}

    def _build(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        params = dict(model.named_parameters())
        missing = [p for g in self.groups for p in g.parameters if p not in params]
        if missing:
            raise GoldstoneError(f"NoetherCharges: the model has no parameter {missing[0]!r}")
        shapes = {n: p.shape for n, p in params.items()}
        device = next(iter(params.values())).device
        self._map = ChargeMap(self.quadratic + self.linear, shapes, device)
        self._entries = self._map.entries().cpu()
        index = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
        outside = [n for g in self.groups for n in g.parameters if id(params[n]) not in index]
        if outside:
            raise GoldstoneError(f"NoetherCharges: parameter {outside[0]!r} is not optimised by the given optimizer")
        ordered = self.quadratic + self.linear
        self._param_group = [[index[id(params[n])] for n in g.parameters] for g in ordered]
        self._first = torch.tensor([pg[0] for pg in self._param_group])
        self._mixed = [len(set(pg)) > 1 for pg in self._param_group]
        self._names = [n for n in params if any(n in g.parameters for g in self.groups)]
        self._params = {n: params[n] for n in self._names}
        self._group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        self._built = (id(model), id(optimizer))

    def update(self, probe: Probe) -> None:
        model, optimizer = probe.model, probe.optimizer
        if optimizer is None:
            raise GoldstoneError("NoetherCharges reads the optimiser: update with Probe(model, optimizer=...)")
        if self._built != (id(model), id(optimizer)):
            self._build(model, optimizer)
        params, group_of = self._params, self._group_of
        sgd = isinstance(optimizer, torch.optim.SGD)
        full = self._updates % self.every == 0
        mixed = any(self._mixed)
        tensors: dict[str, tuple[torch.Tensor, ...]] = {}
        decay: dict[str, float] = {}
        with torch.no_grad():
            for name in self._names:
                p = params[name]
                theta = p.detach()
                hyper = group_of[id(p)]
                decay[name] = float(hyper.get("weight_decay", 0.0) or 0.0)
                grad = p.grad.detach() if p.grad is not None else None
                if sgd and hyper.get("momentum", 0) > 0:
                    motion = optimizer.state.get(p, {}).get("momentum_buffer")
                    motion = torch.zeros_like(theta) if motion is None else motion
                elif sgd and grad is not None:
                    motion = torch.add(grad, theta, alpha=decay[name])
                else:
                    motion = torch.full_like(theta, math.nan) if sgd else torch.zeros_like(theta)
                if full:
                    tensors[name] = (theta, grad if grad is not None else torch.full_like(theta, math.nan), motion)
                else:
                    tensors[name] = (theta, motion) if mixed else (motion,)
            if full:
                sums = self._map.reduce_products(tensors, FULL_PAIRS, linear=True, norm=True,
                                                 decay=decay if mixed else None)
                drive = sums["products"][:, 3]
                self._measured.append({"step": torch.tensor(self._updates), "products": sums["products"],
                                       "sums": sums["sums"], "norm": sums["norm"]})
            elif mixed:
                sums = self._map.reduce_products(tensors, [(0, 0), (1, 1)], decay=decay)
                drive = sums["products"][:, -1]
            else:
                drive = self._map.reduce_squares({name: t[0] for name, t in tensors.items()})
        hyper = torch.tensor([[float(g.get(k, 0.0) or 0.0) for k in HYPER] for g in optimizer.param_groups],
                             dtype=torch.float64)
        row = {"drive": drive, "hyper": hyper}
        if mixed:
            row["decay"] = sums["decay"]
        self._rows.append(row)
        if not sgd:
            self._problems["all"] = (f"{type(optimizer).__name__} has no closed form: its preconditioner breaks the "
                                     "orthogonality of the update to the generator; only the drift is measured")
        elif any(g.get("nesterov") for g in optimizer.param_groups):
            self._problems["all"] = "SGD with Nesterov momentum: the recursions here cover heavy-ball momentum only"

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The record so far, stacked (for checkpoints: a resumed run continues the same record)."""
        if not self._rows:
            return {}
        state = {f"row.{k}": torch.stack([r[k] for r in self._rows]).cpu() for k in self._rows[0]}
        state.update({f"measured.{k}": torch.stack([r[k] for r in self._measured]).cpu() for k in self._measured[0]})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.reset()
        if state:
            for prefix, target in (("row.", self._rows), ("measured.", self._measured)):
                part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                target.extend({k: v[i] for k, v in part.items()} for i in range(len(next(iter(part.values())))))
            self._updates = len(self._rows)

    def _theory_notes(self, hyper: torch.Tensor) -> list[str]:
        if self._problems.get("all"):
            return ["not applicable: " + self._problems["all"]] * len(self._param_group)
        notes, verdicts = [], {}
        for i, groups in enumerate(self._param_group):
            if not self._mixed[i]:
                notes.append("exact")
                continue
            key = tuple(sorted(set(groups)))
            if key not in verdicts:
                rows = hyper[:, list(key)]  # (steps, param groups, HYPER)
                verdicts[key] = (
                    "not applicable: its parameters sit in optimiser groups with different lr, momentum or "
                    "dampening, which breaks the orthogonality of the update to the generator"
                    if not torch.equal(rows[..., DRIVE].amax(1), rows[..., DRIVE].amin(1))
                    else MEASURED_DECAY if not torch.equal(rows.amax(1), rows.amin(1)) else "exact")
            notes.append(verdicts[key])
        return notes

    def compute(self) -> NoetherChargesResult:
        rows = self._rows
        count = len(rows)
        drive = torch.stack([r["drive"] for r in rows]).cpu()  # (T, G): |v|^2 read at each update
        hyper_groups = torch.stack([r["hyper"] for r in rows])  # (T, param groups, 4)
        per_group = hyper_groups[:, self._first]  # (T, G, 4)
        lr, wd, beta, delta = per_group.unbind(-1)
        nq = len(self.quadratic)
        quadratic = torch.arange(len(self.groups)) < nq
        at = torch.stack([r["step"] for r in self._measured]).long()
        products = torch.stack([r["products"] for r in self._measured]).cpu()  # (M, G, 5)
        sums = torch.stack([r["sums"] for r in self._measured]).cpu()  # (M, G, 3)
        norm = torch.stack([r["norm"] for r in self._measured]).cpu()

        def spread(values: torch.Tensor) -> torch.Tensor:
            out = torch.full((count, len(self.groups)), math.nan, dtype=torch.float64)
            out[at] = values
            return out

        nan = torch.full_like(norm, math.nan)
        charge = spread(torch.where(quadratic, products[..., 0], sums[..., 0]))
        gradient_energy = spread(torch.where(quadratic, products[..., 1], nan))
        constraint = spread(torch.where(quadratic, products[..., 2], sums[..., 1]))
        motion_charge = spread(torch.where(quadratic, products[..., 4], nan))
        reference = spread(torch.where(quadratic, norm, (norm * self._entries).sqrt()))
        motion = torch.where(quadratic, drive, torch.full_like(drive, math.nan))
        buffered = beta > 0
        # energy[k] = V_{k+1}, the update step k applies; p[k] = p_{k+1} = <theta_k, v_{k+1}>
        energy = torch.where(buffered[:-1], motion[1:], motion[:-1])
        noether = torch.where(buffered[:-1], motion_charge[1:] + lr[:-1] * motion[1:], motion_charge[:-1])
        energy = torch.cat([energy, torch.full_like(energy[:1], math.nan)])
        noether = torch.cat([noether, torch.full_like(noether[:1], math.nan)])
        steps = len(rows) - 1
        theory = self._theory_notes(hyper_groups)
        exact = torch.full_like(charge, math.nan)
        continuous = torch.full_like(charge, math.nan)
        noether_exact = torch.full_like(charge, math.nan)
        ok = torch.tensor([t.startswith("exact") for t in theory])
        measured = torch.tensor([t == MEASURED_DECAY for t in theory])
        decay_term = torch.stack([r["decay"] for r in rows]).cpu()[:steps] if "decay" in rows[0] else None
        for columns in _hyper_classes(per_group[:-1], ok, measured):
            h = [x[:-1, columns[0]] for x in (lr, wd, beta, delta)]
            quad_cols = columns[columns < nq]
            lin_cols = columns[columns >= nq]
            if len(quad_cols):
                mixed = bool(measured[quad_cols[0]])
                q, p = recursions.exact_quadratic(charge[0, quad_cols], energy[:steps, quad_cols], *h,
                                                  decay_term=decay_term[:, quad_cols] if mixed else None)
                exact[:, quad_cols], noether_exact[:steps, quad_cols] = q, p
                if not mixed and float(h[2].max()) > 0:
                    continuous[:, quad_cols] = recursions.continuous_momentum(
                        charge[0, quad_cols], energy[:steps, quad_cols], *h)
                elif not mixed:  # the continuous forms assume one lambda per group
                    continuous[:, quad_cols] = recursions.continuous_sgd_quadratic(
                        charge[0, quad_cols], gradient_energy[:steps, quad_cols], h[0], h[1])
            if len(lin_cols):
                exact[:, lin_cols] = recursions.exact_translation(charge[0, lin_cols], steps, *h)
                continuous[:, lin_cols] = (recursions.continuous_momentum(
                    charge[0, lin_cols], energy[:steps, lin_cols], *h, translation=True) if float(h[2].max()) > 0
                    else recursions.continuous_sgd_translation(charge[0, lin_cols], steps, h[0], h[1]))
        ordered = self.quadratic + self.linear
        return NoetherChargesResult(
            charge=charge, exact=exact, continuous=continuous, noether_charge=noether, noether_charge_exact=noether_exact,
            energy=energy, gradient_energy=gradient_energy, constraint=constraint, reference=reference, lr=lr,
            weight_decay=wd, momentum=beta, names=[g.name for g in ordered], kinds=[g.kind for g in ordered],
            theory=theory)


def _hyper_classes(per_group: torch.Tensor, ok: torch.Tensor, measured: torch.Tensor) -> list[torch.Tensor]:
    """Columns of groups with the theory applicable, split into classes that share their
    hyper-parameter schedule and decay treatment (each class runs the recursions once, vectorised)."""
    columns = torch.nonzero(ok).squeeze(1)
    if not len(columns):
        return []
    schedules = torch.cat([per_group[:, columns].permute(1, 0, 2).reshape(len(columns), -1),
                           measured[columns, None].double()], 1)
    _, inverse = torch.unique(schedules, dim=0, return_inverse=True)
    return [columns[inverse == c] for c in range(int(inverse.max()) + 1)]

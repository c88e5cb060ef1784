"""Noether charges of parameter symmetry groups along training, with their theory.

`NoetherCharges(groups)` is updated once per optimiser step, after ``loss.backward()`` and
before ``optimizer.step()`` (a stream in a `Monitor`, also under `trainer_callback`, or
`train_loop`'s `after_backward`). Each update reduces every group at once (products over all parameters with ``torch._foreach_mul``,
per-axis sums, then one float64 gather and scatter-add into the groups; no ``.item()``): the
charge q_A, c_A or s_A, the gradient energy |g_A|^2, the constraint <g, X_A>, and for SGD the
update that the step applies: the momentum buffer v (read after the previous step), or
d = g + lambda theta without momentum. `compute` stacks the steps and predicts every charge from
its start with the exact discrete recursions and the continuous forms of
`goldstone.theory.noether.recursions`, once per class of groups that share an optimiser param
group's schedule (so its cost grows with steps x groups only for the results themselves).
Optimisers without a closed form (Adam, AdamW, RMSprop, SGD with Nesterov) get the measured drift
only, the theory marked not applicable with the reason.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Sequence

import pandas as pd
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

    def summary(self) -> pd.DataFrame:
        """One row per kind of group: how many, how many the theory covers exactly, and the largest
        relative error of the exact and the continuous prediction over all steps (NaN where none)."""
        rows = []
        for kind in dict.fromkeys(self.kinds):
            columns = [i for i, k in enumerate(self.kinds) if k == kind]
            worst = {p: self.relative_error(p)[:, columns].nan_to_num(nan=-1.0).max().item()
                     for p in ("exact", "continuous")}
            rows.append({"kind": kind, "groups": len(columns),
                         "exact_theory": sum(self.theory[i].startswith("exact") for i in columns),
                         **{f"max_error_{p}": math.nan if v < 0 else v for p, v in worst.items()}})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        steps, groups = self.charge.shape
        kinds = ", ".join(f"{n} {k}" for k, n in collections.Counter(self.kinds).items())
        theory = ", ".join(f"{n} {t.split(':')[0]}" for t, n in collections.Counter(
            "exact" if t.startswith("exact") else t for t in self.theory).items())
        return f"NoetherChargesResult({steps} steps, {groups} groups ({kinds}); theory: {theory})"


class NoOptimizer:
    """Stands in for the optimiser where there is none (a series of saved checkpoints): one param
    group holding every parameter, no state; the charges are measured, the update is not."""

    def __init__(self, model: nn.Module):
        self.model, self.param_groups, self.state = model, [{"params": list(model.parameters())}], {}


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
    lifecycle = "stream"
    needs_forward = False
    needs_optimizer = True

    def __init__(self, groups: Sequence[SymmetryGroup], every: int = 1):
        if not groups:
            raise GoldstoneError("NoetherCharges: no symmetry groups to track (detect_symmetries found none)")
        if every < 1:
            raise GoldstoneError(f"NoetherCharges: every={every}; it must be >= 1")
        self.groups, self.every = list(groups), every
        self.quadratic = [g for g in self.groups if g.kind != "translation"]
        self.linear = [g for g in self.groups if g.kind == "translation"]
        self.add_state("_rows", [], "replicated")  # parameters, gradients and buffers agree across DDP processes
        self.add_state("_measured", [], "replicated")
        self._built: tuple[int, int] | None = None
        self._problems: dict[str, str] = {}

    def _build(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        params = dict(model.named_parameters())
        ordered = self.quadratic + self.linear
        families = {id(g.family): g.family for g in ordered}  # the groups of a family share their parameters
        used = {id(f): f.parameters for f in families.values()}
        missing = [p for names in used.values() for p in names if p not in params]
        if missing:
            raise GoldstoneError(f"NoetherCharges: the model has no parameter {missing[0]!r}")
        shapes = {n: p.shape for n, p in params.items()}
        device = next(iter(params.values())).device
        self._map = ChargeMap(ordered, shapes, device)
        self._entries = self._map.entries().cpu()
        index = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
        outside = [n for names in used.values() for n in names if id(params[n]) not in index]
        if outside:
            raise GoldstoneError(f"NoetherCharges: parameter {outside[0]!r} is not optimised by the given optimizer")
        owners = {key: [index[id(params[n])] for n in names] for key, names in used.items()}
        self._param_group = [owners[id(g.family)] for g in ordered]
        self._first = torch.tensor([pg[0] for pg in self._param_group])
        self._mixed = [len(set(pg)) > 1 for pg in self._param_group]
        self._any_mixed = any(self._mixed)
        # the tracked parameters in the map's order, and the optimiser param group of each
        self._params = [params[n] for n in self._map.parameters]
        self._owners = [optimizer.param_groups[index[id(p)]] for p in self._params]
        self._owner_groups = list({id(g): g for g in self._owners}.values())
        self._sgd = isinstance(optimizer, torch.optim.SGD)
        self._hyper_values: list[float] | None = None
        self._built = (id(model), id(optimizer))

    def _motions(self, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
        """Per tracked parameter (the map's order) the update the next step applies: for SGD the
        momentum buffer v (zero before the first step), or d = g + lambda theta without momentum
        (NaN without a gradient); zero for other optimisers (the drive is not defined)."""
        params = self._params
        if self._sgd and all(g.get("momentum", 0) > 0 for g in self._owner_groups):
            empty: dict = {}
            buffers = [optimizer.state.get(p, empty).get("momentum_buffer") for p in params]
            return [torch.zeros_like(p) if b is None else b for p, b in zip(params, buffers)]
        motions = []
        for p, hyper in zip(params, self._owners):
            grad = p.grad
            if self._sgd and hyper.get("momentum", 0) > 0:
                motion = optimizer.state.get(p, {}).get("momentum_buffer")
                motion = torch.zeros_like(p) if motion is None else motion
            elif self._sgd and grad is not None:
                motion = torch.add(grad, p, alpha=float(hyper.get("weight_decay", 0.0) or 0.0))
            else:
                motion = torch.full_like(p, math.nan) if self._sgd else torch.zeros_like(p)
            motions.append(motion)
        return motions

    def update(self, probe: Probe) -> None:
        model, optimizer = probe.model, probe.optimizer
        if optimizer is None:  # saved checkpoints: the charges only
            if getattr(self, "_stand_in", None) is None or self._stand_in.model is not model:
                self._stand_in = NoOptimizer(model)
            optimizer = self._stand_in
        if self._built != (id(model), id(optimizer)):
            self._build(model, optimizer)
        full = self._updates % self.every == 0
        mixed = self._any_mixed
        with torch.no_grad():
            motions = self._motions(optimizer)
            decay = [float(g.get("weight_decay", 0.0) or 0.0) for g in self._owners] if mixed else None
            if full:
                grads = [p.grad if p.grad is not None else torch.full_like(p, math.nan) for p in self._params]
                sums = self._map.reduce_columns([self._params, grads, motions], FULL_PAIRS, linear=True, norm=True,
                                                decay=decay)
                drive = sums["products"][:, 3]
                self._measured.append({"step": torch.tensor(self._updates), "products": sums["products"],
                                       "sums": sums["sums"], "norm": sums["norm"]})
            elif mixed:
                sums = self._map.reduce_columns([self._params, motions], [(0, 0), (1, 1)], decay=decay)
                drive = sums["products"][:, -1]
            else:
                drive = self._map.reduce_squares(motions)
        # the hyper-parameters of every param group, as one tensor, rebuilt only when they change
        values = [float(g.get(k, 0.0) or 0.0) for g in optimizer.param_groups for k in HYPER]
        if values != self._hyper_values:
            self._hyper_values = values
            self._hyper = torch.tensor(values, dtype=torch.float64).view(-1, len(HYPER))
        row = {"drive": drive, "hyper": self._hyper}
        if mixed:
            row["decay"] = sums["decay"]
        self._rows.append(row)
        if isinstance(optimizer, NoOptimizer):
            self._problems["all"] = ("no optimiser (saved checkpoints): the charges are measured, their theory needs "
                                     "the optimiser's steps")
        elif not self._sgd:
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
        rows, measured_rows = self._rows, self._measured
        count, steps, width, nq = len(rows), len(rows) - 1, len(self.groups), len(self.quadratic)
        nan = math.nan
        hyper_groups = torch.stack([r["hyper"] for r in rows]).cpu()  # (T, param groups, HYPER)
        # per group, its first parameter's param group's lr, weight decay, momentum: (T, G)
        lr, wd, beta = (hyper_groups[..., i].index_select(1, self._first) for i in range(3))
        at = torch.stack([r["step"] for r in measured_rows]).long()
        products = torch.stack([r["products"] for r in measured_rows]).cpu()  # (M, G, 5)
        sums = torch.stack([r["sums"] for r in measured_rows]).cpu()  # (M, G, 3)
        norm = torch.stack([r["norm"] for r in measured_rows]).cpu()  # (M, G)

        def spread(quadratic: torch.Tensor, linear: torch.Tensor | None = None) -> torch.Tensor:
            """(T, G), NaN but at the measured steps: `quadratic` (M, G) in the quadratic groups'
            columns, `linear` (M, G) in the translation groups' (NaN if None)."""
            values = quadratic if linear is None else torch.cat([quadratic[:, :nq], linear[:, nq:]], 1)
            out = torch.full((count, width), nan, dtype=torch.float64)
            out.index_copy_(0, at, values)
            if linear is None:
                out[:, nq:] = nan
            return out

        charge = spread(products[..., 0], sums[..., 0])
        gradient_energy = spread(products[..., 1])
        constraint = spread(products[..., 2], sums[..., 1])
        reference = spread(norm, (norm * self._entries).sqrt())
        buffered = beta[:-1, :nq] > 0
        # energy[k] = V_{k+1}, the update step k applies: |v|^2 read at update k + 1 with momentum
        # (the buffer step k wrote), else at update k (d_k = g_k + lambda theta_k); quadratic groups only
        drives = [r["drive"] for r in rows]
        energy = torch.empty((count, width), dtype=torch.float64)
        if steps and drives[0].device.type == "cpu":
            torch.stack(drives[1:], out=energy[:-1])
        elif steps:
            energy[:-1] = torch.stack(drives[1:]).cpu()
        if not bool(buffered.all()):
            energy[:-1, :nq] = torch.where(buffered, energy[:-1, :nq], torch.stack(drives[:-1]).cpu()[:, :nq])
        energy[-1], energy[:, nq:] = nan, nan
        # p[k] = p_{k+1} = <theta_k, v_{k+1}> from the measured <theta, v>: only rows next to a measurement
        slot = torch.full((count,), len(at), dtype=torch.long)
        slot[at] = torch.arange(len(at))
        motion_charge = torch.cat([products[:, :nq, 4], products.new_full((1, nq), nan)])  # measurement (or NaN), group
        near = torch.cat([at, at - 1]).unique()
        near = near[(near >= 0) & (near < steps)]
        noether = torch.full((count, width), nan, dtype=torch.float64)
        noether[near, :nq] = torch.where(buffered[near],
                                         motion_charge[slot[near + 1]] + lr[near, :nq] * energy[near, :nq],
                                         motion_charge[slot[near]])
        theory = self._theory_notes(hyper_groups)
        exact = torch.full((count, width), nan, dtype=torch.float64)
        continuous = torch.full((count, width), nan, dtype=torch.float64)
        noether_exact = torch.full((count, width), nan, dtype=torch.float64)
        ok = torch.tensor([t.startswith("exact") for t in theory])
        measured = torch.tensor([t == MEASURED_DECAY for t in theory])
        decay_term = torch.stack([r["decay"] for r in rows]).cpu()[:steps] if "decay" in rows[0] else None
        for columns in _hyper_classes(hyper_groups[:-1], self._first, ok, measured):
            owner = int(self._first[columns[0]])
            h = [hyper_groups[:-1, owner, i] for i in range(len(HYPER))]
            momentum = steps > 0 and float(h[2].max()) > 0
            quad_cols, lin_cols = _block(columns[columns < nq]), _block(columns[columns >= nq])
            if quad_cols is not None:
                mixed = bool(measured[columns[0]])
                _fill((exact, noether_exact[:steps]), quad_cols, recursions.exact_quadratic, charge[0, quad_cols],
                      energy[:steps, quad_cols], *h, decay_term=decay_term[:, quad_cols] if mixed else None)
                if not mixed and momentum:
                    _fill(continuous, quad_cols, recursions.continuous_momentum, charge[0, quad_cols],
                          energy[:steps, quad_cols], *h)
                elif not mixed:  # the continuous forms assume one lambda per group
                    _fill(continuous, quad_cols, recursions.continuous_sgd_quadratic, charge[0, quad_cols],
                          gradient_energy[:steps, quad_cols], h[0], h[1])
            if lin_cols is not None:
                _fill(exact, lin_cols, recursions.exact_translation, charge[0, lin_cols], steps, *h)
                if momentum:
                    _fill(continuous, lin_cols, recursions.continuous_momentum, charge[0, lin_cols],
                          energy[:steps, lin_cols], *h, translation=True)
                else:
                    continuous[:, lin_cols] = recursions.continuous_sgd_translation(charge[0, lin_cols], steps,
                                                                                    h[0], h[1])
        if not hasattr(self, "_labels"):
            ordered = self.quadratic + self.linear
            self._labels = ([g.name for g in ordered], [g.kind for g in ordered])
        return NoetherChargesResult(
            charge=charge, exact=exact, continuous=continuous, noether_charge=noether, noether_charge_exact=noether_exact,
            energy=energy, gradient_energy=gradient_energy, constraint=constraint, reference=reference, lr=lr,
            weight_decay=wd, momentum=beta, names=list(self._labels[0]), kinds=list(self._labels[1]), theory=theory)


def _fill(targets: torch.Tensor | tuple[torch.Tensor, ...], columns: slice | torch.Tensor, recursion, *args, **kwargs
          ) -> None:
    """targets[:, columns] = recursion(*args, **kwargs) (one target per result), written in place
    (``out=``) where `columns` is a slice."""
    single = torch.is_tensor(targets)
    targets = (targets,) if single else targets
    if isinstance(columns, slice):
        views = tuple(t[:, columns] for t in targets)
        recursion(*args, **kwargs, out=views[0] if single else views)
        return
    results = recursion(*args, **kwargs)
    for target, result in zip(targets, (results,) if single else results):
        target[:, columns] = result


def _block(columns: torch.Tensor) -> slice | torch.Tensor | None:
    """Sorted column indices as a slice where they are contiguous (a view, not a copy); None if empty."""
    if not len(columns):
        return None
    first, last = int(columns[0]), int(columns[-1])
    return slice(first, last + 1) if last - first + 1 == len(columns) else columns


def _hyper_classes(hyper: torch.Tensor, first: torch.Tensor, ok: torch.Tensor, measured: torch.Tensor
                   ) -> list[torch.Tensor]:
    """Columns of groups with the theory applicable, split into classes that share their
    hyper-parameter schedule and decay treatment (each class runs the recursions once, vectorised).

    A group follows the schedule of its first parameter's optimiser param group (`first`; `hyper`:
    (steps, param groups, HYPER)), so the classes are those of (param group, measured decay),
    with param groups of equal schedules merged: O(steps x param groups), not O(steps x groups)."""
    columns = torch.nonzero(ok).squeeze(1)
    if not len(columns):
        return []
    owners = first[columns]
    schedule = {}  # param group -> the first param group (in order of use) with the same schedule
    for group in dict.fromkeys(owners.tolist()):
        same = (r for r in dict.fromkeys(schedule.values()) if torch.equal(hyper[:, group], hyper[:, r]))
        schedule[group] = next(same, group)
    code = torch.tensor([schedule[g] for g in owners.tolist()]) * 2 + measured[columns].long()
    _, inverse = torch.unique(code, return_inverse=True)
    return [columns[inverse == c] for c in range(int(inverse.max()) + 1)]

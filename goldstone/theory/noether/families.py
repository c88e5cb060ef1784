"""Parameter symmetry groups and their Noether charges, computed for many groups at once.

A *family* is a set of groups of one kind that share their layout, e.g. "every output channel j
of fc1 with bias j" (scale, one group per channel) or "unit j: row j of fc1 against column j of
fc2" (rescale). Each member of a family is a parameter sliced along one axis: group j owns the
entries ``[offset + j * block, offset + (j + 1) * block)`` of that axis (``block`` > 1 for the
consumer columns of a flattened conv channel), entering with a sign (+1 for A1, -1 for A2).

`ChargeMap` turns per-axis sums of a parameter-shaped quantity into one value per group with one
sparse matrix product: the charges of "Symmetry and Broken Conservation Laws in Deep Learning
Dynamics" (Kunin et al., 2021) are

    translation  s_A = <theta_A, 1>,   scale  q_A = |theta_A|^2,
    rescale      c_A = |theta_A1|^2 - |theta_A2|^2,

and the same map gives the update energies |v_A|^2, the Noether charge <theta_A, v_A>, and the
gradient constraint <g, X_A> of each group (X_A the generator: 1_A, theta_A, theta_A1 - theta_A2).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence

import torch

KINDS = ("translation", "scale", "rescale")
QUADRATIC = ("scale", "rescale")


@dataclasses.dataclass(frozen=True)
class Member:
    """One parameter of a family, sliced along `axis`; `count` groups of `block` entries from `offset`."""

    parameter: str
    axis: int
    sign: int = 1
    block: int = 1
    offset: int = 0


@dataclasses.dataclass
class Family:
    """`count` groups of one `kind` with a shared layout (see the module docstring)."""

    kind: str
    name: str
    members: tuple[Member, ...]
    count: int
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"family {self.name!r}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def parameters(self) -> list[str]:
        return list(dict.fromkeys(m.parameter for m in self.members))

    def group_size(self, shapes: Mapping[str, torch.Size]) -> int:
        """Entries of one group (members' slabs summed)."""
        return sum(m.block * math.prod(shapes[m.parameter]) // shapes[m.parameter][m.axis] for m in self.members)

    def transform(self, params: Mapping[str, torch.Tensor], amounts: torch.Tensor) -> dict[str, torch.Tensor]:
        """The members' parameters after the finite transformation with one amount per group:
        translation theta_A + a_j 1; scale alpha_j theta_A; rescale alpha_j on A1, 1/alpha_j on A2."""
        out: dict[str, torch.Tensor] = {}
        for m in self.members:
            base = out.get(m.parameter, params[m.parameter])
            per_index = amounts.repeat_interleave(m.block).to(base)
            shape = [1] * base.dim()
            shape[m.axis] = -1
            full_length = base.shape[m.axis]
            pad = (m.offset, full_length - m.offset - per_index.numel())
            if self.kind == "translation":
                delta = torch.nn.functional.pad(per_index, pad)
                out[m.parameter] = base + delta.view(shape)
            else:
                factor = torch.nn.functional.pad(per_index.log() * m.sign, pad).exp()
                out[m.parameter] = base * factor.view(shape)
        return out


@dataclasses.dataclass
class SymmetryGroup:
    """One symmetry group A: group `index` of `family`. `quality` is the measured violation of
    the symmetry (the largest |<g, X_A>| / (|g_A| |X_A|) over the detection batches, or the
    finite-transformation loss change of its family if larger); `note` flags what the theory of a
    group has to take into account (e.g. a bias with zero gradient)."""

    family: Family
    index: int
    quality: float = math.nan

    @property
    def kind(self) -> str:
        return self.family.kind

    @property
    def parameters(self) -> list[str]:
        return self.family.parameters

    @property
    def name(self) -> str:
        return self.family.name if self.family.count == 1 else f"{self.family.name}[{self.index}]"

    @property
    def note(self) -> str:
        return self.family.note


def group_families(groups: Sequence[SymmetryGroup]) -> list[tuple[Family, torch.Tensor]]:
    """The distinct families of `groups` (in order of first appearance) with the indices used."""
    found: dict[int, tuple[Family, list[int]]] = {}
    for g in groups:
        found.setdefault(id(g.family), (g.family, []))[1].append(g.index)
    return [(family, torch.tensor(indices)) for family, indices in found.values()]


def stack_sums(stack: torch.Tensor, axis: int) -> torch.Tensor:
    """(C, n) float64: for a stack of C parameter-shaped tensors (C, *shape), the sums over every
    parameter axis but `axis` (n = shape[axis]), in the stack's dtype (float32 at least)."""
    stack = stack if stack.dtype in (torch.float32, torch.float64) else stack.float()
    others = [d for d in range(1, stack.dim()) if d != axis + 1]
    return (stack.sum(dim=others) if others else stack).to(torch.float64)


class ChargeMap:
    """Per-group sums of parameter-shaped quantities, for the groups given (in that order).

    ``reduce(lambda name: theta[name] ** 2)`` is sum_{i in A} sign_i theta_i^2 per group (q or c);
    ``reduce(..., signed=False)`` drops the signs (|theta_A|^2 over both sides).
    """

    def __init__(self, groups: Sequence[SymmetryGroup], shapes: Mapping[str, torch.Size],
                 device: torch.device | str = "cpu"):
        self.groups = list(groups)
        keys: dict[tuple[str, int], int] = {}
        rows, cols, signs = [], [], []
        start = 0
        for family, indices in group_families(self.groups):
            positions = torch.arange(start, start + len(indices))
            start += len(indices)
            for m in family.members:
                key = (m.parameter, m.axis)
                if key not in keys:
                    keys[key] = sum(shapes[p][a] for p, a in keys)
                within = torch.arange(m.block)
                entries = (m.offset + indices[:, None] * m.block + within[None, :]).reshape(-1)
                rows.append(positions.repeat_interleave(m.block))
                cols.append(keys[key] + entries)
                signs.append(torch.full((len(entries),), float(m.sign), dtype=torch.float64))
        self.keys = list(keys)
        self._others = [[d for d in range(len(shapes[name])) if d != axis] for name, axis in self.keys]
        self._linear_keys = {(m.parameter, m.axis) for family, _ in group_families(self.groups)
                             if family.kind == "translation" for m in family.members}
        width = sum(shapes[p][a] for p, a in self.keys)
        index = torch.stack([torch.cat(rows), torch.cat(cols)]) if rows else torch.zeros(2, 0, dtype=torch.long)
        values = torch.cat(signs) if signs else torch.zeros(0, dtype=torch.float64)
        size = (len(self.groups), width)
        self._signed = torch.sparse_coo_tensor(index, values, size, check_invariants=True).coalesce().to(device)
        self._unsigned = torch.sparse_coo_tensor(index, values.abs(), size, check_invariants=True).coalesce().to(device)

    def reduce_products(self, tensors: Mapping[str, Sequence[torch.Tensor]], pairs: Sequence[tuple[int, int]], *,
                        linear: bool = False, decay: Mapping[str, float] | None = None, norm: bool = False
                        ) -> dict[str, torch.Tensor]:
        """Per-group sums of products of parameter-shaped tensors, for all groups with one sparse
        product. `tensors`: per parameter, C tensors of its shape (e.g. theta, g, v); `pairs`:
        which products (a, b) to sum. Returns (float64):

        - ``products`` (groups, len(pairs)): signed sums of tensor a times tensor b;
        - with `linear`, ``sums`` (groups, C): signed sums of each tensor (translation groups; 0 elsewhere);
        - with `decay` (per parameter its weight decay), ``decay`` (groups,): signed sums of
          lambda_i times the first pair's product;
        - with `norm`, ``norm`` (groups,): unsigned sums of the first pair's product.

        Per-slice sums run in the parameters' dtype (float32 at least), group sums in float64."""
        c = len(tensors[self.keys[0][0]])
        products: dict[str, torch.Tensor] = {}
        parts = []
        for name, axis in self.keys:
            values = [t if t.dtype in (torch.float32, torch.float64) else t.float() for t in tensors[name]]
            if name not in products:
                products[name] = (torch.stack([values[a] * values[b] for a, b in pairs]) if len(pairs) > 1
                                  else (values[pairs[0][0]] * values[pairs[0][1]]).unsqueeze(0))
            others = [d for d in range(values[0].dim()) if d != axis]
            moments = (products[name].sum(dim=[d + 1 for d in others]) if others else products[name]).T
            columns = [moments]
            if linear:
                columns.append(torch.stack([v.sum(dim=others) if others else v for v in values], 1)
                               if (name, axis) in self._linear_keys else moments.new_zeros(moments.shape[0], c))
            if decay is not None:
                columns.append(moments[:, :1] * decay[name])
            parts.append(torch.cat(columns, 1))
        flat = torch.cat(parts).to(torch.float64)
        signed = self._signed @ flat
        out = {"products": signed[:, :len(pairs)]}
        if linear:
            out["sums"] = signed[:, len(pairs):len(pairs) + c]
        if decay is not None:
            out["decay"] = signed[:, -1]
        if norm:
            out["norm"] = (self._unsigned @ flat[:, :1]).squeeze(1)
        return out

    def reduce_squares(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(groups,) float64: the signed group sums of one tensor per parameter, squared; the
        per-step fast path of `reduce_products` (one product per parameter, one sum per slice)."""
        squares = {name: t * t for name, t in tensors.items()}
        parts = [squares[name].sum(dim=others) if others else squares[name]
                 for (name, _), others in zip(self.keys, self._others)]
        return (self._signed @ torch.cat(parts).to(torch.float64).unsqueeze(1)).squeeze(1)

    def entries(self) -> torch.Tensor:
        """The number of parameter entries in each group."""
        return (self._unsigned @ torch.ones(self._unsigned.shape[1], 1, dtype=torch.float64,
                                            device=self._unsigned.device)).squeeze(1)

    def reduce(self, quantity: Callable[[str], torch.Tensor], signed: bool = True) -> torch.Tensor:
        """One float64 value per group: the (signed) sum of ``quantity(name)`` over the group's entries."""
        names = dict.fromkeys(name for name, _ in self.keys)
        return self.reduce_stacked({n: quantity(n).unsqueeze(0) for n in names}, signed).squeeze(1)

    def reduce_stacked(self, stacked: Mapping[str, torch.Tensor], signed: bool = True) -> torch.Tensor:
        """(groups, C) float64: for each parameter a stack of C quantities (C, *shape), the (signed)
        group sums of every one of them, with one sparse product for all."""
        if not self.keys:
            columns = len(next(iter(stacked.values()))) if stacked else 0
            return torch.zeros(len(self.groups), columns, dtype=torch.float64)
        flat = torch.cat([stack_sums(stacked[name], axis) for name, axis in self.keys], dim=1)
        matrix = self._signed if signed else self._unsigned
        return matrix @ flat.T

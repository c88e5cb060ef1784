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
import warnings
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

    The map from the per-axis sums (one entry per slice of each (parameter, axis) key) to the
    groups is a sparse matrix of signs. On the CPU it is applied as a gather of the entries, times
    their signs, and a (sequential) scatter-add into the groups, in the order of the (row-major)
    matrix entries, which is the order of the COO ``addmm`` it replaces (so the sums are the same
    to the bit) at a fraction of its cost; elsewhere as a CSR product where the device has one, else
    COO. `parameters` lists the parameters of the keys in their order; the reductions take one
    tensor (or C tensors) per parameter, by name or in that order.
    """

    def __init__(self, groups: Sequence[SymmetryGroup], shapes: Mapping[str, torch.Size],
                 device: torch.device | str = "cpu"):
        self.groups = list(groups)
        keys: dict[tuple[str, int], int] = {}
        rows, cols, signs = [], [], []
        start = 0
        families = group_families(self.groups)
        for family, indices in families:
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
        self.parameters = list(dict.fromkeys(name for name, _ in self.keys))
        self._others = [[d for d in range(len(shapes[name])) if d != axis] for name, axis in self.keys]
        self._linear_keys = {(m.parameter, m.axis) for family, _ in families
                             if family.kind == "translation" for m in family.members}
        # The per-slice sums are laid out with the keys of 1-d parameters first (their slices are the
        # entries themselves: one concatenation and one product serve them all), then the others.
        position = {name: i for i, name in enumerate(self.parameters)}
        vector = [j for j, others in enumerate(self._others) if not others]
        matrix = [j for j, others in enumerate(self._others) if others]
        self._vector = [position[self.keys[j][0]] for j in vector]  # parameters, in layout order
        self._vector_linear = []  # (start, length) of the translation keys among them
        start = 0
        for j in vector:
            length = shapes[self.keys[j][0]][0]
            if self.keys[j] in self._linear_keys:
                self._vector_linear.append((start, length))
            start += length
        self._vector_width = start
        self._matrix = list(dict.fromkeys(position[self.keys[j][0]] for j in matrix))  # parameters with sums
        # per summed key: (its parameter among `_matrix`, the dimensions summed, translation key?)
        self._plan = [(self._matrix.index(position[self.keys[j][0]]), self._others[j],
                       self.keys[j] in self._linear_keys) for j in matrix]
        self._matrix_axes = [(self._matrix.index(position[self.keys[j][0]]), self.keys[j][1]) for j in matrix]
        width = sum(shapes[p][a] for p, a in self.keys)
        placed = torch.empty(width, dtype=torch.long)  # each column's place in the layout
        start = 0
        for j in vector + matrix:
            length = shapes[self.keys[j][0]][self.keys[j][1]]
            offset = keys[self.keys[j]]
            placed[offset:offset + length] = torch.arange(start, start + length)
            start += length
        index = torch.stack([torch.cat(rows), torch.cat(cols)]) if rows else torch.zeros(2, 0, dtype=torch.long)
        values = torch.cat(signs) if signs else torch.zeros(0, dtype=torch.float64)
        size = (len(self.groups), width)
        signed = torch.sparse_coo_tensor(index, values, size, check_invariants=True).coalesce()
        self._sequential = torch.device(device).type == "cpu"
        if self._sequential:  # the matrix entries in row-major order of the keys' columns: (group, place, sign)
            self._rows, self._cols = signed.indices()[0], placed[signed.indices()[1]]
            self._signs = signed.values()
            self._flat_index: dict[tuple[int, bool], tuple[torch.Tensor, ...]] = {}
            self._width = width
        else:
            index = torch.stack([index[0], placed[index[1]]])
            self._signed = _compressed(torch.sparse_coo_tensor(index, values, size).coalesce().to(device))
            self._unsigned = _compressed(torch.sparse_coo_tensor(index, values.abs(), size).coalesce().to(device))

    def _apply(self, flat: torch.Tensor, signed: bool = True) -> torch.Tensor:
        """(groups, ...) float64: the map (signed, or with every sign +1) applied to the per-slice
        sums `flat`, (width,) or (width, C), laid out with the 1-d parameters' entries first (in the
        order of `_vector`), then the sums of each key of the others (in the order of `_plan`)."""
        if self._sequential:
            entries = flat.index_select(0, self._cols)
            if signed:
                entries.mul_(self._signs if flat.dim() == 1 else self._signs.unsqueeze(1))
            if flat.dim() == 1:
                return flat.new_zeros(len(self.groups)).scatter_add_(0, self._rows, entries)
            return flat.new_zeros((len(self.groups),) + flat.shape[1:]).index_add_(0, self._rows, entries)
        matrix = self._signed if signed else self._unsigned
        if flat.dim() == 1 and matrix.layout != torch.sparse_csr:
            return (matrix @ flat.unsqueeze(1)).squeeze(1)
        return matrix @ flat

    def _vectors(self, per_parameter: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The 1-d parameters' tensors, concatenated into one where they share a dtype (else one each)."""
        tensors = [per_parameter[i] for i in self._vector]
        if len(tensors) > 1 and all(t.dtype == tensors[0].dtype for t in tensors):
            return [torch.cat(tensors)]
        return tensors

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
        c = len(tensors[self.parameters[0]])
        columns = [[tensors[name][k] for name in self.parameters] for k in range(c)]
        return self.reduce_columns(columns, pairs, linear=linear, norm=norm,
                                   decay=None if decay is None else [decay[name] for name in self.parameters])

    def reduce_columns(self, columns: Sequence[Sequence[torch.Tensor]], pairs: Sequence[tuple[int, int]], *,
                       linear: bool = False, decay: Sequence[float] | None = None, norm: bool = False
                       ) -> dict[str, torch.Tensor]:
        """`reduce_products` with the tensors given as C lists (e.g. thetas, gradients, updates),
        each one tensor per parameter in the order of `parameters`, and `decay` in that order:
        the 1-d parameters concatenated, every product of the others in one ``torch._foreach_mul``,
        each summed over the slices of its keys, and all groups' sums in one gather and scatter-add."""
        c, width = len(columns), len(pairs)
        columns = [[t if t.dtype in (torch.float32, torch.float64) else t.float() for t in column]
                   for column in columns]
        vectors = [self._vectors(column) for column in columns]  # per column, the 1-d parameters (concatenated)
        pieces, linear_pieces, decay_pieces = [], [], []
        for part in range(len(vectors[0])):  # one part unless the 1-d parameters' dtypes differ
            moments = torch.stack([vectors[a][part] * vectors[b][part] for a, b in pairs], 1)
            pieces.append(moments)
            if decay is not None:
                rates = [decay[i] for i in self._vector]
                if len(vectors[0]) > 1:
                    decay_pieces.append(moments[:, :1] * rates[part])
                else:
                    start = 0
                    for i in self._vector:
                        length = columns[0][i].shape[0]
                        decay_pieces.append(moments[start:start + length, :1] * decay[i])
                        start += length
        if linear and self._vector:
            joined = [torch.cat(v) if len(v) > 1 else v[0] for v in vectors]
            linear_pieces = [(start, torch.stack([v[start:start + length] for v in joined], 1))
                             for start, length in self._vector_linear]
        n = len(self._matrix)
        products = torch._foreach_mul([columns[a][i] for a, _ in pairs for i in self._matrix],
                                      [columns[b][i] for _, b in pairs for i in self._matrix])  # [pair * n + parameter]
        start = self._vector_width
        for m, others, translation in self._plan:
            moments = torch.stack([products[k * n + m].sum(dim=others) for k in range(width)], 1)
            pieces.append(moments)
            if linear and translation:
                i = self._matrix[m]
                linear_pieces.append((start, torch.stack([v[i].sum(dim=others) for v in columns], 1)))
            if decay is not None:
                decay_pieces.append(moments[:, :1] * decay[self._matrix[m]])
            start += len(moments)
        blocks = [torch.cat(pieces) if len(pieces) > 1 else pieces[0]]  # (width, pairs)
        if linear:
            sums = blocks[0].new_zeros(blocks[0].shape[0], c)
            for start, piece in linear_pieces:
                sums[start:start + len(piece)] = piece
            blocks.append(sums)
        if decay is not None:
            blocks.append(torch.cat(decay_pieces))
        flat = (torch.cat(blocks, 1) if len(blocks) > 1 else blocks[0]).to(torch.float64)
        signed, unsigned = self._apply_columns(flat, norm)
        out = {"products": signed[:, :width]}
        if linear:
            out["sums"] = signed[:, width:width + c]
        if decay is not None:
            out["decay"] = signed[:, -1]
        if norm:
            out["norm"] = unsigned
        return out

    def _apply_columns(self, flat: torch.Tensor, norm: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The signed map applied to every column of `flat` (width, C) and, with `norm`, the
        unsigned map to its first: on the CPU one gather and one scatter-add over all of them."""
        if not self._sequential:
            return self._apply(flat), self._apply(flat[:, 0].contiguous(), signed=False) if norm else None
        groups, c = len(self.groups), flat.shape[1]
        key = (c, norm)
        if key not in self._flat_index:
            within = torch.arange(c)
            rows = (self._rows[:, None] * c + within).reshape(-1)
            cols = (self._cols[:, None] * c + within).reshape(-1)
            signs = self._signs.repeat_interleave(c)
            if norm:
                rows, cols = torch.cat([rows, groups * c + self._rows]), torch.cat([cols, self._cols * c])
                signs = torch.cat([signs, self._signs.abs()])
            self._flat_index[key] = rows, cols, signs
        rows, cols, signs = self._flat_index[key]
        entries = flat.reshape(-1).index_select(0, cols).mul_(signs)
        out = flat.new_zeros(groups * (c + norm)).scatter_add_(0, rows, entries)
        return out[:groups * c].view(groups, c), out[groups * c:] if norm else None

    def reduce_squares(self, tensors: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> torch.Tensor:
        """(groups,) float64: the signed group sums of one tensor per parameter (by name, or in the
        order of `parameters`), squared; the per-step fast path of `reduce_products` (one product
        of the 1-d parameters concatenated, one ``_foreach_mul`` for the others, one sum per slice,
        one concatenation, one gather and scatter-add)."""
        tensors = [tensors[name] for name in self.parameters] if isinstance(tensors, Mapping) else tensors
        pieces = [v * v for v in self._vectors(tensors)]
        others = [tensors[i] for i in self._matrix]
        squares = torch._foreach_mul(others, others)
        pieces += [squares[m].sum(dim=dims) for m, dims, _ in self._plan]
        return self._apply(torch.cat(pieces).to(torch.float64))

    def entries(self) -> torch.Tensor:
        """The number of parameter entries in each group."""
        if self._sequential:
            return self._apply(torch.ones(self._width, dtype=torch.float64), signed=False)
        return self._apply(torch.ones(self._unsigned.shape[1], dtype=torch.float64, device=self._unsigned.device),
                           signed=False)

    def reduce(self, quantity: Callable[[str], torch.Tensor], signed: bool = True) -> torch.Tensor:
        """One float64 value per group: the (signed) sum of ``quantity(name)`` over the group's entries."""
        return self.reduce_stacked({n: quantity(n).unsqueeze(0) for n in self.parameters}, signed).squeeze(1)

    def reduce_stacked(self, stacked: Mapping[str, torch.Tensor], signed: bool = True) -> torch.Tensor:
        """(groups, C) float64: for each parameter a stack of C quantities (C, *shape), the (signed)
        group sums of every one of them, with one sparse product for all."""
        if not self.keys:
            columns = len(next(iter(stacked.values()))) if stacked else 0
            return torch.zeros(len(self.groups), columns, dtype=torch.float64)
        pieces = [stack_sums(stacked[self.parameters[i]], 0) for i in self._vector]
        pieces += [stack_sums(stacked[self.parameters[self._matrix[m]]], axis) for m, axis in self._matrix_axes]
        return self._apply(torch.cat(pieces, dim=1).T, signed)


def _compressed(matrix: torch.Tensor) -> torch.Tensor:
    """`matrix` (sparse COO, coalesced) in CSR form where its device multiplies CSR by dense (e.g.
    CUDA), else as it is."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Sparse CSR tensor support is in beta state"
            compressed = matrix.to_sparse_csr()
            compressed @ torch.zeros(matrix.shape[1], dtype=matrix.dtype, device=matrix.device)
    except (RuntimeError, NotImplementedError, TypeError):
        return matrix
    return compressed

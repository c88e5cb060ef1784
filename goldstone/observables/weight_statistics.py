"""Spectral statistics of every weight matrix, and of its change against a reference.

Per matrix W (a Linear or Conv weight, flattened to d_out x d_in) with singular values s_1 >= s_2 >= ...:
the Frobenius norm |W|_F, the spectral norm s_1, the stable rank |W|_F^2 / s_1^2 and the effective
rank exp(H(s / sum s)) ("The effective rank: a measure of effective dimensionality", Roy &
Vetterli, 2007), and the entanglement entropy of its centre cut (row | column sites: the entropy
of p_i = s_i^2 / |W|_F^2, "Artificial Entanglement in the Fine-Tuning of Large Language Models",
Chen et al., 2026), and the width of the entanglement valley around that cut (the distance, in
qubits, between the highest cuts on either side, from the whole `entanglement_profile`). With a
reference (e.g. the first checkpoint), the same for W - W_ref: the valley of a fine-tuning update.
Matrices of one shape are decomposed in one batched call, in float64.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from goldstone.core.observable import Probe
from goldstone.observables.entanglement import entanglement_profile, prime_factors, valley_width
from goldstone.core.result import dims
from goldstone.observables.parameters import ParameterObservable, PerParameterResult

MATRIX_MODULES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Conv1D")
"""Module types whose ``weight`` counts as a weight matrix by default (Conv1D: GPT-2's linear)."""


VALLEY_LIMIT = 1024
"""Matrices with a side longer than this get no valley width: the partial traces of a 1536-row
Gram matrix cost seconds per matrix, too much for every checkpoint of an audit."""


def valley_widths(matrices: torch.Tensor) -> torch.Tensor:
    """The width of the entanglement valley around the row | column cut of each matrix (k, d_out,
    d_in), in qubits (`valley_width` of its `entanglement_profile`); NaN where a side is prime (no
    cut on that side), longer than `VALLEY_LIMIT`, or the matrix is zero."""
    rows, cols = prime_factors(matrices.shape[-2]), prime_factors(matrices.shape[-1])
    nan = torch.full(matrices.shape[:1], float("nan"), dtype=torch.float64)
    if len(rows) < 2 or len(cols) < 2 or max(matrices.shape[-2:]) > VALLEY_LIMIT:
        return nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a zero matrix is NaN, as said
        profiles = entanglement_profile(matrices)
    width = valley_width(profiles.nan_to_num(0.0), len(rows), rows + cols)
    return torch.where(profiles.isnan().any(-1), nan, width)


def spectral_statistics(matrices: torch.Tensor) -> dict[str, torch.Tensor]:
    """Norm, spectral norm, stable rank, effective rank, centre-cut entropy (nats) and valley width
    (qubits) of a batch of matrices (k, d_out, d_in), float64 (see the module docstring); NaN for a
    zero matrix."""
    s = torch.linalg.svdvals(matrices.double())
    power = s.pow(2)
    frobenius = power.sum(-1)
    p = s / s.sum(-1, keepdim=True)
    q = power / frobenius[:, None]
    entropy = lambda w: -(w * torch.log(w.clamp_min(1e-300))).sum(-1)  # noqa: E731
    zero = frobenius == 0
    nan = torch.full_like(frobenius, float("nan"))
    return {"norm": frobenius.sqrt(), "spectral_norm": s[:, 0],
            "stable_rank": torch.where(zero, nan, frobenius / s[:, 0].pow(2)),
            "effective_rank": torch.where(zero, nan, entropy(p).exp()),
            "entanglement": torch.where(zero, nan, entropy(q)), "valley_width": valley_widths(matrices.double())}


@dataclasses.dataclass
class WeightStatisticsResult(PerParameterResult):
    observable = "weight_statistics"
    norm: torch.Tensor = dims("parameter")
    spectral_norm: torch.Tensor = dims("parameter")
    stable_rank: torch.Tensor = dims("parameter")
    effective_rank: torch.Tensor = dims("parameter")
    entanglement: torch.Tensor = dims("parameter")
    valley_width: torch.Tensor = dims("parameter")
    delta_norm: torch.Tensor = dims("parameter")
    delta_stable_rank: torch.Tensor = dims("parameter")
    delta_entanglement: torch.Tensor = dims("parameter")
    delta_valley_width: torch.Tensor = dims("parameter")


class WeightStatistics(ParameterObservable):
    """`spectral_statistics` of every selected weight matrix (default: the weights of every Linear
    and Conv layer), and of W - W_ref when a reference is given."""

    name = "weight_statistics"
    summary = "per weight matrix: norm, spectral norm, stable and effective rank, centre-cut entanglement; of W - W_ref too"

    def __init__(self, params: str | Sequence[str] | None = None, roles: Sequence[str] | None = None,
                 layers: Sequence[int] | None = None, reference: Mapping[str, torch.Tensor] | str | Path | None = None):
        super().__init__(params, roles, layers, reference)
        self.add_state("_results", [], "cat")

    def _select(self, model: nn.Module) -> list[str]:
        if self.patterns or self.roles:
            return super()._select(model)
        modules = dict(model.named_modules())
        names = [n for n, p in model.named_parameters() if n.endswith(".weight") and p.dim() >= 2
                 and type(modules.get(n[: -len(".weight")])).__name__ in MATRIX_MODULES]
        if self.reference:
            self._check_reference(model, names)
        return names

    def update(self, probe: Probe) -> None:
        weights = {n: w.flatten(1) for n, w in self.selected(probe.model).items()}
        deltas = {n: d.flatten(1) for n, d in self.deltas(probe.model).items()} if self.reference else {}
        columns: dict[str, torch.Tensor] = {}
        for prefix, matrices in (("", weights), ("delta_", deltas)):
            by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
            for i, m in enumerate(matrices.values()):
                by_shape[tuple(m.shape)].append(i)
            values: dict[str, torch.Tensor] = {}
            stacked = list(matrices.values())
            for indices in by_shape.values():
                stats = spectral_statistics(torch.stack([stacked[i] for i in indices]))
                for key, value in stats.items():
                    values.setdefault(key, torch.empty(len(stacked), dtype=torch.float64))[indices] = value.cpu()
            if prefix == "delta_":
                values = {k: v for k, v in values.items() if k in ("norm", "stable_rank", "entanglement", "valley_width")}
            columns.update({prefix + k: v for k, v in values.items()})
        self._results.append(WeightStatisticsResult(**columns, names=list(weights)))

    def compute(self) -> WeightStatisticsResult:
        return self._results[-1]

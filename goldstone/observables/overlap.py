"""Overlap of two inputs per layer.

q_ab^l = (1/n_blocks) sum_j v_j^a . v_j^b; for U(1) (k = 2) the complex overlap
q = Delta e^{i phi} = (1/n) sum_j z_j^a conj(z_j^b), whose phase is conserved from layer to layer
in mean field while its magnitude decays ("Spontaneous Symmetry Breaking and Goldstone Modes for
Deep Information Propagation", Eq. 11). Inputs of the probe batch are paired (0, 1), (2, 3), ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
import torch

from goldstone.core.observable import Probe
from goldstone.core.result import Result, dims
from goldstone.groups import components
from goldstone.observables._layers import LayerObservable


@dataclasses.dataclass
class OverlapResult(Result):
    observable = "overlap"
    magnitude: torch.Tensor = dims("layer", "pair")
    correlation: torch.Tensor = dims("layer", "pair")
    phase: torch.Tensor = dims("layer", "pair")


class Overlap(LayerObservable):
    """q_ab^l = (1/n_blocks) sum_j v_j^a . v_j^b for the probe's input pairs (0, 1), (2, 3), ...: its
    magnitude, the correlation |q| / sqrt(c_a c_b) and, for U(1), the phase of the complex overlap,
    conserved from layer to layer in mean field (same paper, Eq. 11)."""

    name = "overlap"
    summary = "q_ab^l for input pairs: magnitude, correlation |q|/sqrt(c_a c_b), phase (U(1))"

    def __init__(self, k: int = 2, layers: Sequence[str] | None = None):
        super().__init__(k, layers)
        self.add_state("_q", [], "cat")
        self.add_state("_corr", [], "cat")

    def update(self, probe: Probe) -> None:
        acts = self.stacked(probe)  # (L, B, N)
        pairs = acts.shape[1] // 2
        a, b = acts[:, 0:2 * pairs:2], acts[:, 1:2 * pairs:2]
        n_blocks = acts.shape[-1] / self.k
        if self.k == 2:
            za, zb = (torch.complex(*components(v, 2).unbind(-2)) for v in (a, b))
            q = (za * zb.conj()).mean(-1)
        else:
            q = (a * b).sum(-1) / n_blocks
        ca, cb = a.pow(2).sum(-1) / n_blocks, b.pow(2).sum(-1) / n_blocks
        self._q.append(q.cpu())
        self._corr.append((q.abs() / (ca * cb).sqrt().clamp_min(1e-300)).cpu())

    def compute(self) -> OverlapResult:
        q = torch.cat(self._q, dim=1)
        return OverlapResult(magnitude=q.abs(), correlation=torch.cat(self._corr, dim=1),
                             phase=torch.angle(q) if q.is_complex() else torch.where(q < 0, torch.pi, 0.0).double())


"""The mean-field order parameter per layer.

c^l = (1/n_blocks) sum_j |v_j^l|^2, averaged over inputs: the mean squared norm of the k-blocks
of layer l ("Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information
Propagation", Eq. 8). c* = 0 in the symmetric phase (sigma_W < 1), c* > 0 when broken.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from goldstone.core.observable import Probe
from goldstone.core.result import Result, dims
from goldstone.observables._layers import LayerObservable


@dataclasses.dataclass
class OrderParameterResult(Result):
    observable = "order_parameter"
    c: torch.Tensor = dims("layer")


class OrderParameter(LayerObservable):
    """c^l = (1/n_blocks) sum_j |v_j^l|^2 per layer, averaged over the probe: zero in the symmetric
    phase, c* > 0 in the broken one ("Spontaneous Symmetry Breaking and Goldstone Modes for Deep
    Information Propagation", Eq. 8). `k`: the block size; `layers`: the modules whose outputs are
    the layers (default: the model's `layer_hook_names()`, else its hook points)."""

    name = "order_parameter"
    summary = "c^l: mean squared block norm per layer (mean-field order parameter)"

    def __init__(self, k: int = 2, layers: Sequence[str] | None = None):
        super().__init__(k, layers)
        self.add_state("_sum", torch.zeros((), dtype=torch.float64), "sum")
        self.add_state("_count", torch.zeros((), dtype=torch.float64), "sum")

    def update(self, probe: Probe) -> None:
        acts = self.stacked(probe)  # (L, B, N)
        n_blocks = acts.shape[-1] / self.k
        self._sum = self._sum + (acts.pow(2).sum(-1) / n_blocks).sum(-1).cpu()
        self._count = self._count + acts.shape[1]

    def compute(self) -> OrderParameterResult:
        return OrderParameterResult(c=self._sum / self._count)

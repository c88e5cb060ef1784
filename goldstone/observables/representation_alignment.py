"""Canonical representation alignment of every linear layer.

"Formation of Representations in Neural Networks" (Ziyin, Chuang, Galanti, Poggio, 2024): for a
layer h_b = W h_a (+ bias) with input covariance H_a = E[h_a h_a^T], output covariance
H_b = E[h_b h_b^T], and gradient covariances G_a = E[g_a g_a^T], G_b = E[g_b g_b^T] with
g = -dL/dh, the Canonical Representation Hypothesis says that a balance of SGD noise and weight
decay aligns H_a with W^T W with G_a, and H_b with W W^T with G_b. Each of the six pairs is
measured by the matrix cosine cos(A, B) = Tr(A B) / (|A|_F |B|_F): 1 for proportional matrices.

The expectations run over the rows of a probe batch (and its tokens: every position of a
sequence is a sample); gradients are those of `loss_fn` on that batch, in eval mode. A layer
whose input does not depend on the parameters (the first layer reads the data) has no G_a: its
two cosines with G_a are NaN (so are those of a layer the loss does not reach).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from goldstone.core.observable import Batch, Observable, Probe, batch_loss, evaluating_with_grad
from goldstone.core.result import Result, dims, meta

PAIRS = ("H_in~WtW", "WtW~G_in", "H_in~G_in", "H_out~WWt", "WWt~G_out", "H_out~G_out")
"""The six alignments, in the order of the result's `pair` axis."""


def matrix_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Tr(A B) / (|A|_F |B|_F) for symmetric A, B (batched over leading axes)."""
    return (a * b).sum((-2, -1)) / (a.norm(dim=(-2, -1)) * b.norm(dim=(-2, -1)))


def second_moment(rows: torch.Tensor | None, size: int) -> torch.Tensor:
    """E[x x^T] over every row of `rows` (..., d), in float64; NaN (size x size) where `rows` is None
    (a gradient the loss does not reach)."""
    if rows is None:
        return torch.full((size, size), float("nan"), dtype=torch.float64)
    flat = rows.detach().reshape(-1, rows.shape[-1]).double()
    return flat.T @ flat / len(flat)


@dataclasses.dataclass
class RepresentationAlignmentResult(Result):
    observable = "representation_alignment"
    alignment: torch.Tensor = dims("layer", "pair")
    names: list[str] = meta()

    def axis_labels(self) -> dict[str, list[str]]:
        return {"layer": self.names, "pair": list(PAIRS)}


class RepresentationAlignment(Observable):
    """The six CRH cosines (see the module docstring) of every `nn.Linear` of the model (or those whose
    names contain `layers`), on `batch` with ``loss_fn(outputs, targets)``."""

    name = "representation_alignment"
    summary = "CRH: cosines between each linear layer's activation, weight and gradient covariances"
    needs_forward = False

    def __init__(self, batch: Batch, loss_fn: Callable[[Any, Any], torch.Tensor], layers: str | None = None):
        self.batch, self.loss_fn, self.layers = batch, loss_fn, layers
        self.add_state("_results", [], "cat")

    def update(self, probe: Probe) -> None:
        model = probe.model
        linears = {name: m for name, m in model.named_modules()
                   if isinstance(m, nn.Linear) and (self.layers is None or self.layers in name)}
        if not linears:
            where = f" whose name contains {self.layers!r}" if self.layers else ""
            raise ValueError(f"RepresentationAlignment: the model has no nn.Linear{where}")
        seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        hooks = [m.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, (args[0], out)))
                 for name, m in linears.items()]
        try:
            with evaluating_with_grad(model):
                loss = batch_loss(model, self.batch, self.loss_fn)
                tensors = [t for name in linears for t in seen[name]]
                reached = [t for t in tensors if t.requires_grad]
                found = dict(zip(map(id, reached), torch.autograd.grad(loss, reached, allow_unused=True)))
                grads = [found.get(id(t)) for t in tensors]
        finally:
            for hook in hooks:
                hook.remove()
        rows = []
        for i, (name, layer) in enumerate(linears.items()):
            (h_in, h_out), (g_in, g_out) = seen[name], grads[2 * i: 2 * i + 2]
            w = layer.weight.detach().double()
            wtw, wwt = w.T @ w, w @ w.T
            h_a, g_a = second_moment(h_in, w.shape[1]), second_moment(g_in, w.shape[1]).to(w.device)
            h_b, g_b = second_moment(h_out, w.shape[0]), second_moment(g_out, w.shape[0]).to(w.device)
            rows.append(torch.stack([matrix_cosine(h_a, wtw), matrix_cosine(wtw, g_a), matrix_cosine(h_a, g_a),
                                     matrix_cosine(h_b, wwt), matrix_cosine(wwt, g_b), matrix_cosine(h_b, g_b)]))
        self._results.append(RepresentationAlignmentResult(alignment=torch.stack(rows).cpu(), names=list(linears)))

    def compute(self) -> RepresentationAlignmentResult:
        return self._results[-1]

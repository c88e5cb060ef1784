"""The loss on a probe batch and the top eigenvalue of its Hessian.

lambda_max of H = d^2 L / d theta^2 by power iteration on Hessian-vector products
(Pearlmutter's trick: H v = d/d theta <dL/d theta, v>, one double backward per iteration), the
sharpness that "Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability"
(Cohen et al., 2021) tracks along training. Measured in eval mode (no dropout) on the observable's
own batch, so it needs no forward pass of the monitor's probe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Batch, Observable, Probe, batch_loss, evaluating_with_grad
from goldstone.core.result import Result, dims


def top_hessian_eigenvalue(loss: torch.Tensor, params: list[torch.Tensor], iterations: int = 20,
                           tolerance: float = 1e-3, seed: int = 0) -> float:
    """The eigenvalue of largest magnitude of the Hessian of `loss` (built with a graph) in
    `params`, by power iteration from a seeded random direction; stops when it changes by less
    than `tolerance` relative."""
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    params, grads = zip(*[(p, g) for p, g in zip(params, grads) if g is not None])  # parameters the loss uses
    g = torch.Generator().manual_seed(seed)
    v = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in params]
    value = 0.0
    for i in range(iterations):
        norm = torch.sqrt(sum((x * x).sum() for x in v))
        v = [x / norm for x in v]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=i + 1 < iterations)
        new = float(sum((a * b).sum() for a, b in zip(hv, v)))
        v = [x.detach() for x in hv]
        if i and abs(new - value) <= tolerance * abs(new):
            return new
        value = new
    return value


@dataclasses.dataclass
class LossCurvatureResult(Result):
    observable = "loss_curvature"
    loss: torch.Tensor = dims()
    sharpness: torch.Tensor = dims()


class LossCurvature(Observable):
    """``loss_fn(outputs, targets)`` on `batch` and the top Hessian eigenvalue (`sharpness`) in the
    trainable parameters; `loss_fn` may ignore the targets (e.g. ``lambda out, _: out.loss`` for a
    Hugging Face model given its labels)."""

    name = "loss_curvature"
    summary = "loss on a probe batch and the top eigenvalue of its Hessian (power iteration on Hessian-vector products)"
    needs_forward = False

    def __init__(self, batch: Batch, loss_fn: Callable[[Any, Any], torch.Tensor], iterations: int = 20,
                 tolerance: float = 1e-3, seed: int = 0):
        if iterations < 1:
            raise GoldstoneError(f"LossCurvature: iterations={iterations}; it must be >= 1")
        self.batch, self.loss_fn, self.iterations, self.tolerance, self.seed = batch, loss_fn, iterations, tolerance, seed
        self.add_state("_results", [], "cat")

    def update(self, probe: Probe) -> None:
        model = probe.model
        params = [p for p in model.parameters() if p.requires_grad]
        with evaluating_with_grad(model):
            loss = batch_loss(model, self.batch, self.loss_fn)
            sharpness = top_hessian_eigenvalue(loss, params, self.iterations, self.tolerance, self.seed)
        self._results.append(LossCurvatureResult(loss=torch.tensor(float(loss.detach()), dtype=torch.float64),
                                                 sharpness=torch.tensor(sharpness, dtype=torch.float64)))

    def compute(self) -> LossCurvatureResult:
        return self._results[-1]

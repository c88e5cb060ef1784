"""O(k) and U(1) layers at N = 1024, forward + backward, against the dense N x N weight
assembled from the same parameters at every call (the authors' construction). Goal: O(k) at
least k/2 times faster."""

from __future__ import annotations

import torch

from benchmarks.common import best_time, report
from goldstone.models import OkLinear, U1Linear


def forward_backward(layer: torch.nn.Module, x: torch.Tensor, dense: bool):
    def step():
        out = x @ layer.dense_weight().T if dense else layer(x)
        out.sum().backward()
    return step


def main(width: int = 1024, batch: int = 128, k: int = 4) -> list[dict]:
    torch.manual_seed(0)
    x = torch.randn(batch, width, requires_grad=True)
    results = []
    for name, layer, goal in ((f"O({k}) layer vs dense, N={width}", OkLinear(width, width, k), k / 2),
                              (f"U(1) layer vs dense, N={width}", U1Linear(width, width), None)):
        torch.testing.assert_close(layer(x), x @ layer.dense_weight().T, rtol=1e-4, atol=1e-4)
        structured = best_time(forward_backward(layer, x, dense=False))
        dense = best_time(forward_backward(layer, x, dense=True))
        ratio = dense / structured
        results.append(report(name, ratio, f">= {goal:g}" if goal else "report", ratio >= goal if goal else True,
                              f"dense {dense * 1e3:.1f} ms, layer {structured * 1e3:.1f} ms, batch {batch}"))
    return results


if __name__ == "__main__":
    main()

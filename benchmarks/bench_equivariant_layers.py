"""One equivariant layer, forward + backward, against the authors' layer (the dense weight
assembled at every call, `benchmarks.authors_goldstone`), at the training width N = 64 and at
N = 1024, batch 128, one thread. Goals: O(4) at least 2x (= k/2) faster at N = 1024, and neither
layer slower than the authors' at any width."""

from __future__ import annotations

import torch

from benchmarks.authors_goldstone import AuthorsLinear
from benchmarks.common import compare, interleaved, pin_threads
from goldstone.models import OkLinear, U1Linear


def forward_backward(layer: torch.nn.Module, x: torch.Tensor, repeats: int):
    def run():
        for _ in range(repeats):
            layer(x).sum().backward()
    return run


def main(batch: int = 128, k: int = 4, rounds: int = 7) -> list[dict]:
    pin_threads(1)
    torch.manual_seed(0)
    results = []
    for width, repeats in ((64, 400), (1024, 20)):  # rounds of about 0.3 s on our side at either width
        x = torch.randn(batch, width, requires_grad=True)
        for group, label, ours in (("ok", f"O({k})", OkLinear(width, width, k)), ("u1", "U(1)", U1Linear(width, width))):
            peer = AuthorsLinear(group, k, width, 1.0)
            timings = interleaved({"goldstone": forward_backward(ours, x, repeats),
                                   "authors": forward_backward(peer, x, repeats)}, rounds=rounds)
            goal = k / 2 if group == "ok" and width == 1024 else 1.0
            results.append(compare(f"{label} layer fwd+bwd, N={width}: authors / ours", timings["goldstone"],
                                   timings["authors"], goal, f"interleaved rounds of {repeats} calls, batch {batch}"))
    return results


if __name__ == "__main__":
    main()

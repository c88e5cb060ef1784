"""Forward + backward over T = 200 steps, batch 128, hidden width 64 (real units), one thread: the
equivariant U(1) RNN and GRU cells against `torch.nn.GRU` of the same width (PyTorch's fused
kernel, what a peer's baseline runs). Goal: each at most 2x `nn.GRU`'s time (ratio >= 0.5)."""

from __future__ import annotations

import torch

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.models.recurrent import EquivariantRNN

STEPS, BATCH, WIDTH, INPUTS = 200, 128, 64, 9


def forward_backward(model: torch.nn.Module, x: torch.Tensor):
    def run() -> None:
        model.zero_grad()
        model(x)[0].sum().backward()
    return run


def main(rounds: int = 5) -> list[dict]:
    pin_threads(1)
    torch.manual_seed(0)
    x = torch.randn(BATCH, STEPS, INPUTS)
    gru = torch.nn.GRU(INPUTS, WIDTH, batch_first=True)
    results = []
    for cell in ("rnn", "gru"):
        ours = EquivariantRNN(INPUTS, WIDTH, "u1", cell=cell)
        timings = interleaved({"goldstone": forward_backward(ours, x), "nn.GRU": forward_backward(gru, x)},
                              rounds=rounds)
        results.append(compare(f"U(1) {cell.upper()} vs nn.GRU, T={STEPS}: GRU / ours", timings["goldstone"],
                               timings["nn.GRU"], 0.5, f"batch {BATCH}, width {WIDTH}"))
    return results


if __name__ == "__main__":
    main()

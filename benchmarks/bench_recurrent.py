"""Forward + backward over T = 200 steps, batch 128, one thread: the equivariant U(1) RNN and GRU
cells of hidden width 64 (real units) against PyTorch's fused kernel of the same kind (`nn.RNN`,
`nn.GRU`), what a peer's baseline runs, once at the same width and once at the width with the
parameter count nearest ours. Goal: each at most 2x PyTorch's time (ratio >= 0.5)."""

from __future__ import annotations

import torch

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.models.recurrent import TORCH_CELLS, EquivariantRNN, equal_parameter_width, parameter_count

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
    results = []
    for cell in ("rnn", "gru"):
        ours = EquivariantRNN(INPUTS, WIDTH, "u1", cell=cell)
        peer = TORCH_CELLS[f"torch_{cell}"]
        label = f"nn.{peer.__name__}"
        equal = equal_parameter_width(f"torch_{cell}", INPUTS, 0, parameter_count(ours))
        peers = {"equal width": peer(INPUTS, WIDTH, batch_first=True),
                 "equal parameters": peer(INPUTS, equal, batch_first=True)}
        sides = {"goldstone": ours} | peers
        timings = interleaved({name: forward_backward(model, x) for name, model in sides.items()}, rounds=rounds)
        for name, model in peers.items():
            results.append(compare(f"U(1) {cell.upper()} vs {label}, {name}: theirs / ours",
                                   timings["goldstone"], timings[name], 0.5,
                                   f"T = {STEPS}, batch {BATCH}; ours width {WIDTH}, {parameter_count(ours)} parameters; "
                                   f"{label} width {model.hidden_size}, {parameter_count(model)} parameters"))
    return results


if __name__ == "__main__":
    main()

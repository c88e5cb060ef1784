"""U(1)- and O(k)-equivariant recurrent networks: a simple RNN and a gated (GRU-like) cell.

From "Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation"
(Iqbal, Keller, Song, Miyato, Welling), its recurrent part; the authors' code has none, so the cell
equations are our documented choices (`docs/recurrent_goldstone.md`):

- simple: h_t = phi(W h_{t-1} + U x_t), W a U(1)/O(k) map (no bias), phi the radial tanh, U a
  general linear map without bias, so a zero input (the copy task's blank) leaves the recurrence
  exactly equivariant; any other input is a symmetry-breaking field.
- gated: per-block gates from invariants, a_t = |h_{t-1}| (the n block norms):
  u_t = sigmoid(A_u a_t + B_u x_t + b_u), r_t = sigmoid(A_r a_t + B_r x_t + b_r),
  c_t = phi(W (r_t * h_{t-1}) + U x_t), h_t = (1 - u_t) * h_{t-1} + u_t * c_t,
  gates broadcast over each block's k components. Gates are invariant and W equivariant, so the
  map h_{t-1} -> h_t commutes with the group whenever x_t = 0.

Features are k-major (`goldstone.groups`). The input projection U x_t of all steps is one GEMM
before the loop; `forward` runs the whole sequence as one autograd node
(`goldstone.models.fused_sequence`), `step` one update with the plain ops (for `torch.func`).
"""

from __future__ import annotations

import torch
from torch import nn

from goldstone.core.errors import ConfigError
from goldstone.groups import components
from goldstone.models.deep_mlp import make_linear
from goldstone.models.equivariant import apply_row_matrix, radial_tanh, squared_block_norms
from goldstone.models.fused_sequence import gated_radial_sequence, radial_sequence
from goldstone.models.group_config import block_size

CELLS = ("rnn", "gru")


class EquivariantRNN(nn.Module):
    """Batch-first sequence model: (B, T, input_size) -> states (B, T, hidden) and the last state.

    `group` u1 / ok / generic (dense W, same radial tanh: the baseline that breaks the symmetry),
    `cell` rnn / gru, `hidden` the real width N (a multiple of the block size).
    """

    def __init__(self, input_size: int, hidden: int, group: str = "u1", k: int = 2, cell: str = "rnn",
                 sigma_w: float = 1.0):
        super().__init__()
        if cell not in CELLS:
            raise ConfigError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        self.k, self.cell, self.hidden = block_size(group, k), cell, hidden
        if hidden % self.k:
            raise ConfigError(f"hidden={hidden} is not divisible by the block size {self.k}")
        self.recurrent = make_linear(group, hidden, self.k, sigma_w)
        self.input = nn.Linear(input_size, hidden, bias=False)
        if cell == "gru":
            blocks = hidden // self.k
            self.gate_state = nn.Linear(blocks, 2 * blocks)
            self.gate_input = nn.Linear(input_size, 2 * blocks, bias=False)

    def step(self, h: torch.Tensor, drive: torch.Tensor, gate_drive: torch.Tensor | None = None,
             matrix: torch.Tensor | None = None) -> torch.Tensor:
        """One update from state h (B, N), input drive U x_t (B, N) and, for the gated cell, the
        gates' input drive B x_t (B, 2 n). `matrix`: the recurrent layer's `row_matrix()`, built
        once per sequence by `forward` (else here)."""
        matrix = self.recurrent.row_matrix() if matrix is None else matrix
        if self.cell == "rnn":
            return radial_tanh(apply_row_matrix(h, matrix) + drive, self.k)
        hc = components(h, self.k)
        norms = squared_block_norms(hc).sqrt().squeeze(-2)
        update, reset = torch.sigmoid(self.gate_state(norms) + gate_drive).unsqueeze(-2).chunk(2, dim=-1)
        candidate = radial_tanh(apply_row_matrix((reset * hc).flatten(-2), matrix) + drive, self.k)
        return torch.lerp(hc, components(candidate, self.k), update).flatten(-2)

    def blank_step(self, h: torch.Tensor) -> torch.Tensor:
        """One update under the zero (blank) input: the map that commutes with the group."""
        gate = h.new_zeros(h.shape[0], 2 * self.hidden // self.k) if self.cell == "gru" else None
        return self.step(h, torch.zeros_like(h), gate)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        drives = self.input(x)  # all steps in one GEMM
        h = h0 if h0 is not None else x.new_zeros(x.shape[0], self.hidden)
        if not torch._C._are_functorch_transforms_active():
            states = (gated_radial_sequence(drives, self.gate_input(x), h, self.recurrent, self.gate_state, self.k)
                      if self.cell == "gru" else radial_sequence(drives, h, self.recurrent, self.k))
            return states, states[:, -1]
        gate_drives = self.gate_input(x) if self.cell == "gru" else None
        matrix = self.recurrent.row_matrix()
        states = []
        for t in range(x.shape[1]):
            h = self.step(h, drives[:, t], None if gate_drives is None else gate_drives[:, t], matrix)
            states.append(h)
        return torch.stack(states, 1), h


TORCH_CELLS = {"torch_rnn": nn.RNN, "torch_gru": nn.GRU, "torch_lstm": nn.LSTM}
"""PyTorch's recurrent layers (tanh, no symmetry), the baselines; gates per unit: 1, 3, 4."""
_GATES = {"torch_rnn": 1, "torch_gru": 3, "torch_lstm": 4}


class TorchRecurrent(nn.Module):
    """PyTorch's RNN / GRU / LSTM (batch-first) returning (states, last state) like `EquivariantRNN`."""

    def __init__(self, kind: str, input_size: int, hidden: int):
        super().__init__()
        self.rnn = TORCH_CELLS[kind](input_size, hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.rnn(x)
        return states, states[:, -1]


def torch_parameter_count(kind: str, input_size: int, hidden: int, outputs: int) -> int:
    """Parameters of `TorchRecurrent(kind, input_size, hidden)` and a biased linear readout to
    `outputs`: gates x (hidden (input_size + hidden) + 2 hidden) + (hidden + 1) outputs."""
    return _GATES[kind] * hidden * (input_size + hidden + 2) + (hidden + 1) * outputs


def equal_parameter_width(kind: str, input_size: int, outputs: int, target: int) -> int:
    """The hidden width at which PyTorch's `kind` with its readout has the parameter count nearest
    to `target` (the paper's comparisons at equal parameters)."""
    gates = _GATES[kind]
    # count(h) = gates h^2 + (gates (input_size + 2) + outputs) h + outputs: the positive root, then its neighbours
    b = gates * (input_size + 2) + outputs
    root = (-b + (b * b + 4 * gates * max(target - outputs, 0)) ** 0.5) / (2 * gates)
    candidates = {max(1, int(root) + d) for d in (-1, 0, 1, 2)}
    return min(sorted(candidates), key=lambda h: abs(torch_parameter_count(kind, input_size, h, outputs) - target))


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (the number the paper's comparisons quote)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

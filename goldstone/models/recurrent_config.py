"""The config keys of every experiment that trains a recurrent network: our equivariant cell or a
PyTorch baseline, and the baseline's width (the same as ours, or the same parameter count)."""

from __future__ import annotations

import dataclasses

from torch import nn

from goldstone.core.config import param
from goldstone.core.memory import FLOAT32, training_state
from goldstone.models.group_config import GROUPS, GroupConfig
from goldstone.models.recurrent import (CELLS, TORCH_CELLS, EquivariantRNN, TorchRecurrent, equal_parameter_width,
                                        parameter_count)
from goldstone.theory.mean_field import SIGMA_W_CRITICAL

ARCHITECTURES = ("equivariant", *TORCH_CELLS)
EQUIVARIANT = {"architecture": ("equivariant",)}
BASELINE = {"architecture": tuple(TORCH_CELLS)}
BASELINE_WIDTHS = ("equal_width", "equal_parameters")


@dataclasses.dataclass
class RecurrentConfig(GroupConfig):
    architecture: str = param("equivariant", "the recurrent network: our equivariant cell, or PyTorch's RNN / "
                              "GRU / LSTM (tanh, no symmetry)", label="network", choices=ARCHITECTURES)
    group: str = param("u1", "symmetry of the recurrent map", label="symmetry group", choices=GROUPS, when=EQUIVARIANT)
    width: int = param(64, "hidden width N (real units) of our cell", label="hidden width N", ge=2)
    cell: str = param("rnn", "equivariant cell: simple RNN or gated (GRU-like)", label="cell", choices=CELLS,
                      when=EQUIVARIANT)
    sigma_w: float = param(1.0, "recurrent weight scale sigma_W", label="weight scale σ_W", critical=SIGMA_W_CRITICAL,
                           ge=1e-3, le=100, when=EQUIVARIANT)
    baseline_width: str = param("equal_width", "a PyTorch baseline's hidden width: key 'width', or the width that "
                                "gives it the parameter count of our cell with these keys", choices=BASELINE_WIDTHS,
                                when=BASELINE)

    def validate(self) -> None:
        if self.architecture == "equivariant" or self.baseline_width == "equal_parameters":
            super().validate()  # PyTorch's cells take any width of their own

    def hidden_width(self, input_size: int, outputs: int) -> int:
        """The hidden width of the network this config builds (`recurrent_network`)."""
        if self.architecture == "equivariant" or self.baseline_width == "equal_width":
            return self.width
        ours = EquivariantRNN(input_size, self.width, self.group, self.k, self.cell, self.sigma_w)
        target = parameter_count(ours) + (self.width + 1) * outputs
        return equal_parameter_width(self.architecture, input_size, outputs, target)

    def recurrent_network(self, input_size: int, outputs: int) -> nn.Module:
        """(B, T, input_size) -> (states (B, T, width), last state): ours or PyTorch's."""
        width = self.hidden_width(input_size, outputs)
        if self.architecture == "equivariant":
            return EquivariantRNN(input_size, width, self.group, self.k, self.cell, self.sigma_w)
        return TorchRecurrent(self.architecture, input_size, width)

    def sequence_memory(self, length: int, batch: int, held_out: int, inputs: int, keys: str) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`) of training on `batch` sequences of `length` steps and
        evaluating `held_out` of them: at most four gates' N x (N + inputs) weights with Adam's state,
        every step's gates kept for the backward pass, the held-out states (no gradient); `keys` names
        the keys that set `length`, `batch` and `held_out`."""
        gates = 4
        return {"weights and Adam's state (key width)": training_state(gates * self.width * (self.width + inputs)),
                f"every time step's activations (keys width, {keys})":
                2 * (gates * batch + held_out) * length * self.width * FLOAT32}

    def network_name(self, input_size: int, outputs: int) -> str:
        """"U(1) GRU, N = 64", "GRU, N = 41", ..."""
        if self.architecture != "equivariant":
            name = {"torch_rnn": "RNN", "torch_gru": "GRU", "torch_lstm": "LSTM"}[self.architecture]
        else:
            group = {"u1": "U(1)", "ok": f"O({self.block})", "generic": "generic"}[self.group]
            name = f"{group} {'GRU' if self.cell == 'gru' else 'RNN'}"
        return f"{name}, N = {self.hidden_width(input_size, outputs)}"

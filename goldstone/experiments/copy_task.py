"""The variable-delay copy task with U(1)/O(k)-equivariant RNN and GRU cells against PyTorch's RNN,
GRU and LSTM.

"Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation" (recurrent
part): an equivariant recurrence in its broken phase carries the phase of its state across the
delay along a Goldstone (neutral) direction, so it should remember longer than a generic one. The
cells and the task layout are our documented choices (`goldstone.models.recurrent`,
`goldstone.data.copy_task`). Logs the training loss, the share of answer symbols right and of
sequences copied perfectly on a fixed evaluation set, and the parameter count.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.models.group_config import GROUP_LABELS
from goldstone.models.recurrent_config import RecurrentConfig
from goldstone.training.copy_task import CopySchedule, train_copy


@dataclasses.dataclass
class CopyTaskConfig(CopySchedule, RecurrentConfig):
    """The copy task with our cell or a PyTorch baseline."""

    def memory(self) -> dict[str, int]:
        """`sequence_memory` of the training and the evaluation batch."""
        return self.sequence_memory(2 * self.length + self.max_delay + 1, self.batch_size, self.eval_size,
                                    self.alphabet + 1, "length, max_delay, batch_size, eval_size")


class CopyModel(nn.Module):
    """A recurrent network and a linear readout at every step: logits (B, T, alphabet).

    `symmetry`: (group, k) of an equivariant recurrence, whose `blank_step` the delay measures use;
    None for PyTorch's cells."""

    def __init__(self, cfg: CopyTaskConfig):
        super().__init__()
        inputs = cfg.alphabet + 1
        self.recurrent = cfg.recurrent_network(inputs, cfg.alphabet)
        self.readout = nn.Linear(cfg.hidden_width(inputs, cfg.alphabet), cfg.alphabet)
        self.symmetry = (cfg.group, cfg.block) if cfg.architecture == "equivariant" else None

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, T, N) at every step."""
        return self.recurrent(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.states(x))


LABELS = {"final_success": "sequences copied", "final_symbol_accuracy": "answer symbols right",
          "parameters": "parameters", **GROUP_LABELS}


@experiment("copy_task", CopyTaskConfig, "variable-delay copy task: equivariant RNN/GRU cells vs RNN, GRU, LSTM",
            curve=("eval", "success"), labels=LABELS)
def train(ctx: RunContext) -> None:
    cfg: CopyTaskConfig = ctx.config
    train_copy(ctx, cfg, CopyModel(cfg), cfg.network_name(cfg.alphabet + 1, cfg.alphabet))

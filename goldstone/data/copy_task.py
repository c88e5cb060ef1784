"""The variable-delay copy task (Arjovsky et al.'s format, a delay drawn per sequence).

A sequence shows `length` symbols from an alphabet of `alphabet` (tokens 1..alphabet), then T
blanks (token 0), T uniform in [1, max_delay], then the delimiter (token alphabet + 1); the model
must then output the symbols, one per step, in order. All sequences of a batch share the padded
length length + max_delay + 1 + length. Inputs are one-hot over the non-blank tokens, so the blank
is the zero vector (it leaves an equivariant recurrence symmetric); targets are the symbols at
the answer positions and -100 (ignored by cross-entropy) elsewhere.
"""

from __future__ import annotations

import dataclasses

import torch

from goldstone.core.errors import ConfigError

IGNORE = -100


@dataclasses.dataclass
class CopyBatch:
    inputs: torch.Tensor   # (B, T_total, alphabet + 1) one-hot of symbols and delimiter; blank = 0
    targets: torch.Tensor  # (B, T_total) symbol index 0..alphabet-1 at the answer steps, IGNORE elsewhere
    delays: torch.Tensor   # (B,)


def copy_batch(batch_size: int, max_delay: int, alphabet: int = 8, length: int = 10,
               generator: torch.Generator | None = None) -> CopyBatch:
    """One batch of copy-task sequences (see the module docstring)."""
    if alphabet < 2:
        raise ConfigError(f"key 'alphabet'={alphabet} must be at least 2 symbols")
    if length < 1 or max_delay < 1:
        raise ConfigError(f"keys 'length'={length} and 'max_delay'={max_delay} must be at least 1")
    total = 2 * length + max_delay + 1
    symbols = torch.randint(alphabet, (batch_size, length), generator=generator)
    delays = torch.randint(1, max_delay + 1, (batch_size,), generator=generator)
    rows = torch.arange(batch_size).unsqueeze(1)
    steps = torch.arange(length)
    tokens = torch.zeros(batch_size, total, dtype=torch.long)
    tokens[:, :length] = symbols + 1
    delimiter = length + delays
    tokens[torch.arange(batch_size), delimiter] = alphabet + 1
    targets = torch.full((batch_size, total), IGNORE, dtype=torch.long)
    targets[rows, delimiter.unsqueeze(1) + 1 + steps] = symbols
    inputs = torch.nn.functional.one_hot(tokens, alphabet + 2)[..., 1:].float()
    return CopyBatch(inputs, targets, delays)


def copy_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[float, float]:
    """(share of answer symbols right, share of sequences with every symbol right)."""
    answer = targets != IGNORE
    right = (logits.argmax(-1) == targets) | ~answer
    return float(right[answer].double().mean()), float(right.all(-1).double().mean())

"""Previous-token, duplicate-token and induction scores of every attention head.

For a head's attention A (query i -> key j) on token ids t, averaged over the queries where the
pattern is possible ("In-context Learning and Induction Heads", Olsson et al., 2022; the scores
of TransformerLens):

- previous token: A[i, i - 1];
- duplicate token: sum of A[i, j] over earlier positions j < i with t_j = t_i;
- induction: sum of A[i, j + 1] over earlier positions j < i - 1 with t_j = t_i (attend to the token
  that followed the previous occurrence of the current one).

On a sequence of random tokens repeated once (`repeated_tokens`) a head that copies gives an
induction score near one on the second half. Padding (attention mask 0) is neither query nor key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims

PATTERNS = ("previous_token", "duplicate_token", "induction")


def repeated_tokens(vocab_size: int, length: int = 32, batch: int = 8, seed: int = 0, low: int = 1000
                    ) -> dict[str, torch.Tensor]:
    """``input_ids`` of `batch` sequences of `length` random tokens from [low, vocab_size) each
    repeated once (2 * length tokens), and their all-ones ``attention_mask``."""
    low = min(low, vocab_size // 2)
    half = torch.randint(low, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))
    ids = torch.cat([half, half], 1)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def pattern_masks(ids: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per pattern, the (batch, query, key) positions whose attention it sums (see the module docstring)."""
    t = ids.shape[1]
    pair = valid[:, :, None] & valid[:, None, :]
    earlier = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril(-1)
    same = (ids[:, :, None] == ids[:, None, :]) & pair & earlier
    following = torch.zeros_like(same)
    following[:, :, 1:] = same[:, :, :-1] & earlier[None, :, 1:]  # key j + 1 after an earlier copy j, still before i
    previous = torch.zeros_like(same)
    previous[:, 1:, :-1] = torch.eye(t - 1, dtype=torch.bool, device=ids.device)
    return {"previous_token": previous & pair, "duplicate_token": same, "induction": following & pair}


@dataclasses.dataclass
class AttentionPatternsResult(Result):
    observable = "attention_patterns"
    previous_token: torch.Tensor = dims("layer", "head")
    duplicate_token: torch.Tensor = dims("layer", "head")
    induction: torch.Tensor = dims("layer", "head")


class AttentionPatterns(Observable):
    """The three pattern scores of every head of a Hugging Face model that returns its attentions
    (load it with ``attn_implementation="eager"``), on batches of ``input_ids`` (and
    ``attention_mask``)."""

    name = "attention_patterns"
    summary = "previous-token, duplicate-token and induction score of every attention head"

    def __init__(self):
        self.add_state("_sums", torch.zeros(0, dtype=torch.float64), "sum")
        self.add_state("_counts", torch.zeros(len(PATTERNS), dtype=torch.float64), "sum")

    def forward_kwargs(self) -> dict[str, Any]:
        return {"output_attentions": True}

    def update(self, probe: Probe) -> None:
        attentions = getattr(probe.outputs, "attentions", None)
        if not attentions:
            raise GoldstoneError(f"{type(probe.model).__name__} returned no attentions: load it with "
                                 "attn_implementation='eager'")
        ids = probe.inputs["input_ids"]
        valid = probe.inputs.get("attention_mask", torch.ones_like(ids)).bool()
        weights = torch.stack(attentions).double()  # (layer, batch, head, query, key)
        masks = pattern_masks(ids, valid)
        sums = torch.stack([torch.einsum("lbhqk,bqk->lh", weights, masks[p].double()) for p in PATTERNS])
        counts = torch.stack([masks[p].any(-1).sum().double() for p in PATTERNS])
        self._sums = sums.cpu() if self._sums.numel() == 0 else self._sums + sums.cpu()
        self._counts = self._counts + counts.cpu()

    def compute(self) -> AttentionPatternsResult:
        scores = self._sums / self._counts.clamp_min(1)[:, None, None]
        return AttentionPatternsResult(**{p: scores[i] for i, p in enumerate(PATTERNS)})

"""Dynamic masking for masked-LM training (BERT): 15 % of non-special tokens are chosen; of
those 80 % become [MASK], 10 % a random token, 10 % stay. The mask of a step is a function of
(seed, step) alone, so a resumed run masks exactly as an uninterrupted one."""

from __future__ import annotations

import torch


def mask_tokens(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int, seed: int,
                step: int, probability: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (masked inputs, labels with -100 where nothing is predicted)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    draws = torch.rand(3, *input_ids.shape, generator=generator)
    chosen = (draws[0] < probability) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    masked = chosen & (draws[1] < 0.8)
    randomised = chosen & ~masked & (draws[2] < 0.5)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    inputs = torch.where(masked, torch.full_like(input_ids, mask_id), input_ids)
    return torch.where(randomised, random_ids, inputs), labels

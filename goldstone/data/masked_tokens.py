"""Masked-token prediction as a labelled task: what the units of a pre-trained masked LM have learned.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter): after pre-training a
unit recognises a limited set of tokens. Texts are tokenized, 15 % of the non-special tokens masked as in BERT
(`goldstone.data.masking`, fixed by the seed), and each masked position whose original token is one of the
`top` most frequent tokens of the texts becomes one example, labelled by that token's rank; the other positions
carry -100 and are not predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.data.masking import mask_tokens

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def masked_token_batches(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, top: int, max_length: int,
                         batch_size: int, seed: int = 0
                         ) -> tuple[list[tuple[dict[str, torch.Tensor], torch.Tensor]], list[str]]:
    """Batches of ({"input_ids" (masked), "attention_mask"}, targets (B, T): token rank or -100) and the names
    of the `top` tokens, most frequent first."""
    if not texts:
        raise GoldstoneError("the masked-token task has no texts to mask")
    if tokenizer.mask_token_id is None:
        raise GoldstoneError(f"{type(tokenizer).__name__} has no mask token: the masked-token task needs a masked LM's tokenizer")
    encoding = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt",
                         return_special_tokens_mask=True)
    special = encoding["special_tokens_mask"].bool() | (encoding["attention_mask"] == 0)
    ids = encoding["input_ids"]
    counts = torch.bincount(ids[~special], minlength=len(tokenizer))
    if int((counts > 0).sum()) < top:
        raise GoldstoneError(f"key 'tokens'={top}: the texts hold only {int((counts > 0).sum())} distinct tokens")
    frequent = counts.argsort(descending=True, stable=True)[:top]
    rank = torch.full((len(tokenizer),), -100, dtype=torch.long)
    rank[frequent] = torch.arange(top)
    inputs, labels = mask_tokens(ids, special, tokenizer.mask_token_id, len(tokenizer), seed, 0)
    targets = torch.where(labels == -100, -100, rank[labels.clamp(min=0)])
    batches = [({"input_ids": inputs[i:i + batch_size], "attention_mask": encoding["attention_mask"][i:i + batch_size]},
                targets[i:i + batch_size]) for i in range(0, len(ids), batch_size)]
    return batches, tokenizer.convert_ids_to_tokens(frequent.tolist())

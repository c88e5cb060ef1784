"""External entanglement: entanglement profiles of a transformer's attention matrices.

Per layer and head, the softmax attention A (T x T, queries x keys) of fixed chunks of T = 2^m
tokens (text concatenated, so there is no padding: [CLS] + T - 2 tokens + [SEP]) is read as a state
on m query qubits then m key qubits ("Artificial Entanglement in the Fine-Tuning of Large Language
Models", Chen et al. 2026: area law with logarithmic corrections, nearly the same after LoRA and
full fine-tuning). Needs eager attention (`output_attentions`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.observables.entanglement import entanglement_profile


def text_chunks(tokenizer, texts: Sequence[str], length: int = 128, count: int = 8) -> torch.Tensor:
    """(count, length) token ids: the texts' tokens concatenated and cut into pieces of length - 2,
    each framed by the tokenizer's [CLS] and [SEP]."""
    if length < 4 or length & (length - 1):
        raise GoldstoneError(f"attention chunks: length {length} must be a power of two (>= 4), so that every "
                             "cut is a qubit cut and no padding enters")
    body = length - 2
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= body * count:
            break
    if len(ids) < body * count:
        raise GoldstoneError(f"attention chunks: the texts give {len(ids)} tokens, {body * count} are needed for "
                             f"{count} chunks of {length}")
    pieces = torch.tensor(ids[:body * count]).reshape(count, body)
    cls = torch.full((count, 1), tokenizer.cls_token_id)
    sep = torch.full((count, 1), tokenizer.sep_token_id)
    return torch.cat([cls, pieces, sep], 1)


def attention_profiles(model, chunks: torch.Tensor) -> torch.Tensor:
    """(layers, chunks, heads, 2m - 1) profiles of every head's attention matrix on every chunk."""
    device = next(model.parameters()).device
    with torch.no_grad():
        outputs = model(input_ids=chunks.to(device), attention_mask=torch.ones_like(chunks).to(device),
                        output_attentions=True)
    if outputs.attentions is None or outputs.attentions[0] is None:
        raise GoldstoneError("the model returned no attention weights: load it with attn_implementation='eager'")
    return entanglement_profile(torch.stack([a.double().cpu() for a in outputs.attentions]))

"""A definition-level reference for head UAS, to check the batched observable against."""

from __future__ import annotations

import torch


def head_uas_reference(attentions: torch.Tensor, batch, n_relations: int) -> torch.Tensor:
    """Correct-parent counts (L, H, 2, R) of every head, straight from the definition: one sentence,
    layer, head and word at a time (slow; a test oracle for `goldstone.observables.HeadUAS`).
    `attentions` is (L, B, H, T, T); `batch` an `EncodedBatch`."""
    n_layers, _, n_heads = attentions.shape[:3]
    counts = torch.zeros(n_layers, n_heads, 2, n_relations, dtype=torch.float64)
    for b in range(attentions.shape[1]):
        n = int(batch.n_words[b])
        tokens = [[t for t in range(batch.word_index.shape[1]) if int(batch.word_index[b, t]) == w] for w in range(n)]
        for layer in range(n_layers):
            for head in range(n_heads):
                a = attentions[layer, b, head].double()
                words = torch.zeros(n, n, dtype=torch.float64)
                for i in range(n):
                    for j in range(n):
                        words[i, j] = a[tokens[i]][:, tokens[j]].sum(1).mean()
                for direction, matrix in enumerate((words, words.T)):
                    for i in range(n):
                        gold = int(batch.heads[b, i])
                        if gold < 0:
                            continue
                        row = matrix[i].clone()
                        row[i] = float("-inf")
                        if int(row.argmax()) == gold:
                            counts[layer, head, direction, int(batch.relations[b, i])] += 1
    return counts

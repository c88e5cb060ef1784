"""The peer baseline for head UAS: the scoring of Chen et al., "Sudden Drops in the Loss: Syntax
Acquisition, Phase Transitions, and Simplicity Bias in MLMs" (github.com/angie-chen55/
sudden-drops-in-the-loss, `attention_depparse_probe.py` with `extract_attention_pt.py`, after
Clark et al.'s attention-analysis), rewritten here from a description of it:

- the model runs on batches of 16 padded to 128 tokens; each sentence's attention is cut to its
  own length (words + [CLS] + [SEP]) and moved to numpy float32;
- word-level attention per sentence, layer and head in Python: [CLS] and [SEP] count as one-token
  words; the columns of a split word are summed into its first token, its rows averaged, and the
  other tokens' rows and columns deleted;
- per direction, layer, head and sentence: copy, transpose for "parent<-dependent", zero the
  diagonal, drop [CLS]/[SEP], argmax over each row (1-based, 0 = ROOT, never predicted); then a
  loop over the sentence's words counting correct and incorrect per relation and for "all".

Their special case for possessive 's is left out (it moves a handful of "poss" arcs), so the "all"
accuracy of every head can be compared with ours.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

MAX_LENGTH, BATCH = 128, 16


def padded_attention(model, batches, pad_id: int) -> list[np.ndarray]:
    """One (L, H, T, T) float32 array per sentence, T its own token count, from a forward on
    batches padded to `MAX_LENGTH` tokens, as they run the model."""
    sentences = []
    with torch.no_grad():
        for batch in batches:
            width = MAX_LENGTH - batch.input_ids.shape[1]
            ids = F.pad(batch.input_ids, (0, width), value=pad_id)
            mask = F.pad(batch.attention_mask, (0, width))
            attentions = model(input_ids=ids, attention_mask=mask, output_attentions=True).attentions
            for b, length in enumerate(batch.attention_mask.sum(1).tolist()):
                sentences.append(np.stack([a[b, :, :length, :length].cpu().numpy() for a in attentions]))
    return sentences


def token_groups(word_index: torch.Tensor, length: int) -> list[list[int]]:
    """Token positions of each word of one sentence, [CLS] and [SEP] as words of their own."""
    words = [[] for _ in range(int(word_index.max()) + 1)]
    for position, word in enumerate(word_index[:length].tolist()):
        if word >= 0:
            words[word].append(position)
    return [[0], *words, [length - 1]]


def word_level(attention: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """(L, H, T, T) token attention of one sentence -> (L, H, W + 2, W + 2) word attention."""
    dropped = [t for g in groups for t in g[1:]]
    maps = []
    for layer in attention:
        for head in layer:
            a = np.array(head)
            for g in groups:
                a[:, g[0]] = a[:, g].sum(axis=-1)
            a = np.delete(a, dropped, -1)
            for g in groups:
                a[g[0]] = np.mean(a[g], axis=0)
            maps.append(np.delete(a, dropped, 0))
    return np.stack(maps).reshape(*attention.shape[:2], len(groups), len(groups))


def score(word_maps: list[np.ndarray], heads: list[list[int]], relations: list[list[str]]) -> np.ndarray:
    """(2, L, H) accuracy over all words, directions "dependent->parent" and "parent<-dependent"."""
    n_layers, n_heads = word_maps[0].shape[:2]
    accuracy = np.zeros((2, n_layers, n_heads))
    for direction in range(2):
        for layer in range(n_layers):
            for head in range(n_heads):
                correct, wrong = Counter(), Counter()
                for maps, gold, rels in zip(word_maps, heads, relations):
                    a = np.array(maps[layer, head])
                    if direction:
                        a = a.T
                    a[np.diag_indices_from(a)] = 0
                    predicted = np.argmax(a[1:-1, 1:-1], axis=-1) + 1
                    for p, y, r in zip(predicted, gold, rels):
                        hit = p == y
                        correct[r] += hit
                        wrong[r] += not hit
                        correct["all"] += hit
                        wrong["all"] += not hit
                accuracy[direction, layer, head] = correct["all"] / (correct["all"] + wrong["all"])
    return accuracy


def gold_trees(batches, relation_names: list[str]) -> tuple[list[list[int]], list[list[str]]]:
    """1-based gold heads (0 = ROOT) and relation labels of every sentence, in batch order."""
    heads, relations = [], []
    for batch in batches:
        for b in range(len(batch.n_words)):
            n = int(batch.n_words[b])
            heads.append([h + 1 for h in batch.heads[b, :n].tolist()])
            relations.append([relation_names[r] for r in batch.relations[b, :n].tolist()])
    return heads, relations

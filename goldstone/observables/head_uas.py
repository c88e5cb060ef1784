"""Unlabelled attachment score of every attention head against gold dependency trees.

After Clark et al., "What Does BERT Look At?", as used in "Sudden Drops in the Loss: Syntax
Acquisition, Phase Transitions, and Simplicity Bias in MLMs" (Chen et al., ICLR 2024):
token attention A is turned into word attention by summing the columns of a word's subword
tokens and averaging its rows (A_w = M_avg A M^T, two batched GEMMs); special tokens ([CLS], [SEP]) belong to no
word and drop out; the diagonal is excluded. Word i's predicted parent is argmax_j A_w[i, j]
(direction "dependent->parent") or argmax_j A_w[j, i] ("parent<-dependent", i.e. A^T).
Accuracy is counted per relation and over all words; root words (gold head ROOT, never right)
and punctuation are included or not by explicit switches. Also: fixed-offset baselines
(parent = i + k, k in -3..2), the attention mass on the gold parent, and a held-out best head
(chosen on even-numbered sentences, scored on odd ones). Everything is batched over heads,
sentences and words (no Python loop over any of them); subword aggregation takes two GEMMs per
layer, straight from each layer's attention tensor (no stacked copy), and the argmax runs in the
attention's dtype (widening to float64 could not change it); the attention mass and all counts
are float64.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims, meta

DIRECTIONS = ["dependent->parent", "parent<-dependent"]
OFFSETS = [-3, -2, -1, 1, 2]


@dataclasses.dataclass
class HeadUASResult(Result):
    observable = "head_uas"
    accuracy: torch.Tensor = dims("layer", "head", "direction", "relation")
    mass: torch.Tensor = dims("layer", "head", "direction", "relation")
    count: torch.Tensor = dims("relation")
    offset_accuracy: torch.Tensor = dims("offset", "relation")
    best_accuracy: torch.Tensor = dims("relation")
    best_layer: torch.Tensor = dims("relation")
    best_head: torch.Tensor = dims("relation")
    best_direction: torch.Tensor = dims("relation")
    heldout_accuracy: torch.Tensor = dims("relation")
    relations: list = meta()

    def axis_labels(self) -> dict[str, list[str]]:
        return {"relation": [*self.relations, "all"], "direction": DIRECTIONS,
                "offset": [f"{k:+d}" for k in OFFSETS]}


def word_attention(attentions: torch.Tensor, word_index: torch.Tensor, n_words: int,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, T, T) token attention -> (B, H, W, W) word attention A_w = M_avg A M^T: columns summed over a
    word's subwords (M: (B, W, T) one-hot of word_index), rows averaged (M_avg: M with rows divided by the
    word's subword count); tokens with word_index -1 (specials, padding) belong to no word and drop out.
    Two batched GEMMs; the result is written into `out` when given (e.g. one layer of a preallocated stack)."""
    b, h, t, _ = attentions.shape
    words = torch.arange(n_words, device=word_index.device)
    member = (word_index.unsqueeze(1) == words.view(1, -1, 1)).to(attentions.dtype)  # (B, W, T)
    average = member / member.sum(-1, keepdim=True).clamp_min(1)
    columns = torch.bmm(attentions.reshape(b, h * t, t), member.transpose(1, 2)).view(b, h, t, n_words)
    return torch.matmul(average.unsqueeze(1), columns, out=out)


class HeadUAS(Observable):
    """UAS of every head, per relation and direction, on batches carrying gold trees: word i's
    predicted parent is argmax_j A_w[i, j] of the word-level attention A_w = M_avg A M^T (Clark et al.,
    "What Does BERT Look At?"; Chen et al., "Sudden Drops in the Loss"). `relations` names the
    relations scored; root words and punctuation are in or out by the two switches."""

    name = "head_uas"
    summary = "UAS of every attention head against gold dependency trees, per relation, with baselines"

    def __init__(self, relations: list[str], include_root: bool = False, include_punct: bool = True):
        self.relations, self.include_root, self.include_punct = list(relations), include_root, include_punct
        for state in ("_correct", "_total", "_mass", "_parents", "_offsets"):
            self.add_state(state, torch.zeros((), dtype=torch.float64), "sum")

    def forward_kwargs(self) -> dict:
        return {"output_attentions": True}

    def update(self, probe: Probe) -> None:
        attentions = getattr(probe.outputs, "attentions", None)
        if not attentions or attentions[0] is None:
            raise GoldstoneError(f"{type(probe.model).__name__} returned no attention probabilities: load it with "
                                 "attn_implementation='eager' (goldstone.models.adapters.load_eager)")
        batch = probe.targets
        device = attentions[0].device
        gold, rel = batch.heads.to(device), batch.relations.to(device)
        n_words = gold.shape[1]
        positions = torch.arange(n_words, device=device)
        valid = positions < batch.n_words.to(device).unsqueeze(1)  # (B, W)
        punct_ok = torch.ones_like(valid) if self.include_punct else ~batch.is_punct.to(device)
        scored = ((gold >= 0) | ((gold == -1) & self.include_root)) & valid & punct_ok
        has_parent = (gold >= 0) & valid & punct_ok

        word_index = batch.word_index.to(device)
        words = attentions[0].new_empty(len(attentions), *attentions[0].shape[:2], n_words, n_words)  # (L, B, H, W, W)
        for layer, a in enumerate(attentions):
            word_attention(a, word_index, n_words, out=words[layer])
        parent = gold.clamp_min(0).view(1, -1, 1, n_words, 1).expand(*words.shape[:-1], 1)
        mass = torch.stack((words.gather(-1, parent), words.transpose(-1, -2).gather(-1, parent)), 3)
        mass = mass.squeeze(-1).double()
        invalid = ~valid.view(1, -1, 1, 1, n_words)
        excluded = torch.eye(n_words, dtype=torch.bool, device=device) | invalid | invalid.transpose(-1, -2)
        # word attention lies in [0, 1]: minus 2 on the excluded entries puts them below every candidate, in place;
        # the argmax runs in the attention dtype (exact, as float64 would be), the A^T one on a contiguous copy
        words.sub_(2 * excluded.to(words.dtype))
        predicted = torch.stack((words.argmax(-1), words.transpose(-1, -2).contiguous().argmax(-1)), 3)  # (L, B, H, 2, W)
        correct = (predicted == gold.view(1, -1, 1, 1, n_words)).double() * scored.view(1, -1, 1, 1, n_words)

        relation = F.one_hot(rel.clamp_min(0), len(self.relations)).double() * (rel >= 0).unsqueeze(-1)
        split = F.one_hot(batch.sentence_index.to(device) % 2, 2).double()  # (B, 2)
        by_split = torch.einsum("bwr,bs->bwsr", relation, split)  # each contraction below is one GEMM
        self._correct = self._correct + torch.einsum("lbhdw,bwsr->slhdr", correct, by_split).cpu()
        self._total = self._total + torch.einsum("bw,bwsr->sr", scored.double(), by_split).cpu()
        parents = relation * has_parent.unsqueeze(-1)
        self._mass = self._mass + torch.einsum("lbhdw,bwr->lhdr", mass, parents).cpu()
        self._parents = self._parents + parents.sum((0, 1)).cpu()
        offsets = torch.tensor(OFFSETS, device=device).view(-1, 1, 1) + positions
        hit = (gold.unsqueeze(0) == offsets) & (offsets >= 0) & scored.unsqueeze(0)  # (K, B, W)
        self._offsets = self._offsets + torch.einsum("kbw,bwr->kr", hit.double(), relation).cpu()

    @staticmethod
    def _with_all(x: torch.Tensor) -> torch.Tensor:
        """Append the sum over relations as a last 'all' entry."""
        return torch.cat((x, x.sum(-1, keepdim=True)), dim=-1)

    def compute(self) -> HeadUASResult:
        correct, total = self._with_all(self._correct), self._with_all(self._total)  # (2, L, H, D, R+1), (2, R+1)
        accuracy = correct.sum(0) / total.sum(0)
        n_layers, n_heads, n_dirs, n_rel = accuracy.shape
        best = accuracy.nan_to_num(-1).reshape(-1, n_rel).argmax(0)
        split_acc = correct / total.view(2, 1, 1, 1, -1)
        chosen = split_acc[0].nan_to_num(-1).reshape(-1, n_rel).argmax(0)
        return HeadUASResult(
            accuracy=accuracy, mass=self._with_all(self._mass) / self._with_all(self._parents),
            count=total.sum(0), offset_accuracy=self._with_all(self._offsets) / total.sum(0),
            best_accuracy=accuracy.reshape(-1, n_rel).gather(0, best.view(1, -1)).squeeze(0),
            best_layer=best // (n_heads * n_dirs), best_head=best // n_dirs % n_heads, best_direction=best % n_dirs,
            heldout_accuracy=split_acc[1].reshape(-1, n_rel).gather(0, chosen.view(1, -1)).squeeze(0),
            relations=self.relations)

"""Pseudo-log-likelihood of sentences under a masked LM, and minimal-pair accuracy built on it.

PLL(S) = sum_t log P(w_t | S with w_t masked), summed over the non-special tokens t of S, after Salazar et al.,
"Masked Language Model Scoring" (ACL 2020). A minimal pair counts as right when PLL(good) > PLL(bad), the BLiMP
measure of grammatical capability in "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and
Simplicity Bias in MLMs" (Chen et al., ICLR 2024).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe
from goldstone.core.result import Result, dims, meta
from goldstone.data.minimal_pairs import MinimalPair

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@torch.no_grad()
def pseudo_log_likelihood(model: nn.Module, tokenizer: PreTrainedTokenizerBase, sentences: list[list[str]],
                          batch_size: int = 64) -> torch.Tensor:
    """(N,) float64 PLL of each sentence (a list of words), with the model in eval mode.

    Every (sentence, token) copy with that one token masked is a row of one stream, cut into batches of
    `batch_size` rows; each batch is trimmed to the columns some of its rows use. The log-probability of the
    original token at the masked position is added to its sentence with `index_add_`."""
    if tokenizer.mask_token_id is None:
        raise GoldstoneError(f"{type(tokenizer).__name__} has no mask token; PLL needs a masked-LM tokenizer")
    totals = torch.zeros(len(sentences), dtype=torch.float64)
    if not sentences:
        return totals
    encoding = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt",
                         return_special_tokens_mask=True)
    input_ids, attention_mask = encoding["input_ids"], encoding["attention_mask"]
    scored = attention_mask.bool() & ~encoding["special_tokens_mask"].bool()
    sentence, position = scored.nonzero(as_tuple=True)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(sentence), batch_size):
            rows, columns = sentence[start:start + batch_size], position[start:start + batch_size]
            mask = attention_mask[rows]
            kept = mask.any(0)
            columns = kept.cumsum(0)[columns] - 1
            ids = input_ids[rows][:, kept]
            each = torch.arange(len(rows))
            targets = ids[each, columns]
            ids[each, columns] = tokenizer.mask_token_id
            logits = getattr(model(input_ids=ids.to(device), attention_mask=mask[:, kept].to(device)), "logits", None)
            if logits is None:
                raise GoldstoneError(f"{type(model).__name__} returns no logits; PLL needs a masked-LM head "
                                     "(e.g. transformers.BertForMaskedLM)")
            log_probs = logits[each.to(device), columns.to(device)].log_softmax(-1)
            totals.index_add_(0, rows, log_probs.gather(1, targets.view(-1, 1).to(device)).squeeze(1).double().cpu())
    finally:
        model.train(was_training)
    return totals


@dataclasses.dataclass
class MinimalPairResult(Result):
    observable = "minimal_pairs"
    accuracy: torch.Tensor = dims("phenomenon")  # share of pairs with PLL(good) > PLL(bad)
    count: torch.Tensor = dims("phenomenon")     # pairs per phenomenon
    accuracy_all: float | None = None            # share over all pairs
    phenomena: list = meta()

    def axis_labels(self) -> dict[str, list[str]]:
        return {"phenomenon": self.phenomena}


class MinimalPairAccuracy(Observable):
    """Scores a fixed set of minimal pairs with ``probe.model`` (it needs no batch: ``measure(model, [obs])``
    or ``obs.score(model)``). Every update scores all pairs again; compute gives the latest scores.
    Sentences shared between pairs are scored once."""

    name = "minimal_pairs"
    summary = "share of minimal pairs whose grammatical sentence has the higher pseudo-log-likelihood"
    needs_forward = False

    def __init__(self, pairs: Sequence[MinimalPair], tokenizer: PreTrainedTokenizerBase, batch_size: int = 64):
        if not pairs:
            raise GoldstoneError("MinimalPairAccuracy needs at least one minimal pair")
        self.tokenizer, self.batch_size = tokenizer, batch_size
        self.phenomena = sorted({pair.phenomenon for pair in pairs})
        self._phenomenon = torch.tensor([self.phenomena.index(pair.phenomenon) for pair in pairs])
        sentences = {tuple(words): None for pair in pairs for words in (pair.good, pair.bad)}
        index = {words: i for i, words in enumerate(sentences)}
        self._sentences = [list(words) for words in sentences]
        self._good = torch.tensor([index[tuple(pair.good)] for pair in pairs])
        self._bad = torch.tensor([index[tuple(pair.bad)] for pair in pairs])
        self._result: MinimalPairResult | None = None

    def score(self, model: nn.Module) -> MinimalPairResult:
        """Accuracy per phenomenon and overall of `model` on the pairs."""
        pll = pseudo_log_likelihood(model, self.tokenizer, self._sentences, self.batch_size)
        correct = (pll[self._good] > pll[self._bad]).double()
        count = torch.bincount(self._phenomenon, minlength=len(self.phenomena))
        hits = torch.bincount(self._phenomenon, weights=correct, minlength=len(self.phenomena))
        return MinimalPairResult(accuracy=hits / count, count=count, accuracy_all=float(correct.mean()),
                                 phenomena=list(self.phenomena))

    def update(self, probe: Probe) -> None:
        self._result = self.score(probe.model)

    def compute(self) -> MinimalPairResult:
        return self._result

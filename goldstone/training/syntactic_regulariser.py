"""The syntactic-attention regulariser of "Sudden Drops in the Loss: Syntax Acquisition, Phase
Transitions, and Simplicity Bias in MLMs" (Chen, Shwartz-Ziv, Cho, Leavitt, Saphra, ICLR 2024).

    L = L_MLM + lambda * sum_b sum_i sum_{j in D(i)} gamma(i, j)

D(i) are the words in a dependency relation with word i (its gold parent), gamma the word-level
attention between them (columns summed over subwords, rows averaged, as in head UAS). Form
"uniform" (their code's default) sums gamma over layers and heads; "max" takes the maximum over
them. Directions: dependent -> parent (A[i, head(i)]), parent -> dependent (A[head(i), i]), or
both (default). Normalisation: a plain sum over the batch's arcs, as in the paper (no division
by the number of arcs, layers or heads), so lambda's useful size scales with batch and model.
lambda > 0 suppresses syntactic attention (SAS-), lambda < 0 promotes it (SAS+); with
`release_step` lambda applies only to steps before it (transient suppression).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from goldstone.core.errors import ConfigError
from goldstone.observables.head_uas import word_attention

FORMS = ("uniform", "max")
DIRECTIONS = ("both", "dependent->parent", "parent->dependent")


class SyntacticRegulariser:
    def __init__(self, lam: float, form: str = "uniform", directions: str = "both", release_step: int | None = None):
        if form not in FORMS:
            raise ConfigError(f"regulariser form must be one of {', '.join(FORMS)}, got {form!r}")
        if directions not in DIRECTIONS:
            raise ConfigError(f"regulariser directions must be one of {', '.join(DIRECTIONS)}, got {directions!r}")
        self.lam, self.form, self.directions, self.release_step = lam, form, directions, release_step

    def weight(self, step: int) -> float:
        """lambda at `step`: 0 from `release_step` on."""
        return 0.0 if self.release_step is not None and step >= self.release_step else self.lam

    def syntactic_attention(self, attentions: Sequence[torch.Tensor], word_index: torch.Tensor,
                            heads: torch.Tensor) -> torch.Tensor:
        """sum over the batch's arcs of gamma(i, j), differentiable in the attentions."""
        n_words = heads.shape[1]
        words = torch.stack([word_attention(a, word_index, n_words) for a in attentions])  # (L, B, H, W, W)
        has_parent = heads >= 0
        parent = heads.clamp_min(0)
        index = parent.view(1, -1, 1, n_words, 1).expand(*words.shape[:3], n_words, 1)
        to_parent = words.gather(-1, index).squeeze(-1)  # (L, B, H, W): A[i, head(i)]
        from_parent = words.transpose(-1, -2).gather(-1, index).squeeze(-1)  # A[head(i), i]
        gamma = {"both": to_parent + from_parent, "dependent->parent": to_parent,
                 "parent->dependent": from_parent}[self.directions]
        gamma = gamma.sum(dim=(0, 2)) if self.form == "uniform" else gamma.amax(dim=(0, 2))  # (B, W)
        return (gamma * has_parent).sum()

    def __call__(self, attentions: Sequence[torch.Tensor], word_index: torch.Tensor, heads: torch.Tensor,
                 step: int) -> torch.Tensor:
        """lambda(step) * syntactic attention; a zero tensor when lambda(step) = 0."""
        lam = self.weight(step)
        if lam == 0.0:
            return attentions[0].new_zeros(())
        return lam * self.syntactic_attention(attentions, word_index, heads)

"""The syntactic-attention regulariser in a user's own Hugging Face `Trainer` run.

Examples carry ``input_ids`` plus their CoNLL-U alignment ``word_index`` (token -> word, -1 for
special tokens) and ``heads`` (word -> parent word, -1 root, -2 none), e.g. rows of
`goldstone.data.treebank.EncodedBatch`. `SyntacticCollator` pads and masks them (BERT's
80/10/10), and `syntactic_trainer(...)` returns a `Trainer` whose loss is
L_MLM + lambda(step) * syntactic attention. Load the model with eager attention.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from goldstone.core.errors import ConfigError
from goldstone.core.extras import optional_import
from goldstone.data.masking import mask_tokens
from goldstone.training.syntactic_regulariser import SyntacticRegulariser


class SyntacticCollator:
    """Pad examples and mask 15 % of their tokens; masks depend on (seed, call count)."""

    def __init__(self, tokenizer: Any, seed: int = 0):
        self.tokenizer, self.seed, self.calls = tokenizer, seed, 0

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        def pad(key: str, value: int) -> torch.Tensor:
            return pad_sequence([torch.as_tensor(e[key]) for e in examples], batch_first=True, padding_value=value)

        ids = pad("input_ids", self.tokenizer.pad_token_id)
        word_index = pad("word_index", -1)
        special = (word_index < 0)
        inputs, labels = mask_tokens(ids, special, self.tokenizer.mask_token_id, len(self.tokenizer), self.seed, self.calls)
        self.calls += 1
        return {"input_ids": inputs, "attention_mask": pad("attention_mask", 0), "labels": labels,
                "word_index": word_index, "heads": pad("heads", -2)}


def syntactic_trainer(regulariser: SyntacticRegulariser, **trainer_kwargs: Any):
    """A `transformers.Trainer` adding the regulariser to the MLM loss (``remove_unused_columns``
    must be False so that the alignment reaches the loss)."""
    Trainer = optional_import("transformers", "hf", "the Hugging Face Trainer").Trainer

    args = trainer_kwargs.get("args")
    if args is not None and args.remove_unused_columns:
        raise ConfigError("TrainingArguments(remove_unused_columns=False) is needed: the alignment columns "
                          "word_index and heads must reach the loss")

    class SyntacticTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            word_index, heads = inputs.pop("word_index"), inputs.pop("heads")
            outputs = model(**inputs, output_attentions=True)
            penalty = regulariser(outputs.attentions, word_index, heads, self.state.global_step)
            loss = outputs.loss + penalty
            return (loss, outputs) if return_outputs else loss

    return SyntacticTrainer(**trainer_kwargs)

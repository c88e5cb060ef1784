"""A WordPiece tokenizer trained from scratch with `tokenizers` (BERT's normaliser and
pre-tokeniser, [CLS] ... [SEP] template), wrapped as a `transformers` fast tokenizer.

The `tokenizers` trainer is not deterministic (hash-map order decides ties: huggingface/tokenizers
issue 1794), so `cached_wordpiece` trains once per corpus and vocabulary size and reuses that
tokenizer afterwards: runs on the same text then share one vocabulary.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(texts: Iterable[str], vocab_size: int = 4000, min_frequency: int = 2):
    """Train on `texts` and return a `transformers.PreTrainedTokenizerFast`; refused when the texts hold no
    word (the vocabulary would be the special tokens alone)."""
    optional_import("tokenizers", "hf", "training a WordPiece tokenizer")
    PreTrainedTokenizerFast = optional_import("transformers", "hf", "training a WordPiece tokenizer").PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if tokenizer.get_vocab_size() == len(SPECIAL_TOKENS):
        raise GoldstoneError("no words to train a WordPiece vocabulary on: the corpus is empty, or holds only "
                             "blanks and control characters")
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def cache_dir() -> Path:
    """$GOLDSTONE_CACHE, else ~/.cache/goldstone."""
    return Path(os.environ.get("GOLDSTONE_CACHE", Path.home() / ".cache" / "goldstone"))


def cached_wordpiece(texts: list[str], vocab_size: int = 4000):
    """`train_wordpiece` once per (texts, vocab_size); later calls load the first result."""
    PreTrainedTokenizerFast = optional_import("transformers", "hf", "a WordPiece tokenizer").PreTrainedTokenizerFast

    digest = hashlib.sha256("\n".join([str(vocab_size), *texts]).encode()).hexdigest()[:16]
    folder = cache_dir() / "wordpiece" / digest
    if not folder.exists():
        tokenizer = train_wordpiece(texts, vocab_size)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".wordpiece.", dir=folder.parent)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, folder)  # the first writer wins; a concurrent one keeps its result
        except OSError:
            shutil.rmtree(tmp)
    return PreTrainedTokenizerFast.from_pretrained(str(folder))

"""Head UAS of a saved Hugging Face model on a whole CoNLL-U treebank: the engine of ``goldstone uas``.

Sentences are read and checked (`goldstone.data.treebank`), batched by length, run through the
model with eager attention, and scored by the `HeadUAS` observable in one pass.
"""

from __future__ import annotations

from pathlib import Path

from goldstone.core.device import resolve_device
from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import
from goldstone.core.observable import measure
from goldstone.core.progress import library_bars_off, progress
from goldstone.data.treebank import encode_sentences, read_conllu
from goldstone.models.adapters import load_eager
from goldstone.models.pretrained import classifier_source
from goldstone.observables.head_uas import HeadUAS, HeadUASResult


def score_treebank(model_path: str | Path, treebank: str | Path, max_sentences: int | None = None,
                   max_length: int = 128, batch_size: int = 16, include_root: bool = False,
                   include_punct: bool = True, device: str = "cpu", quiet: bool = False) -> HeadUASResult:
    """Head UAS of the Hugging Face model in `model_path` (its fast tokenizer alongside) on a
    CoNLL-U treebank: the engine of ``goldstone uas``."""
    with library_bars_off(quiet):
        return _score(model_path, treebank, max_sentences, max_length, batch_size, include_root, include_punct,
                      device, quiet)


def _score(model_path: str | Path, treebank: str | Path, max_sentences: int | None, max_length: int, batch_size: int,
           include_root: bool, include_punct: bool, device: str, quiet: bool) -> HeadUASResult:
    transformers = optional_import("transformers", "hf", "head UAS of a Hugging Face model")
    torch_device = resolve_device(device)
    model_folder, tokenizer_folder = classifier_source(str(model_path), "--model")
    sentences = read_conllu(treebank, max_sentences)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_folder))
    except (OSError, ValueError) as err:
        raise GoldstoneError(f"{tokenizer_folder}: no tokenizer could be loaded from this folder "
                             f"({str(err).splitlines()[0]})") from err
    model = load_eager(model_folder).to(torch_device)
    batches, relations, _ = encode_sentences(sentences, tokenizer, max_length, batch_size, by_length=True)
    feed = (({"input_ids": b.input_ids.to(torch_device), "attention_mask": b.attention_mask.to(torch_device)}, b)
            for b in batches)
    (result,) = measure(model, [HeadUAS(relations, include_root, include_punct)],
                        progress(feed, f"head UAS: scoring {len(sentences)} sentences", quiet,
                                 total=len(batches), unit="batches"))
    return result

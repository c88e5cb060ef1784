"""Dependency treebanks in CoNLL-U (UD English EWT), read with checks that name the file and line at fault,
and aligned to the subword tokens of a Hugging Face fast tokenizer."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import
from goldstone.data.text_file import read_text

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def treebank_dir() -> Path | None:
    """The UD English EWT folder: $GOLDSTONE_UD_EWT, else ../shared/data/ud-english-ewt beside the repo root."""
    env = os.environ.get("GOLDSTONE_UD_EWT")
    folder = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ud-english-ewt"
    return folder if folder.is_dir() else None


@dataclass
class Sentence:
    """One sentence of syntactic words (multiword-token ranges and empty nodes left out)."""
    words: list[str]
    heads: np.ndarray      # (n,) int64: 1-based index of each word's head, 0 = ROOT
    relations: list[str]   # DEPREL as written, e.g. "nsubj:pass"
    upos: list[str]
    line: int              # 1-based line of the sentence's first token line
    text: str              # the "# text" comment, else the words joined by spaces
    document: str | None   # the latest "# newdoc id", carried forward


def read_conllu(path: str | Path, max_sentences: int | None = None) -> list[Sentence]:
    """The sentences of a CoNLL-U file (the first `max_sentences` if given), each checked to be a tree."""
    path = Path(path)
    conllu = optional_import("conllu", "hf", "reading CoNLL-U treebanks")
    lines = read_text(path).split("\n")
    sentences: list[Sentence] = []
    document: str | None = None
    for start, block in _blocks(lines):
        if max_sentences is not None and len(sentences) >= max_sentences:
            break
        sentences.append(_parse_sentence(conllu, path, start, block, document))
        document = sentences[-1].document
    if not sentences:
        raise GoldstoneError(f"{path}: no sentences in this CoNLL-U file")
    return sentences


SPACE = "\x00"
"""Stands in for a space inside a field while conllu parses a line (NUL bytes are refused before)."""


def _blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Blank-line separated blocks, each with the 1-based line number of its first line."""
    start, block = 0, []
    for number, line in enumerate(lines, 1):
        if line.strip():
            start = start if block else number
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _parse_sentence(conllu: ModuleType, path: Path, start: int, block: list[str], document: str | None) -> Sentence:
    numbers = [start + i for i, line in enumerate(block) if not line.startswith("#")]
    token_lines = [line for line in block if not line.startswith("#")]
    for number, line in zip(numbers, token_lines):
        if (columns := line.count("\t") + 1) != 10:
            raise GoldstoneError(f"{path}:{number}: {'missing' if columns < 10 else 'too many'} columns ({columns} "
                                 "tab-separated, CoNLL-U has 10)")
    try:  # conllu also splits on runs of spaces: hide the spaces inside fields (FORM "a  b") from it
        tokens = conllu.parse("\n".join(line if line.startswith("#") else line.replace(" ", SPACE)
                                        for line in block))[0]
    except conllu.exceptions.ParseException as err:
        raise _locate_parse_error(conllu, path, start, zip(numbers, token_lines), err) from err
    line = numbers[0] if numbers else start
    words, heads, relations, upos, word_lines = [], [], [], [], []
    for number, token in zip(numbers, tokens):
        if not isinstance(token["id"], int):  # a multiword range "3-4" or an empty node "8.1"
            continue
        if token["id"] != len(words) + 1:
            raise GoldstoneError(f"{path}:{number}: word id {token['id']} out of order (expected {len(words) + 1})")
        if token["head"] is None:
            raise GoldstoneError(f"{path}:{number}: head '_' is not an integer")
        if not -2**62 < token["head"] < 2**62:  # far beyond any sentence; would not fit int64
            raise GoldstoneError(f"{path}:{number}: head {token['head']} out of range")
        words.append(token["form"].replace(SPACE, " "))
        heads.append(token["head"])
        relations.append(str(token["deprel"]).replace(SPACE, " "))
        upos.append(token["upos"])
        word_lines.append(number)
    if not words:
        raise GoldstoneError(f"{path}:{line}: sentence without words")
    heads = np.array(heads, dtype=np.int64)
    out_of_range = np.flatnonzero((heads < 0) | (heads > len(words)))
    if out_of_range.size:
        i = out_of_range[0]
        raise GoldstoneError(f"{path}:{word_lines[i]}: head {heads[i]} out of range 0..{len(words)}")
    if not (heads == 0).any():
        raise GoldstoneError(f"{path}:{line}: sentence has no root (no word with head 0)")
    roots = np.flatnonzero(heads == 0)
    if len(roots) > 1:
        raise GoldstoneError(f"{path}:{word_lines[roots[1]]}: a second root (words {roots[0] + 1} and {roots[1] + 1} "
                             "both have head 0)")
    cycle = _find_cycle(heads)
    if cycle:
        through = ", ".join(f"{i} {words[i - 1]!r}" for i in cycle)
        raise GoldstoneError(f"{path}:{line}: the heads of the sentence form a cycle through words {through}")
    if "newdoc id" in tokens.metadata:
        document = tokens.metadata["newdoc id"]
    elif "newdoc" in tokens.metadata:
        document = None
    text = tokens.metadata.get("text") or " ".join(words)
    return Sentence(words, heads, relations, upos, line, text, document)


def _locate_parse_error(conllu: ModuleType, path: Path, start: int, numbered_lines: Iterable[tuple[int, str]],
                        err: Exception) -> GoldstoneError:
    """conllu names no line: parse the token lines one at a time to find the first one it rejects."""
    for number, line in numbered_lines:
        try:
            conllu.parse(line)
        except conllu.exceptions.ParseException as line_err:
            return GoldstoneError(f"{path}:{number}: cannot parse the token line ({line_err})")
    return GoldstoneError(f"{path}:{start}: cannot parse the sentence ({err})")


def _find_cycle(heads: np.ndarray) -> list[int]:
    """The 1-based words on a cycle of head links, or [] when every word reaches ROOT (O(n) in all)."""
    links = [0, *heads.tolist()]
    reaches_root = [True] + [False] * len(heads)
    for word in range(1, len(links)):
        walk: dict[int, None] = {}  # an ordered set of the words on this walk
        while not reaches_root[word] and word not in walk:
            walk[word] = None
            word = links[word]
        if not reaches_root[word]:
            cycle = list(walk)
            return cycle[cycle.index(word):]
        for visited in walk:
            reaches_root[visited] = True
    return []


@dataclass
class EncodedBatch:
    """Sentences as padded subword tokens with their gold trees over words.

    A word is scored when `heads >= -1`; then `relations >= 0`. Padding words, and words whose arc was dropped
    because the dependent or its head fell outside the token window, have heads -2 and relations -1.
    """
    input_ids: torch.LongTensor       # (B, T) padded with tokenizer.pad_token_id
    attention_mask: torch.LongTensor  # (B, T)
    word_index: torch.LongTensor      # (B, T) 0-based word of each token; -1 for special tokens and padding
    heads: torch.LongTensor           # (B, W) 0-based head word; -1 for the root; -2 for padding and dropped arcs
    relations: torch.LongTensor       # (B, W) index into the relation vocabulary; -1 for padding and dropped arcs
    is_punct: torch.BoolTensor        # (B, W) UPOS == PUNCT
    n_words: torch.LongTensor         # (B,) words with at least one token in the window
    sentence_index: torch.LongTensor  # (B,) index of the sentence in the input list

    def rows(self, index: torch.Tensor | slice) -> EncodedBatch:
        """The sentences at `index` (a slice or index tensor), padding unchanged."""
        return EncodedBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def encode_sentences(sentences: list[Sentence], tokenizer: PreTrainedTokenizerBase, max_length: int = 128,
                     batch_size: int = 32, relations: list[str] | None = None, by_length: bool = False
                     ) -> tuple[list[EncodedBatch], list[str], int]:
    """(batches, relation vocabulary, number of dropped arcs).

    Relations are reduced to their base label (the part before ':', so "nsubj:pass" counts as "nsubj"), the
    usual unlabelled-subtype convention of UD parsing scores. The vocabulary is `relations` when given, else the
    sorted base labels of `sentences`. Words whose tokens were all truncated away are dropped, and so is every
    arc into or out of a dropped word. With `by_length`, batches gather sentences of similar length (sorted by
    word count, which cuts the padding that scoring pays for quadratically); every row keeps its
    `sentence_index` in `sentences`.
    """
    if not tokenizer.is_fast:
        raise GoldstoneError(f"{type(tokenizer).__name__} is a slow tokenizer without word ids; "
                             f"load it with use_fast=True (AutoTokenizer.from_pretrained(path, use_fast=True))")
    if relations is None:
        relations = sorted({relation.split(":")[0] for sentence in sentences for relation in sentence.relations})
    relation_ids = {relation: i for i, relation in enumerate(relations)}
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].words)) if by_length \
        else list(range(len(sentences)))
    batches, dropped = [], 0
    for start in range(0, len(sentences), batch_size):
        index = order[start:start + batch_size]
        batch, n_dropped = _encode_batch([sentences[i] for i in index], torch.tensor(index), tokenizer, max_length,
                                         relation_ids)
        batches.append(batch)
        dropped += n_dropped
    return batches, relations, dropped


def _encode_batch(sentences: list[Sentence], index: torch.Tensor, tokenizer: PreTrainedTokenizerBase, max_length: int,
                  relation_ids: dict[str, int]) -> tuple[EncodedBatch, int]:
    encoding = tokenizer([sentence.words for sentence in sentences], is_split_into_words=True, truncation=True,
                         max_length=max_length, padding=True, return_tensors="pt")
    word_index = torch.tensor([[-1 if w is None else w for w in encoding.word_ids(i)] for i in range(len(sentences))])
    lengths = np.array([len(sentence.words) for sentence in sentences])
    shape = (len(sentences), int(lengths.max()))
    # every word of the batch at once: (row, column) of each in the padded (B, W) tables
    rows = np.repeat(np.arange(len(sentences)), lengths)
    columns = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    heads = torch.full(shape, -2)
    relations = torch.full(shape, -1)
    is_punct = torch.zeros(shape, dtype=torch.bool)
    heads[rows, columns] = torch.from_numpy(np.concatenate([sentence.heads for sentence in sentences]) - 1)
    relations[rows, columns] = torch.from_numpy(_relation_ids(sentences, relation_ids))
    is_punct[rows, columns] = torch.from_numpy(np.concatenate([sentence.upos for sentence in sentences]) == "PUNCT")
    # column 0 collects the special tokens and padding (word_index -1), then is cut off
    kept = torch.zeros((shape[0], shape[1] + 1), dtype=torch.bool).scatter_(1, word_index + 1, True)[:, 1:]
    head_kept = (heads == -1) | kept.gather(1, heads.clamp(min=0))
    drop = (heads != -2) & ~(kept & head_kept)
    heads[drop] = -2
    relations[drop] = -1
    batch = EncodedBatch(encoding["input_ids"], encoding["attention_mask"], word_index, heads, relations, is_punct,
                         kept.sum(1), index)
    return batch, int(drop.sum())


def _relation_ids(sentences: list[Sentence], relation_ids: dict[str, int]) -> np.ndarray:
    """The vocabulary index of every word's base relation, the sentences' words concatenated."""
    written, index = np.unique(np.concatenate([sentence.relations for sentence in sentences]), return_inverse=True)
    bases = [relation.split(":")[0] for relation in written]
    unknown = next((base for base in bases if base not in relation_ids), None)
    if unknown is not None:
        line = next(sentence.line for sentence in sentences
                    if any(relation.split(":")[0] == unknown for relation in sentence.relations))
        raise GoldstoneError(f"sentence at line {line}: relation {unknown!r} is not in the relation "
                             f"vocabulary ({', '.join(relation_ids)})")
    return np.array([relation_ids[base] for base in bases], dtype=np.int64)[index]

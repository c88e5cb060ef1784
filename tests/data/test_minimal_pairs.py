import json
import re
from collections import Counter
from pathlib import Path

import pytest

from goldstone.core.errors import GoldstoneError
from goldstone.data.minimal_pairs import MinimalPair, generate_pairs, read_blimp_jsonl, third_person
from goldstone.data.treebank import read_conllu, treebank_dir


def row(id_, form, lemma, xpos, head, deprel):
    return f"{id_}\t{form}\t{lemma}\t_\t{xpos}\t_\t{head}\t{deprel}\t_\t_"


SAMPLE = "\n".join([
    "# text = The dog barks.",                                     # line 1
    row(1, "The", "the", "DT", 2, "det"),
    row(2, "dog", "dog", "NN", 3, "nsubj"),
    row(3, "barks", "bark", "VBZ", 0, "root"),                     # line 4
    row(4, ".", ".", ".", 3, "punct"),
    "",
    "# text = These dogs are happy.",                              # line 7
    row(1, "These", "this", "DT", 2, "det"),                       # line 8
    row(2, "dogs", "dog", "NNS", 4, "nsubj"),
    row(3, "are", "be", "VBP", 4, "cop"),                          # line 10
    row(4, "happy", "happy", "JJ", 0, "root"),
    row(5, ".", ".", ".", 4, "punct"),
    "",
    "# text = The cat and the dog sleep.",                         # coordinated subject: skipped
    row(1, "The", "the", "DT", 2, "det"),
    row(2, "cat", "cat", "NN", 6, "nsubj"),
    row(3, "and", "and", "CC", 5, "cc"),
    row(4, "the", "the", "DT", 5, "det"),
    row(5, "dog", "dog", "NN", 2, "conj"),
    row(6, "sleep", "sleep", "VBP", 0, "root"),
    "",
    "# text = She doesn't like that song.",                        # line 22
    "1\tShe\tshe\t_\tPRP\t_\t4\tnsubj\t_\t_",
    "2-3\tdoesn't\t_\t_\t_\t_\t_\t_\t_\t_",
    row(2, "does", "do", "VBZ", 4, "aux"),                         # line 25
    row(3, "n't", "not", "RB", 4, "advmod"),
    row(4, "like", "like", "VB", 0, "root"),
    row(5, "that", "that", "DT", 6, "det"),                        # line 28
    row(6, "song", "song", "NN", 4, "obj"),
    "",
    "# text = The police are here and I am there; they quiz us.",  # inconsistent, "I", unsafe verb: skipped
    row(1, "The", "the", "DT", 2, "det"),
    row(2, "police", "police", "NN", 4, "nsubj"),
    row(3, "are", "be", "VBP", 4, "cop"),
    row(4, "here", "here", "RB", 0, "root"),
    row(5, "I", "I", "PRP", 7, "nsubj"),
    row(6, "am", "be", "VBP", 7, "cop"),
    row(7, "there", "there", "RB", 4, "conj"),
    row(8, "they", "they", "PRP", 9, "nsubj"),
    row(9, "quiz", "quiz", "VBP", 4, "parataxis"),
    row(10, "us", "we", "PRP", 9, "obj"),
    "",
    "# text = The child carries those boxes.",                     # line 43
    row(1, "The", "the", "DT", 2, "det"),
    row(2, "child", "child", "NN", 3, "nsubj"),
    row(3, "carries", "carry", "VBZ", 0, "root"),                  # line 46
    row(4, "those", "that", "DT", 5, "det"),                       # line 47
    row(5, "boxes", "box", "NNS", 3, "obj"),
    "",
    "# text = Cats were fed.",                                     # line 50
    row(1, "Cats", "cat", "NNS", 3, "nsubj:pass"),
    row(2, "were", "be", "VBD", 3, "aux:pass"),                    # line 52
    row(3, "fed", "feed", "VBN", 0, "root"),
    "",
]) + "\n"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.conllu"
    path.write_text(SAMPLE, encoding="utf-8")
    return path


def test_sample_gives_exactly_the_expected_pairs(sample):
    at = f"{sample}:"
    expected = [
        (["The", "dog", "barks", "."], "bark", "subject_verb_agreement", 4),
        (["These", "dogs", "are", "happy", "."], "is", "subject_verb_agreement", 10),
        (["She", "does", "n't", "like", "that", "song"], "do", "subject_verb_agreement", 25),
        (["The", "child", "carries", "those", "boxes"], "carry", "subject_verb_agreement", 46),
        (["Cats", "were", "fed"], "was", "subject_verb_agreement", 52),
        (["These", "dogs", "are", "happy", "."], "This", "determiner_noun_agreement", 8),
        (["She", "does", "n't", "like", "that", "song"], "those", "determiner_noun_agreement", 28),
        (["The", "child", "carries", "those", "boxes"], "that", "determiner_noun_agreement", 47),
    ]
    pairs = generate_pairs(sample)
    assert [(p.good, p.phenomenon, p.source) for p in pairs] == [(g, ph, at + str(n)) for g, _, ph, n in expected]
    flipped = [[w for w, v in zip(p.bad, p.good) if w != v] for p in pairs]
    assert flipped == [[new] for _, new, _, _ in expected]
    assert pairs[0] == MinimalPair(["The", "dog", "barks", "."], ["The", "dog", "bark", "."],
                                   "subject_verb_agreement", at + "4")


def test_caps_and_sentence_length(sample):
    pairs = generate_pairs(sample, max_pairs_per_phenomenon=1)
    assert [(p.phenomenon, p.source.rsplit(":", 1)[1]) for p in pairs] == [
        ("subject_verb_agreement", "4"), ("determiner_noun_agreement", "8")]
    assert {len(p.good) for p in generate_pairs(sample, max_words=3)} == {3}


@pytest.mark.parametrize("base, third", [("want", "wants"), ("watch", "watches"), ("pass", "passes"),
                                         ("go", "goes"), ("carry", "carries"), ("say", "says"), ("use", "uses"),
                                         ("quiz", None), ("focus", None)])
def test_third_person(base, third):
    assert third_person(base) == third


@pytest.fixture(scope="module")
def ewt_dev() -> Path:
    folder = treebank_dir()
    if folder is None or not (folder / "en_ewt-ud-dev.conllu").exists():
        pytest.skip("UD English EWT not found (set GOLDSTONE_UD_EWT to the folder with en_ewt-ud-dev.conllu)")
    return folder / "en_ewt-ud-dev.conllu"


def test_ewt_dev_pairs(ewt_dev):
    pairs = generate_pairs(ewt_dev)
    counts = Counter(p.phenomenon for p in pairs)
    assert counts["subject_verb_agreement"] >= 100 and counts["determiner_noun_agreement"] >= 20
    sentences = {tuple(s.words) for s in read_conllu(ewt_dev)}
    lines = ewt_dev.read_text(encoding="utf-8").split("\n")
    for pair in pairs:
        assert tuple(pair.good) in sentences and len(pair.good) <= 40
        assert len(pair.bad) == len(pair.good)
        (edited,) = [i for i, (g, b) in enumerate(zip(pair.good, pair.bad)) if g != b]
        path, line = pair.source.rsplit(":", 1)
        assert path == str(ewt_dev) and lines[int(line) - 1].split("\t")[1] == pair.good[edited]
    assert generate_pairs(ewt_dev, max_pairs_per_phenomenon=5) == (
        [p for p in pairs if p.phenomenon == "subject_verb_agreement"][:5]
        + [p for p in pairs if p.phenomenon == "determiner_noun_agreement"][:5])


def write_jsonl(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "blimp.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_blimp_jsonl(tmp_path):
    path = write_jsonl(tmp_path, [
        json.dumps({"sentence_good": "The dog barks.", "sentence_bad": "The dog bark.", "field": "morphology",
                    "linguistics_term": "subject_verb_agreement", "UID": "regular_plural_subject_verb_agreement_1"}),
        "",
        json.dumps({"sentence_good": "Are  these cats here?", "sentence_bad": "Is these cats here?",
                    "field": "morphology"}),
        json.dumps({"sentence_good": "Cats ran", "sentence_bad": "Cats runned", "linguistics_term": "irregular"}),
    ])
    pairs = read_blimp_jsonl(path)
    assert pairs == [
        MinimalPair(["The", "dog", "barks", "."], ["The", "dog", "bark", "."],
                    "regular_plural_subject_verb_agreement_1", f"{path}:1"),
        MinimalPair(["Are", "these", "cats", "here", "?"], ["Is", "these", "cats", "here", "?"],
                    "morphology", f"{path}:3"),
        MinimalPair(["Cats", "ran"], ["Cats", "runned"], "irregular", f"{path}:4"),
    ]


GOOD = json.dumps({"sentence_good": "A b.", "sentence_bad": "A c.", "UID": "x"})


@pytest.mark.parametrize("second, message", [
    ("{not json", "not a JSON line"),
    ("[1, 2]", "expected a JSON object, got list"),
    (json.dumps({"sentence_good": "A b.", "UID": "x"}), "missing or empty sentence_bad"),
    (json.dumps({"sentence_good": " ", "sentence_bad": 3, "UID": "x"}),
     "missing or empty sentence_good and sentence_bad"),
    (json.dumps({"sentence_good": "A b.", "sentence_bad": "A c."}), "no phenomenon"),
])
def test_blimp_errors_name_file_and_line(tmp_path, second, message):
    path = write_jsonl(tmp_path, [GOOD, second])
    with pytest.raises(GoldstoneError, match=rf"^{re.escape(str(path))}:2: {message}"):
        read_blimp_jsonl(path)


def test_blimp_empty_or_missing_file(tmp_path):
    with pytest.raises(GoldstoneError, match=rf"^{re.escape(str(tmp_path / 'blimp.jsonl'))}: no minimal pairs"):
        read_blimp_jsonl(write_jsonl(tmp_path, ["", "  "]))
    with pytest.raises(GoldstoneError, match="missing.jsonl: cannot read"):
        read_blimp_jsonl(tmp_path / "missing.jsonl")

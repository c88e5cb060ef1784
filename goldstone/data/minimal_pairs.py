"""Minimal pairs of a grammatical and an ungrammatical sentence, for scoring a masked LM's grammar.

"Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in MLMs" (Chen et al.,
ICLR 2024) measure grammatical capability on BLiMP ("BLiMP: The Benchmark of Linguistic Minimal Pairs for
English", Warstadt et al., 2020). Offline, pairs are generated from a dependency treebank by flipping the number
of one word that must agree with another:

- subject_verb_agreement: the finite present-tense verb (XPOS VBZ/VBP, or "was"/"were") of a clause whose
  `nsubj`/`nsubj:pass` is a singular (NN, NNP; he, she, it) or plural (NNS, NNPS; we, they) noun or pronoun, is
  replaced by its other present form. The verb is the subject's head or one of that head's aux/cop dependents
  ("is" in "the dog is happy"). Irregular forms come from a table (is/are, was/were, has/have, does/do); a regular
  verb's forms are its lemma (VBP) and `third_person(lemma)` (VBZ); other verbs are skipped.
- determiner_noun_agreement: a `det` "this"/"that"/"these"/"those" is replaced by its other number.

Both keep only sentences that already agree (so "the police are" or a coordinated subject is skipped) and edit a
single word. BLiMP's own JSONL files are read with `read_blimp_jsonl`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from goldstone.core.errors import GoldstoneError
from goldstone.data.json_lines import json_objects
from goldstone.data.text_file import read_text
from goldstone.data.treebank import Sentence, read_conllu

PHENOMENA = ("subject_verb_agreement", "determiner_noun_agreement")

SINGULAR, PLURAL = "Sing", "Plur"
NOUN_NUMBER = {"NN": SINGULAR, "NNP": SINGULAR, "NNS": PLURAL, "NNPS": PLURAL}
PRONOUN_NUMBER = {"he": SINGULAR, "she": SINGULAR, "it": SINGULAR, "we": PLURAL, "they": PLURAL}
SUBJECT_RELATIONS = {"nsubj", "nsubj:pass"}
FINITE_RELATIONS = {"aux", "aux:pass", "cop"}
IRREGULAR_VERBS = {"is": "are", "are": "is", "was": "were", "were": "was",
                   "has": "have", "have": "has", "does": "do", "do": "does"}
DEMONSTRATIVES = {"this": "these", "these": "this", "that": "those", "those": "that"}
DEMONSTRATIVE_NUMBER = {"this": SINGULAR, "that": SINGULAR, "these": PLURAL, "those": PLURAL}
VOWELS = set("aeiou")


@dataclass
class MinimalPair:
    """Two word sequences that differ in grammaticality; `source` is "file:line" of the edited word or record."""
    good: list[str]
    bad: list[str]
    phenomenon: str
    source: str


def third_person(base: str) -> str | None:
    """The third-person singular present of a regular lowercase verb (want -> wants, watch -> watches,
    go -> goes, carry -> carries), or None where the rule is unsafe (a vowel and a single s/z: quiz, focus)."""
    if base[-1:] in ("s", "z") and base[-2:-1] in VOWELS:
        return None
    if base.endswith(("s", "x", "z", "ch", "sh")) or (base.endswith("o") and base[-2:-1] not in VOWELS):
        return base + "es"
    if base.endswith("y") and base[-2:-1] not in VOWELS:
        return base[:-1] + "ies"
    return base + "s"


def generate_pairs(path: str | Path, max_pairs_per_phenomenon: int | None = None,
                   max_words: int = 40) -> list[MinimalPair]:
    """Agreement minimal pairs from the CoNLL-U file `path` (rules in the module docstring), skipping sentences of
    more than `max_words` words: grouped by phenomenon in `PHENOMENA` order, each in file order and cut to its
    first `max_pairs_per_phenomenon`. `good` is the sentence's words as `read_conllu` gives them."""
    path = Path(path)
    sentences = read_conllu(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    found: dict[str, list[MinimalPair]] = {phenomenon: [] for phenomenon in PHENOMENA}
    for sentence in sentences:
        if len(sentence.words) > max_words:
            continue
        rows = _word_rows(lines, sentence)
        lemmas, xpos = [row[1][2] for row in rows], [row[1][4] for row in rows]
        edits = {"subject_verb_agreement": _verb_edits(sentence, lemmas, xpos),
                 "determiner_noun_agreement": _determiner_edits(sentence, xpos)}
        for phenomenon, words in edits.items():
            for position, replacement in words:
                bad = list(sentence.words)
                bad[position] = replacement
                found[phenomenon].append(MinimalPair(list(sentence.words), bad, phenomenon,
                                                     f"{path}:{rows[position][0]}"))
    return [pair for phenomenon in PHENOMENA for pair in found[phenomenon][:max_pairs_per_phenomenon]]


def _word_rows(lines: list[str], sentence: Sentence) -> list[tuple[int, list[str]]]:
    """(1-based line, the ten columns) of each syntactic word of `sentence`: its token lines with an integer id,
    from its first token line on (`read_conllu` has already checked them)."""
    rows: list[tuple[int, list[str]]] = []
    number = sentence.line
    while len(rows) < len(sentence.words):
        columns = lines[number - 1].split("\t")
        if columns[0].isdigit():
            rows.append((number, columns))
        number += 1
    return rows


def _dependents(sentence: Sentence, head: int) -> list[int]:
    """0-based positions of the words whose head is the 0-based word `head`."""
    return [int(i) for i in (sentence.heads == head + 1).nonzero()[0]]


def _verb_edits(sentence: Sentence, lemmas: list[str], xpos: list[str]) -> Iterator[tuple[int, str]]:
    """(position, flipped form) of each finite verb that agrees with a singular or plural subject."""
    for subject, relation in enumerate(sentence.relations):
        head = int(sentence.heads[subject]) - 1
        if relation not in SUBJECT_RELATIONS or head < 0:
            continue
        if any(sentence.relations[d] == "conj" for d in _dependents(sentence, subject)):
            continue
        word = sentence.words[subject]
        number = PRONOUN_NUMBER.get(word.lower()) if xpos[subject] == "PRP" else NOUN_NUMBER.get(xpos[subject])
        if number is None:
            continue
        verbs = [head, *(d for d in _dependents(sentence, head) if sentence.relations[d] in FINITE_RELATIONS)]
        finite = [v for v in verbs if _verb_number(sentence.words[v], xpos[v]) is not None]
        if len(finite) != 1 or _verb_number(sentence.words[finite[0]], xpos[finite[0]]) != number:
            continue
        verb = finite[0]
        flipped = _flip_verb(sentence.words[verb], lemmas[verb], xpos[verb])
        if flipped is not None:
            yield verb, flipped


def _verb_number(form: str, xpos: str) -> str | None:
    """The subject number a finite verb form agrees with; None for any other word."""
    if xpos == "VBD":
        return {"was": SINGULAR, "were": PLURAL}.get(form.lower())
    return {"VBZ": SINGULAR, "VBP": PLURAL}.get(xpos)


def _flip_verb(form: str, lemma: str, xpos: str) -> str | None:
    """The other-number present form of a finite verb, or None where no rule applies ("am", "'s", unsafe verbs)."""
    lower, base = form.lower(), lemma.lower()
    if lower in IRREGULAR_VERBS:
        return _match_case(IRREGULAR_VERBS[lower], form)
    if not (form.isalpha() and lemma.isalpha()):
        return None
    if xpos == "VBP" and lower == base:
        flipped = third_person(base)
    elif xpos == "VBZ" and lower == third_person(base):
        flipped = base
    else:
        return None
    return None if flipped is None else _match_case(flipped, form)


def _determiner_edits(sentence: Sentence, xpos: list[str]) -> Iterator[tuple[int, str]]:
    """(position, flipped form) of each demonstrative determiner that agrees with its noun."""
    for det, relation in enumerate(sentence.relations):
        lower = sentence.words[det].lower()
        if relation != "det" or lower not in DEMONSTRATIVES:
            continue
        if NOUN_NUMBER.get(xpos[int(sentence.heads[det]) - 1]) == DEMONSTRATIVE_NUMBER[lower]:
            yield det, _match_case(DEMONSTRATIVES[lower], sentence.words[det])


def _match_case(word: str, like: str) -> str:
    """`word` in the capitalisation of `like` (IS -> ARE, Is -> Are, is -> are)."""
    if len(like) > 1 and like.isupper():
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def read_blimp_jsonl(path: str | Path) -> list[MinimalPair]:
    """The pairs of a BLiMP JSONL file: one JSON object a line with "sentence_good", "sentence_bad" and a
    phenomenon ("UID", else "linguistics_term", else "field"). Words are split at whitespace, with the final
    punctuation of a sentence split off as its own word."""
    path = Path(path)
    pairs = []
    for number, record in json_objects(path, read_text(path)):
        missing = [key for key in ("sentence_good", "sentence_bad")
                   if not isinstance(record.get(key), str) or not record[key].strip()]
        if missing:
            raise GoldstoneError(f"{path}:{number}: missing or empty {' and '.join(missing)}")
        phenomenon = next((record[key] for key in ("UID", "linguistics_term", "field")
                           if isinstance(record.get(key), str) and record[key]), None)
        if phenomenon is None:
            raise GoldstoneError(f"{path}:{number}: no phenomenon (needs UID, linguistics_term or field)")
        pairs.append(MinimalPair(_split_words(record["sentence_good"]), _split_words(record["sentence_bad"]),
                                 phenomenon, f"{path}:{number}"))
    if not pairs:
        raise GoldstoneError(f"{path}: no minimal pairs in this BLiMP file")
    return pairs


def _split_words(text: str) -> list[str]:
    """Whitespace-separated words, with trailing . ! ? of the last word split off ("here." -> "here", ".")."""
    words = text.split()
    stem = words[-1].rstrip(".!?")
    if stem and stem != words[-1]:
        words[-1:] = [stem, words[-1][len(stem):]]
    return words

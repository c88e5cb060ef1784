"""A synthetic agreement language with gold dependency trees, for watching syntax emerge in a masked LM.

For "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in MLMs"
(Chen, Shwartz-Ziv, Cho, Leavitt, Saphra, ICLR 2024) at laptop scale. Every noun lemma has a fixed
agreement class out of C; determiners, main verbs and relative-clause verbs carry the class of their
controller, which can sit several words away, so predicting a masked agreeing word needs its
syntactic controller, not its neighbours. Rules (a small dependency grammar):

    S  -> NP_subj VP                      nsubj: subject noun -> verb (the root)
    NP -> Det Adj^k N [Prep NP] [that VP]  det, amod: -> N; prep: Prep -> N; pobj: inner N -> Prep;
                                          acl:relcl: relative verb -> N; mark: that -> relative verb
    VP -> Vi | Vt NP_obj                  obj: object noun -> verb

Agreement: Det takes its noun's class, the main verb its subject's, a relative verb the class of the
noun it modifies (with probability `agreement`; otherwise a random class, i.e. noise). With
`local_cue` the adjectives agree too, which reveals the class next to the noun (the pilot's grammar
G1, which showed no plateau and no drop). Sentences are `goldstone.data.treebank.Sentence`s and
are written as CoNLL-U, so head UAS, the syntactic regulariser and minimal pairs read them unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import numpy as np

from goldstone.core.atomic import write_text
from goldstone.core.errors import ConfigError
from goldstone.data.minimal_pairs import MinimalPair
from goldstone.data.treebank import Sentence

AGREEMENT_RELATIONS = ("det", "nsubj", "acl:relcl")
"""Arcs whose ends share the agreement class (for nsubj the verb, the head, takes its dependent's class)."""
PHENOMENA = {"det": "determiner_noun_agreement", "nsubj": "subject_verb_agreement",
             "acl:relcl": "relative_verb_agreement"}
DETERMINERS = 3
MAX_WORDS = 256
"""The longest sentence: a draw is abandoned (and redrawn) as soon as it passes this many words, so that any depth
and probabilities end quickly and the recursion stays shallow."""
MAX_VOCABULARY = 100_000


class _TooLong(Exception):
    """A draw that passed MAX_WORDS words (and so is redrawn)."""


@dataclasses.dataclass(frozen=True)
class Grammar:
    """The knobs of the language (defaults: the pilot's grammar G2, in which a drop appeared)."""
    nouns: int = 48
    classes: int = 8
    adjectives: int = 16
    verbs: int = 10
    prepositions: int = 8
    adjective_p: float = 0.6
    max_adjectives: int = 4
    pp_p: float = 0.3
    relative_p: float = 0.25
    depth: int = 3
    agreement: float = 1.0
    local_cue: bool = False
    min_words: int = 8
    max_words: int = 30

    def validate(self) -> None:
        for key in ("nouns", "adjectives", "verbs", "prepositions", "depth"):
            if getattr(self, key) < 1:
                raise ConfigError(f"key '{key}': {getattr(self, key)} cannot generate a sentence (at least 1)")
        if self.classes < 2:
            raise ConfigError(f"key 'classes': {self.classes}; agreement needs at least 2 classes")
        if self.nouns < self.classes:
            raise ConfigError(f"key 'nouns': {self.nouns} nouns cannot fill {self.classes} classes")
        for key in ("adjective_p", "pp_p", "relative_p"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"key '{key}': {getattr(self, key)} is not a probability in [0, 1)")
        if not 0 <= self.agreement <= 1:
            raise ConfigError(f"key 'agreement': {self.agreement} is not a probability")
        if self.max_adjectives < 0:
            raise ConfigError(f"key 'max_adjectives': {self.max_adjectives} is negative")
        if not 3 <= self.min_words <= self.max_words <= MAX_WORDS:
            raise ConfigError(f"keys 'min_words'/'max_words': {self.min_words}..{self.max_words} is not a range of "
                              f"sentence lengths within 3..{MAX_WORDS} (the shortest sentence is 3 words: Det N Vi)")
        if self.vocabulary_size() > MAX_VOCABULARY:
            raise ConfigError(f"keys 'nouns', 'classes', 'adjectives', 'verbs', 'prepositions': a vocabulary of "
                              f"{self.vocabulary_size():,} words, more than {MAX_VOCABULARY:,}")

    def noun_class(self) -> np.ndarray:
        """Each noun lemma's class: a shuffled cycle, so the classes have equal counts (within one)."""
        return np.random.default_rng(0).permutation(np.arange(self.nouns) % self.classes)

    def vocabulary_size(self) -> int:
        """len(vocabulary()), without building it."""
        return (self.nouns + DETERMINERS * self.classes + self.adjectives * (self.classes if self.local_cue else 1)
                + 2 * self.verbs * self.classes + self.prepositions + 1)

    def vocabulary(self) -> list[str]:
        """Every word form, in a fixed order."""
        c = range(self.classes)
        return ([f"noun{i}" for i in range(self.nouns)]
                + [f"det{j}c{k}" for j in range(DETERMINERS) for k in c]
                + [f"adj{i}" + (f"c{k}" if self.local_cue else "") for i in range(self.adjectives)
                   for k in (c if self.local_cue else [0])]
                + [f"v{kind}{i}c{k}" for kind in ("i", "t") for i in range(self.verbs) for k in c]
                + [f"prep{i}" for i in range(self.prepositions)] + ["that"])


class _Builder:
    """One sentence under construction: words, 0-based heads (-1: root), relations, UPOS, classes."""

    def __init__(self, grammar: Grammar, rng: np.random.Generator, classes: np.ndarray):
        self.g, self.rng, self.classes = grammar, rng, classes
        self.words: list[str] = []
        self.heads: list[int] = []
        self.relations: list[str] = []
        self.upos: list[str] = []

    def add(self, word: str, upos: str) -> int:
        self.words.append(word)
        self.heads.append(-1)
        self.relations.append("root")
        self.upos.append(upos)
        if len(self.words) > MAX_WORDS:
            raise _TooLong
        return len(self.words) - 1

    def attach(self, dependent: int, head: int, relation: str) -> None:
        self.heads[dependent], self.relations[dependent] = head, relation

    def agree(self, controller: int) -> int:
        """The class an agreeing word takes: its controller's, or with probability 1 - agreement a random one."""
        if self.rng.random() < self.g.agreement:
            return controller
        return int(self.rng.integers(self.g.classes))

    def noun_phrase(self, depth: int) -> int:
        g, rng = self.g, self.rng
        lemma = int(rng.integers(g.nouns))
        cls = int(self.classes[lemma])
        det = self.add(f"det{int(rng.integers(DETERMINERS))}c{self.agree(cls)}", "DET")
        adjectives = []
        while len(adjectives) < g.max_adjectives and rng.random() < g.adjective_p:
            suffix = f"c{self.agree(cls)}" if g.local_cue else ""
            adjectives.append(self.add(f"adj{int(rng.integers(g.adjectives))}{suffix}", "ADJ"))
        noun = self.add(f"noun{lemma}", "NOUN")
        self.attach(det, noun, "det")
        for adjective in adjectives:
            self.attach(adjective, noun, "amod")
        if depth < g.depth and rng.random() < g.pp_p:
            prep = self.add(f"prep{int(rng.integers(g.prepositions))}", "ADP")
            self.attach(prep, noun, "prep")
            self.attach(self.noun_phrase(depth + 1), prep, "pobj")
        if depth < g.depth and rng.random() < g.relative_p:
            that = self.add("that", "PRON")
            verb = self.verb_phrase(self.agree(cls), depth + 1)
            self.attach(that, verb, "mark")
            self.attach(verb, noun, "acl:relcl")
        return noun

    def verb_phrase(self, cls: int, depth: int) -> int:
        g, rng = self.g, self.rng
        transitive = rng.random() < 0.5
        verb = self.add(f"v{'t' if transitive else 'i'}{int(rng.integers(g.verbs))}c{cls}", "VERB")
        if transitive:
            self.attach(self.noun_phrase(depth), verb, "obj")
        return verb

    def sentence(self) -> None:
        subject = self.noun_phrase(1)
        verb = self.verb_phrase(self.agree(int(self.classes[int(self.words[subject][4:])])), 1)
        self.attach(subject, verb, "nsubj")


def generate(grammar: Grammar, count: int, seed: int = 0) -> list[Sentence]:
    """`count` sentences of `min_words`..`max_words` words (longer or shorter draws are redrawn)."""
    grammar.validate()
    rng = np.random.default_rng(seed)
    classes = grammar.noun_class()
    out: list[Sentence] = []
    misses = 0
    while len(out) < count:
        b = _Builder(grammar, rng, classes)
        with contextlib.suppress(_TooLong):  # left longer than max_words
            b.sentence()
        if not grammar.min_words <= len(b.words) <= grammar.max_words:
            misses += 1
            if misses > 1000 + 100 * len(out):
                raise ConfigError(f"keys 'adjective_p', 'max_adjectives', 'pp_p', 'relative_p', 'depth': sentences "
                                  f"of {grammar.min_words}..{grammar.max_words} words are too rare under these values")
            continue
        out.append(Sentence(b.words, np.array(b.heads) + 1, b.relations, b.upos, 0, " ".join(b.words), None))
    return out


def write_conllu(sentences: list[Sentence], path: str | Path) -> None:
    """Write `sentences` as CoNLL-U (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), atomically."""
    blocks = []
    for i, s in enumerate(sentences):
        lines = [f"# sent_id = {i + 1}", f"# text = {s.text}"]
        lines += [f"{k + 1}\t{w}\t{w}\t{u}\t_\t_\t{int(h)}\t{r}\t_\t_"
                  for k, (w, u, h, r) in enumerate(zip(s.words, s.upos, s.heads, s.relations))]
        blocks.append("\n".join(lines) + "\n")
    write_text(Path(path), "\n".join(blocks) + "\n")


def minimal_pairs(grammar: Grammar, per_phenomenon: int, seed: int = 0) -> list[MinimalPair]:
    """Pairs from the grammar: a sentence whose agreeing words all agree, and the same sentence with
    one of them (a determiner, the main verb or a relative verb) moved to another class."""
    clean = dataclasses.replace(grammar, agreement=1.0)
    rng = np.random.default_rng(seed + 1)
    pairs: list[MinimalPair] = []
    counts = dict.fromkeys(PHENOMENA.values(), 0)
    batch = 0
    while min(counts.values()) < per_phenomenon:
        if batch > 50:
            break  # a grammar without relative clauses has no relative-verb pairs
        for s in generate(clean, 200, seed=10_000 * (seed + 1) + batch):
            for k, relation in enumerate(s.relations):
                target = int(s.heads[k]) - 1 if relation == "nsubj" else k
                phenomenon = PHENOMENA.get(relation)
                if phenomenon is None or counts[phenomenon] >= per_phenomenon:
                    continue
                word = s.words[target]
                cls = int(word.rsplit("c", 1)[1])
                other = (cls + 1 + int(rng.integers(grammar.classes - 1))) % grammar.classes
                bad = list(s.words)
                bad[target] = f"{word.rsplit('c', 1)[0]}c{other}"
                pairs.append(MinimalPair(list(s.words), bad, phenomenon, f"synthetic:{batch}:{k + 1}"))
                counts[phenomenon] += 1
        batch += 1
    return pairs


def word_level_tokenizer(grammar: Grammar):
    """A `transformers` fast tokenizer with one token per word of the grammar (`tokenizers` WordLevel,
    whitespace split, [CLS] ... [SEP])."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from goldstone.data.wordpiece import SPECIAL_TOKENS

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + grammar.vocabulary())}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")

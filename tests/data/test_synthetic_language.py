"""The synthetic agreement language: trees, agreement, CoNLL-U round trip, minimal pairs, bad knobs."""

import dataclasses

import numpy as np
import pytest

from goldstone.core.errors import ConfigError
from goldstone.data.synthetic_language import (AGREEMENT_RELATIONS, Grammar, generate, minimal_pairs,
                                               word_level_tokenizer, write_conllu)
from goldstone.data.treebank import read_conllu


def _class(word: str) -> int:
    return int(word.rsplit("c", 1)[1])


def test_sentences_are_trees_whose_agreement_arcs_share_the_class():
    grammar = Grammar()
    classes = grammar.noun_class()
    sentences = generate(grammar, 300, seed=3)
    arcs = 0
    for s in sentences:
        assert grammar.min_words <= len(s.words) <= grammar.max_words
        assert (s.heads == 0).sum() == 1 and s.upos[int(np.argmax(s.heads == 0))] == "VERB"
        for k, relation in enumerate(s.relations):
            if relation not in AGREEMENT_RELATIONS:
                continue
            head = int(s.heads[k]) - 1
            noun, agreeing = (k, head) if relation == "nsubj" else (head, k)
            assert _class(s.words[agreeing]) == classes[int(s.words[noun][4:])]
            arcs += 1
    assert arcs > 3 * len(sentences)  # every sentence has a determiner and a subject at least
    assert np.bincount(classes).min() == np.bincount(classes).max() == grammar.nouns // grammar.classes


def test_noise_breaks_agreement_at_the_requested_rate_and_seeds_repeat():
    noisy = generate(Grammar(agreement=0.5), 300, seed=0)
    classes = Grammar().noun_class()
    dets = [(w, s.words[int(h) - 1]) for s in noisy for w, h, r in zip(s.words, s.heads, s.relations) if r == "det"]
    wrong = np.mean([_class(d) != classes[int(n[4:])] for d, n in dets])
    assert abs(wrong - 0.5 * 7 / 8) < 0.06  # half are random, of which 7/8 miss
    assert [s.words for s in generate(Grammar(), 20, 5)] == [s.words for s in generate(Grammar(), 20, 5)]


def test_conllu_round_trip_and_one_token_per_word(tmp_path):
    grammar = Grammar()
    sentences = generate(grammar, 50, seed=1)
    write_conllu(sentences, tmp_path / "synthetic.conllu")
    back = read_conllu(tmp_path / "synthetic.conllu")
    assert [(s.words, s.heads.tolist(), s.relations, s.upos) for s in back] == \
        [(s.words, s.heads.tolist(), s.relations, s.upos) for s in sentences]
    tokenizer = word_level_tokenizer(grammar)
    encoded = tokenizer([s.words for s in sentences], is_split_into_words=True)
    assert all(len(ids) == len(s.words) + 2 for ids, s in zip(encoded.input_ids, sentences))
    assert tokenizer.unk_token_id not in {i for ids in encoded.input_ids for i in ids}


def test_minimal_pairs_flip_exactly_one_agreeing_word():
    pairs = minimal_pairs(Grammar(), 10)
    assert {p.phenomenon for p in pairs} == {"determiner_noun_agreement", "subject_verb_agreement",
                                           "relative_verb_agreement"}
    assert len(pairs) == 30
    for p in pairs:
        changed = [i for i, (a, b) in enumerate(zip(p.good, p.bad)) if a != b]
        assert len(changed) == 1
        i = changed[0]
        assert p.good[i].rsplit("c", 1)[0] == p.bad[i].rsplit("c", 1)[0] and _class(p.good[i]) != _class(p.bad[i])


def test_the_local_cue_makes_adjectives_agree():
    s = generate(Grammar(local_cue=True, adjective_p=0.9), 50, seed=0)
    amod = [(w, s_.words[int(h) - 1]) for s_ in s for w, h, r in zip(s_.words, s_.heads, s_.relations) if r == "amod"]
    classes = Grammar().noun_class()
    assert amod and all(_class(a) == classes[int(n[4:])] for a, n in amod)


@pytest.mark.parametrize("knob, key", [(dict(depth=0), "depth"), (dict(nouns=0), "nouns"),
                                       (dict(classes=1), "classes"), (dict(pp_p=1.5), "pp_p"),
                                       (dict(min_words=25, max_words=10), "min_words")])
def test_knobs_that_cannot_generate_name_the_key(knob, key):
    with pytest.raises(ConfigError, match=key):
        generate(dataclasses.replace(Grammar(), **knob), 5)

import itertools
import os

import pytest
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import measure
from goldstone.data.minimal_pairs import MinimalPair
from goldstone.observables.pseudo_likelihood import MinimalPairAccuracy, MinimalPairResult, pseudo_log_likelihood

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

NOUNS = [("dog", "dogs"), ("cat", "cats"), ("bird", "birds")]
VERBS = [("runs", "run"), ("sleeps", "sleep"), ("eats", "eat")]
GRAMMATICAL = [["the", noun[number], verb[number]] for noun, verb in itertools.product(NOUNS, VERBS)
               for number in (0, 1)]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_tokenizer():
    """A WordPiece tokenizer trained on GRAMMATICAL: its words are whole tokens, unseen words split into pieces."""
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator([" ".join(words) for words in GRAMMATICAL],
                                  tokenizers.trainers.WordPieceTrainer(vocab_size=200, special_tokens=SPECIALS,
                                                                             show_progress=False))
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[(t, tokenizer.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def tiny_mlm(tokenizer, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=32,
                                     pad_token_id=tokenizer.pad_token_id)
    return transformers.BertForMaskedLM(config).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


SENTENCES = [["the", "dog", "runs"], ["the", "cats", "sleep", "tonight", "zzz"], ["birds"],
             ["a", "dogsleeps", "eats"], ["the", "dog", "runs"]]


def reference_pll(model, tokenizer, words: list[str]) -> float:
    """Salazar et al.'s PLL one masked token at a time, unpadded."""
    ids = tokenizer(words, is_split_into_words=True, return_tensors="pt")["input_ids"][0]
    total = 0.0
    with torch.no_grad():
        for t in range(1, len(ids) - 1):
            masked = ids.clone()
            masked[t] = tokenizer.mask_token_id
            total += model(input_ids=masked[None]).logits[0, t].log_softmax(-1)[ids[t]].item()
    return total


def test_pll_matches_a_token_by_token_loop(tokenizer):
    assert len(tokenizer(["dogsleeps"], is_split_into_words=True)["input_ids"]) > 3  # a word of several tokens
    model = tiny_mlm(tokenizer)
    pll = pseudo_log_likelihood(model, tokenizer, SENTENCES, batch_size=7)
    assert pll.dtype == torch.float64 and pll.shape == (len(SENTENCES),)
    expected = torch.tensor([reference_pll(model, tokenizer, words) for words in SENTENCES], dtype=torch.float64)
    torch.testing.assert_close(pll, expected, atol=1e-5, rtol=0)
    assert (pll < 0).all() and pll[0] == pll[-1]


def test_pll_does_not_depend_on_batch_size_or_padding(tokenizer):
    model = tiny_mlm(tokenizer).train()
    one = pseudo_log_likelihood(model, tokenizer, SENTENCES, batch_size=1)
    many = pseudo_log_likelihood(model, tokenizer, SENTENCES, batch_size=64)
    alone = torch.cat([pseudo_log_likelihood(model, tokenizer, [words]) for words in SENTENCES])
    torch.testing.assert_close(one, many, atol=1e-6, rtol=0)
    torch.testing.assert_close(alone, many, atol=1e-6, rtol=0)
    assert model.training  # scored in eval mode (no dropout), mode restored
    assert pseudo_log_likelihood(model, tokenizer, []).shape == (0,)


def test_pll_needs_a_masked_lm(tokenizer):
    model = transformers.BertModel(tiny_mlm(tokenizer).config)
    with pytest.raises(GoldstoneError, match="BertModel returns no logits"):
        pseudo_log_likelihood(model, tokenizer, SENTENCES)


def pairs_of(number_flip: bool) -> list[MinimalPair]:
    """Each grammatical sentence against its verb in the other number (or against itself)."""
    flip = {form: other for singular, plural in VERBS for form, other in ((singular, plural), (plural, singular))}
    return [MinimalPair(words, [*words[:2], flip[words[2]]] if number_flip else list(words),
                        "agreement" if number_flip else "identical", "test:0") for words in GRAMMATICAL]


def test_minimal_pair_accuracy_counts_and_ties(tokenizer):
    pairs = pairs_of(True) + pairs_of(False)[:4]
    observable = MinimalPairAccuracy(pairs, tokenizer, batch_size=16)
    model = tiny_mlm(tokenizer)
    result = observable.score(model)
    assert isinstance(result, MinimalPairResult) and result.phenomena == ["agreement", "identical"]
    assert result.count.tolist() == [len(GRAMMATICAL), 4]
    assert 0 <= float(result.accuracy[0]) <= 1 and float(result.accuracy[1]) == 0.0  # a tie is not a win
    assert result.accuracy_all == pytest.approx(float(result.accuracy[0]) * len(GRAMMATICAL) / len(pairs))
    frame = result.to_frame(step=3)
    assert set(frame["phenomenon"].dropna()) == {"agreement", "identical"}

    (measured,) = measure(model, [observable])  # no batch needed: it scores its own pairs
    torch.testing.assert_close(measured.accuracy, result.accuracy)
    observable.reset()
    with pytest.raises(GoldstoneError, match=r"compute\(\) before any update\(\)"):
        observable.compute()
    with pytest.raises(GoldstoneError, match="at least one"):
        MinimalPairAccuracy([], tokenizer)


def test_a_model_trained_on_agreeing_sentences_prefers_them(tokenizer):
    """Train on exactly the PLL rows (every grammatical sentence with one token masked): the agreeing form wins."""
    model = tiny_mlm(tokenizer)
    encoding = tokenizer(GRAMMATICAL, is_split_into_words=True, return_tensors="pt")
    ids = encoding["input_ids"].repeat_interleave(3, 0)
    positions = torch.arange(1, 4).repeat(len(GRAMMATICAL))
    labels = torch.full_like(ids, -100)
    rows = torch.arange(len(ids))
    labels[rows, positions] = ids[rows, positions]
    ids[rows, positions] = tokenizer.mask_token_id
    observable = MinimalPairAccuracy(pairs_of(True), tokenizer)
    before = observable.score(model).accuracy_all
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(200):
        optimizer.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
    assert before < 1.0 and observable.score(model).accuracy_all == 1.0

import os

import pytest
import torch

from goldstone.testing import head_uas_reference
from goldstone.core.observable import Probe
from goldstone.data.treebank import EncodedBatch
from goldstone.observables.head_uas import HeadUAS, word_attention

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Outputs:
    def __init__(self, attentions):
        self.attentions = attentions


def toy_batch() -> EncodedBatch:
    """Two sentences. Tokens: [CLS] w0 w1a w1b w2 [SEP] pad; heads: w1 is root, w0 -> w1, w2 -> w1.
    Second: [CLS] v0 v1 [SEP] pad pad pad; v0 is root, v1 -> v0 (punctuation)."""
    return EncodedBatch(
        input_ids=torch.zeros(2, 7, dtype=torch.long), attention_mask=torch.ones(2, 7, dtype=torch.long),
        word_index=torch.tensor([[-1, 0, 1, 1, 2, -1, -1], [-1, 0, 1, -1, -1, -1, -1]]),
        heads=torch.tensor([[1, -1, 1], [-1, 0, -2]]), relations=torch.tensor([[0, 1, 0], [1, 2, -1]]),
        is_punct=torch.tensor([[False, False, False], [False, True, False]]),
        n_words=torch.tensor([3, 2]), sentence_index=torch.tensor([0, 1]))


def gold_attention(batch: EncodedBatch) -> torch.Tensor:
    """(1 layer, B, 2 heads, T, T): head 0 attends from every token of a word to the first token
    of its gold parent; head 1 attends to the next token."""
    b, t = batch.word_index.shape
    att = torch.zeros(1, b, 2, t, t)
    for s in range(b):
        for tok in range(t):
            w = int(batch.word_index[s, tok])
            parent = int(batch.heads[s, w]) if w >= 0 else -1
            target = int((batch.word_index[s] == parent).nonzero()[0]) if parent >= 0 else 0
            att[0, s, 0, tok, target] = 1.0
            att[0, s, 1, tok, min(tok + 1, t - 1)] = 1.0
    return att


def test_word_attention_sums_columns_and_averages_rows():
    batch = toy_batch()
    att = torch.rand(2, 1, 7, 7, dtype=torch.float64)
    words = word_attention(att, batch.word_index, 3)
    a = att[0, 0]
    assert float(words[0, 0, 1, 1]) == pytest.approx(float(a[2:4, 2:4].sum(1).mean()))
    assert float(words[0, 0, 0, 1]) == pytest.approx(float(a[1, 2:4].sum()))


def test_a_head_attending_to_parents_scores_one():
    batch = toy_batch()
    observable = HeadUAS(["nsubj", "root", "punct"], include_root=False, include_punct=True)
    observable.update(Probe(None, batch, batch, {}, Outputs(tuple(gold_attention(batch)))))
    result = observable.compute()
    all_ = -1
    assert float(result.accuracy[0, 0, 0, all_]) == 1.0          # head 0, dependent->parent
    assert int(result.count[all_]) == 3                          # w0, w2, v1 (roots excluded)
    assert float(result.mass[0, 0, 0, all_]) == pytest.approx(1.0)
    assert float(result.offset_accuracy[3, all_]) == pytest.approx(1 / 3)  # +1: only w0 -> w1
    assert float(result.offset_accuracy[2, all_]) == pytest.approx(2 / 3)  # -1: w2 -> w1, v1 -> v0
    assert (int(result.best_layer[all_]), int(result.best_head[all_]), int(result.best_direction[all_])) == (0, 0, 0)


def test_switches_for_root_and_punctuation():
    batch = toy_batch()
    with_root = HeadUAS(["nsubj", "root", "punct"], include_root=True)
    no_punct = HeadUAS(["nsubj", "root", "punct"], include_punct=False)
    for obs in (with_root, no_punct):
        obs.update(Probe(None, batch, batch, {}, Outputs(tuple(gold_attention(batch)))))
    assert int(with_root.compute().count[-1]) == 5 and float(with_root.compute().accuracy[0, 0, 0, -1]) == 3 / 5
    assert int(no_punct.compute().count[-1]) == 2


def test_batched_counts_equal_the_reference_loop():
    torch.manual_seed(0)
    batch = toy_batch()
    att = torch.softmax(torch.randn(3, 2, 4, 7, 7), -1)
    observable = HeadUAS(["nsubj", "root", "punct"])
    observable.update(Probe(None, batch, batch, {}, Outputs(tuple(att))))
    assert torch.equal(observable._correct.sum(0), head_uas_reference(att, batch, 3))


def test_model_without_attentions_is_refused():
    batch = toy_batch()
    with pytest.raises(Exception, match="attn_implementation='eager'"):
        HeadUAS(["a"]).update(Probe(torch.nn.Identity(), batch, batch, {}, Outputs(())))


def test_minilm_on_ewt_dev_beats_nothing_trivially():
    """MiniLM's best head on 64 EWT dev sentences: far above chance, and the held-out best head
    within 0.1 of the in-sample one. Length-sorted batches give the same scores (each sentence keeps
    its index, so the held-out split is unchanged)."""
    transformers = pytest.importorskip("transformers")
    from goldstone.core.observable import measure
    from goldstone.data.treebank import encode_sentences, read_conllu, treebank_dir
    from goldstone.models.adapters import load_eager
    from goldstone.models.pretrained import minilm_path

    folder = treebank_dir()
    if folder is None:
        pytest.skip("UD English EWT not found beside the repo (../shared/data/ud-english-ewt) or in GOLDSTONE_UD_EWT")
    sentences = read_conllu(folder / "en_ewt-ud-dev.conllu", max_sentences=64)
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_path())
    model = load_eager(minilm_path())

    def score(by_length: bool):
        batches, relations, _ = encode_sentences(sentences, tokenizer, batch_size=16, by_length=by_length)
        (result,) = measure(model, [HeadUAS(relations)],
                            [({"input_ids": b.input_ids, "attention_mask": b.attention_mask}, b) for b in batches])
        return result

    result, ordered = score(False), score(True)
    assert float(result.best_accuracy[-1]) > 0.3
    assert abs(float(result.heldout_accuracy[-1]) - float(result.best_accuracy[-1])) < 0.1
    for field in ("accuracy", "count", "offset_accuracy", "best_accuracy", "heldout_accuracy"):
        assert torch.equal(getattr(result, field).nan_to_num(-1), getattr(ordered, field).nan_to_num(-1)), field
    torch.testing.assert_close(result.mass, ordered.mass, equal_nan=True)

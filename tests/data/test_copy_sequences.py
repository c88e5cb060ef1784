import pytest
import torch

from goldstone.core.errors import ConfigError
from goldstone.data.copy_task import IGNORE, copy_accuracy, copy_batch


def test_layout_of_a_copy_sequence():
    batch = copy_batch(64, max_delay=7, alphabet=5, length=4, generator=torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (64, 4 + 7 + 1 + 4, 6) and batch.targets.shape == (64, 16)
    for b in range(64):
        delay = int(batch.delays[b])
        assert 1 <= delay <= 7
        tokens = batch.inputs[b].argmax(-1) + 1
        tokens[batch.inputs[b].sum(-1) == 0] = 0  # blanks are the zero vector
        symbols = tokens[:4] - 1
        assert (tokens[:4] >= 1).all() and (tokens[:4] <= 5).all()
        assert (tokens[4:4 + delay] == 0).all() and tokens[4 + delay] == 6 and (tokens[5 + delay:] == 0).all()
        answer = batch.targets[b] != IGNORE
        assert answer.nonzero().flatten().tolist() == list(range(5 + delay, 9 + delay))
        assert torch.equal(batch.targets[b][answer], symbols)


def test_accuracy_counts_symbols_and_whole_sequences():
    batch = copy_batch(8, max_delay=3, generator=torch.Generator().manual_seed(1))
    perfect = torch.nn.functional.one_hot(batch.targets.clamp_min(0), 8).float()
    assert copy_accuracy(perfect, batch.targets) == (1.0, 1.0)
    wrong_one = perfect.clone()
    first = (batch.targets[0] != IGNORE).nonzero()[0, 0]
    wrong_one[0, first] = torch.roll(wrong_one[0, first], 1)
    symbols, sequences = copy_accuracy(wrong_one, batch.targets)
    assert symbols == pytest.approx(1 - 1 / 80) and sequences == pytest.approx(7 / 8)


def test_bad_sizes_name_the_key():
    with pytest.raises(ConfigError, match="'alphabet'=1"):
        copy_batch(2, 5, alphabet=1)
    with pytest.raises(ConfigError, match="'max_delay'=0"):
        copy_batch(2, 0)

import pytest
import torch

from goldstone.analysis.crossover import crossover, subset_sizes
from goldstone.observables.unit_performance import UnitGroups, fit_readout, unit_bias, unit_performance
from goldstone.theory.readout_bound import readout_bound

HEADS, HEAD_DIM, K, N = 3, 8, 5, 150


@pytest.fixture(scope="module")
def problem():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(N) % K
    centres = torch.randn(K, HEADS * HEAD_DIM, generator=generator)
    activations = centres[labels] + torch.randn(N, HEADS * HEAD_DIM, generator=generator)
    readout = fit_readout(activations, labels, K, iterations=40)
    return activations, labels, readout


def test_subset_sizes():
    assert subset_sizes(32) == [1, 2, 4, 8, 16, 32]
    assert subset_sizes(12) == [1, 2, 4, 8, 12]
    assert subset_sizes(8) == [1, 2, 4, 8]
    assert subset_sizes(1) == [1]


@pytest.mark.parametrize("silence", ["zero", "mean"])
def test_crossover_against_the_heads_and_the_bound(problem, silence):
    activations, labels, readout = problem
    count = 3
    result = crossover(activations, labels, readout, HEADS, HEAD_DIM, count=count, silence=silence)
    assert result.size.tolist() == [1.0, 2.0, 4.0, 8.0]
    for name in ("accuracy_per_label", "predicted_labels", "bound", "head"):
        assert getattr(result, name).shape == (4, HEADS * count)
    assert result.head.tolist() == [[h for h in range(HEADS) for _ in range(count)]] * 4
    assert (result.predicted_labels <= result.bound).all() and (result.bound <= K).all()
    assert (result.predicted_labels >= 1).all()
    assert ((result.accuracy_per_label >= 0) & (result.accuracy_per_label <= 1)).all()

    heads = UnitGroups.heads(HEADS, HEAD_DIM)
    own = unit_performance(activations, labels, readout, heads, silence)
    predicted = own.confusion.sum(1) > 0
    accuracy = (own.label_accuracy * predicted).sum(-1) / predicted.sum(-1)
    bound = [readout_bound(readout.weight[:, index].double(), b.double())
             for index, b in zip(heads.index, unit_bias(readout, heads, silence))]
    expand = torch.arange(HEADS).repeat_interleave(count)
    torch.testing.assert_close(result.accuracy_per_label[-1], accuracy[expand])
    torch.testing.assert_close(result.predicted_labels[-1], predicted.sum(-1).double()[expand])
    assert result.bound[-1].tolist() == torch.tensor(bound)[expand].tolist()
    assert predicted.sum(-1).min() >= 2  # the heads are informative: a non-trivial check


def test_every_bound_is_the_hull_bound_of_its_subset(problem):
    """The subsets are those of `UnitGroups.head_subsets` drawn in size order from one generator seeded `seed`."""
    activations, labels, readout = problem
    sizes, count = [1, 2, 4], 2
    result = crossover(activations, labels, readout, HEADS, HEAD_DIM, sizes=sizes, count=count, silence="mean", seed=3)
    generator = torch.Generator().manual_seed(3)
    for row, n in enumerate(sizes):
        groups = UnitGroups.head_subsets(HEADS, HEAD_DIM, n, count, generator)
        bias = unit_bias(readout, groups, "mean")
        expected = [readout_bound(readout.weight[:, index].double(), b.double()) for index, b in zip(groups.index, bias)]
        assert result.bound[row].tolist() == expected
        own = unit_performance(activations, labels, readout, groups, "mean")
        assert result.predicted_labels[row].tolist() == (own.confusion.sum(1) > 0).sum(-1).tolist()


def test_explicit_sizes_and_seed(problem):
    activations, labels, readout = problem
    a = crossover(activations, labels, readout, HEADS, HEAD_DIM, sizes=[2, 8], count=2, seed=1)
    b = crossover(activations, labels, readout, HEADS, HEAD_DIM, sizes=[2, 8], count=2, seed=1)
    assert a.size.tolist() == [2.0, 8.0] and a.bound.shape == (2, HEADS * 2)
    for name in ("accuracy_per_label", "predicted_labels", "bound"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), equal_nan=True)

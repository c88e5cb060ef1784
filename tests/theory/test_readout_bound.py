"""Tests for the convex-hull bound on labels a node subset can predict.

Reference: "Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross,
Koresh, Kanter).
"""

import numpy as np
import pytest
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.theory.readout_bound import (
    predicted_labels,
    reachable_labels,
    readout_bound,
)


def _sample_inputs(rng: np.random.Generator, n: int, count: int) -> np.ndarray:
    """Gaussian inputs with scales from 1e-3 to 1e4, so both the bias and the W directions dominate."""
    scales = 10.0 ** rng.uniform(-3, 4, size=(count, 1))
    return rng.standard_normal((count, n)) * scales


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("with_bias", [True, False])
def test_hull_and_lp_agree(seed, n, with_bias):
    rng = np.random.default_rng(100 * seed + n)
    weight = rng.standard_normal((10, n))
    bias = rng.standard_normal(10) if with_bias else None
    hull = reachable_labels(weight, bias, method="hull")
    lp = reachable_labels(weight, bias, method="lp")
    np.testing.assert_array_equal(hull, lp)
    assert reachable_labels(weight, bias).tolist() == lp.tolist()
    assert 1 <= lp.sum() <= 10


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("with_bias", [True, False])
def test_sampling_reaches_exactly_the_reachable_set_small_n(seed, n, with_bias):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((10, n))
    bias = rng.standard_normal(10) if with_bias else None
    reachable = reachable_labels(weight, bias)
    predicted = predicted_labels(weight, bias, _sample_inputs(rng, n, 200_000))
    np.testing.assert_array_equal(predicted, reachable)
    if with_bias:  # some label must hide inside the upper hull, or the test is vacuous
        assert not reachable.all()


@pytest.mark.parametrize("n", [3, 4])
def test_sampling_never_exceeds_reachable_set(n):
    rng = np.random.default_rng(n)
    weight = rng.standard_normal((12, n))
    bias = rng.standard_normal(12)
    reachable = reachable_labels(weight, bias)
    predicted = predicted_labels(weight, bias, _sample_inputs(rng, n, 200_000))
    assert not (predicted & ~reachable).any()
    assert predicted.sum() >= 1


@pytest.mark.parametrize("method", ["auto", "hull", "lp"])
def test_interior_label_is_unreachable_and_never_predicted(method):
    rng = np.random.default_rng(7)
    others = rng.standard_normal((8, 3))
    weight = np.vstack([others, others.mean(axis=0)])
    bias = np.concatenate([rng.uniform(0.5, 1.0, 8), [0.1]])
    reachable = reachable_labels(weight, bias, method=method)
    assert not reachable[-1]
    predicted = predicted_labels(weight, bias, _sample_inputs(rng, 3, 200_000))
    assert not predicted[-1]
    # The same point with a large enough bias lifts above the hull and wins near h = 0.
    bias[-1] = 5.0
    assert reachable_labels(weight, bias, method=method)[-1]
    assert predicted_labels(weight, bias, np.zeros((1, 3)))[-1]


@pytest.mark.parametrize("method", ["auto", "hull", "lp"])
def test_no_bias_one_node_reaches_only_max_and_min(method):
    w = np.array([[0.3], [-1.2], [2.5], [0.0], [1.1], [-0.7]])
    reachable = reachable_labels(w, method=method)
    assert reachable.tolist() == [False, True, True, False, False, False]
    assert readout_bound(w, method=method) == 2
    # A constant bias is the same problem.
    assert reachable_labels(w, np.full(6, 3.0), method=method).tolist() == reachable.tolist()


@pytest.mark.parametrize("n", [1, 2, 5, 16])
@pytest.mark.parametrize("with_bias", [True, False])
def test_few_labels_in_general_position_all_reachable(n, with_bias):
    rng = np.random.default_rng(n)
    for k in sorted({1, 2, n, n + 1}):
        if not with_bias and n == 1 and k == 2:
            weight = np.array([[1.0], [-1.0]])  # two distinct points on a line: both ends win
        else:
            weight = rng.standard_normal((k, n))
        bias = rng.standard_normal(k) if with_bias else None
        assert reachable_labels(weight, bias).all(), (k, n)
        assert readout_bound(weight, bias, method="lp") == k


def test_single_label_is_always_reachable():
    assert reachable_labels(np.zeros((1, 3))).tolist() == [True]
    assert readout_bound(np.zeros((1, 0)), np.zeros(1)) == 1


def test_empty_subset_keeps_only_the_largest_bias():
    weight = np.zeros((4, 0))
    assert reachable_labels(weight, np.array([0.1, 0.9, -2.0, 0.3])).tolist() == [False, True, False, False]
    assert readout_bound(weight, np.array([0.9, 0.9, -2.0, 0.3])) == 0
    assert readout_bound(weight) == 0


@pytest.mark.parametrize("method", ["auto", "hull", "lp"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_duplicated_points_are_unreachable_for_both_copies(method, n):
    rng = np.random.default_rng(n)
    weight = rng.standard_normal((9, n)) * 3
    bias = rng.standard_normal(9)
    single = reachable_labels(weight, bias, method=method)
    top = int(np.argmax(weight[:, 0] + 1e-6 * bias))  # wins for h = (large, 0, ...)
    assert single[top]
    doubled_w = np.vstack([weight, weight[top]])
    doubled_b = np.append(bias, bias[top])
    reachable = reachable_labels(doubled_w, doubled_b, method=method)
    assert not reachable[top] and not reachable[-1]
    np.testing.assert_array_equal(np.delete(reachable, [top, 9]), np.delete(single, top))
    assert not predicted_labels(doubled_w, doubled_b, _sample_inputs(rng, n, 50_000))[[top, 9]].any()
    # Without bias the duplicate ties too.
    no_bias = reachable_labels(doubled_w, method=method)
    assert not no_bias[top] and not no_bias[-1]


@pytest.mark.parametrize("method", ["auto", "hull", "lp"])
def test_identical_weight_rows_only_larger_bias_wins(method):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((8, 2))
    bias = rng.standard_normal(8)
    top = int(np.argmax(weight[:, 0]))
    weight = np.vstack([weight, weight[top]])
    for delta, winner in [(0.5, 8), (-0.5, top)]:
        b = np.append(bias, bias[top] + delta)
        reachable = reachable_labels(weight, b, method=method)
        loser = top if winner == 8 else 8
        assert reachable[winner] and not reachable[loser]


def test_large_subset_uses_lp_and_matches_sampling():
    rng = np.random.default_rng(11)
    weight = rng.standard_normal((40, 16))
    # Pull half the labels towards the centroid so they sink inside the hull.
    weight[20:] = 0.2 * weight[20:] + 0.8 * weight[:20].mean(axis=0)
    bias = 0.1 * rng.standard_normal(40)
    reachable = reachable_labels(weight, bias)
    np.testing.assert_array_equal(reachable, reachable_labels(weight, bias, method="lp"))
    assert 0 < reachable.sum() < 40
    predicted = predicted_labels(weight, bias, _sample_inputs(rng, 16, 100_000))
    assert not (predicted & ~reachable).any()
    assert predicted[:20].sum() >= 10


def test_accepts_torch_tensors():
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((10, 3))
    bias = rng.standard_normal(10)
    tensor_w = torch.tensor(weight, dtype=torch.float32, requires_grad=True)
    tensor_b = torch.tensor(bias, dtype=torch.float32)
    expected = reachable_labels(weight.astype(np.float32), bias.astype(np.float32))
    np.testing.assert_array_equal(reachable_labels(tensor_w, tensor_b), expected)
    assert predicted_labels(tensor_w, tensor_b, torch.zeros(1, 3)).sum() == 1


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(GoldstoneError, match="weight must be a 2-D"):
        reachable_labels(np.ones(5))
    with pytest.raises(GoldstoneError, match="weight must be a 2-D"):
        reachable_labels(np.ones((0, 3)))
    with pytest.raises(GoldstoneError, match=r"bias must have shape \(4,\)"):
        reachable_labels(np.ones((4, 2)), np.ones(3))
    with pytest.raises(GoldstoneError, match="method must be one of"):
        readout_bound(np.ones((4, 2)), method="simplex")
    with pytest.raises(GoldstoneError, match="NaN"):
        reachable_labels(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(GoldstoneError, match=r"inputs must have shape \(N, 2\)"):
        predicted_labels(np.ones((4, 2)), None, np.ones((5, 3)))
    with pytest.raises(GoldstoneError, match="method='hull' needs"):
        reachable_labels(np.random.default_rng(0).standard_normal((3, 4)), method="hull")

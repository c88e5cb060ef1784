import math

import pytest
import torch

from goldstone.analysis.specialisation import specialisation


def test_identical_full_sets():
    result = specialisation(torch.ones(3, 4, dtype=torch.bool))
    assert result.labels_per_unit == 4.0
    assert result.specialisation == 0.0
    assert result.overlap == 1.0
    assert result.coverage_entropy == pytest.approx(1.0)
    assert result.distinct_sets == pytest.approx(1 / 3)


def test_disjoint_singletons_covering_every_label():
    result = specialisation(torch.eye(4))
    assert result.labels_per_unit == 1.0
    assert result.specialisation == pytest.approx(0.75)
    assert result.overlap == 0.0
    assert result.coverage_entropy == pytest.approx(1.0)
    assert result.distinct_sets == 1.0


def test_all_empty():
    result = specialisation(torch.zeros(3, 4, dtype=torch.bool))
    assert result.labels_per_unit == 0.0 and result.specialisation == 1.0
    assert math.isnan(result.overlap) and math.isnan(result.coverage_entropy)
    assert result.distinct_sets == 0.0


def test_a_mixed_case_by_hand():
    """Sets {0, 1}, {1, 2}, {}: Jaccard 1/3, 0, 0 (the empty set with a non-empty one still counts);
    coverage (1, 2, 1)."""
    result = specialisation(torch.tensor([[1, 1, 0], [0, 1, 1], [0, 0, 0]]))
    assert result.labels_per_unit == pytest.approx(4 / 3)
    assert result.specialisation == pytest.approx(1 - 4 / 9)
    assert result.overlap == pytest.approx(1 / 9)
    assert result.coverage_entropy == pytest.approx(1.5 * math.log(2) / math.log(3))
    assert result.distinct_sets == pytest.approx(2 / 3)


def test_uneven_coverage_lowers_the_entropy():
    result = specialisation(torch.tensor([[1, 0], [1, 0], [1, 1]]))
    p = torch.tensor([3 / 4, 1 / 4])
    assert result.coverage_entropy == pytest.approx(float(-(p * p.log()).sum() / math.log(2)))
    assert result.coverage_entropy < 1

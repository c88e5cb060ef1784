"""Deep-linear-network theory against its closed forms (research notes, paramsym section 1.3 and 3)."""

import math

import numpy as np
import pytest

from goldstone.theory.linear_networks import (broken_branch, half_time, jump, mode_strength, plateau_losses,
                                              regularised_singular_value, spinodal)


def test_plateaus_of_the_staircase():
    assert plateau_losses([8, 4, 2, 1]).tolist() == [42.5, 10.5, 2.5, 0.5, 0.0]


def test_depth_two_staircase_is_the_soft_threshold():
    assert [regularised_singular_value(s, 1.5, 2) for s in (8, 4, 2, 1)] == [6.5, 2.5, 0.5, 0.0]


def test_depth_three_jump_and_spinodal_of_the_notes():
    """Scalar f = uvw with beta = 1: the global minimum jumps at (beta/2)^{4/3} = 0.397, the broken
    branch ends at (3 beta/4)(beta/4)^{1/3} = 0.4725."""
    assert jump(1.0, 3) == pytest.approx(0.5 ** (4 / 3), rel=1e-8)
    assert spinodal(1.0, 3) == pytest.approx(0.75 * 0.25 ** (1 / 3), rel=1e-8)
    assert broken_branch(1.0, 0.46, 3) is not None and broken_branch(1.0, 0.48, 3) is None
    assert regularised_singular_value(1.0, 0.39, 3) > 0 and regularised_singular_value(1.0, 0.40, 3) == 0


def test_half_times_against_the_dynamics():
    a0, s = 1e-3, 4.0
    assert half_time(s, a0, 2) == pytest.approx(math.log(s / a0 - 1) / (2 * s))
    for depth in (2, 3, 4):
        t = half_time(s, a0, depth)
        assert mode_strength(np.array([0.0, t]), s, a0, depth)[-1] == pytest.approx(s / 2, rel=1e-3)

"""The closed forms given numbers that are not numbers (NaN, infinities, negatives, fractions where a
dimension or a count goes): a finite result, or a ValueError / TypeError whose message starts with
the name of the argument at fault; never another exception, a LinAlgError or a silent NaN."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from goldstone.theory import entanglement, linear_networks, mean_field, neutral_modes

SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 0.25, 1.0, 2.0, 1e-9, 1e9])
REAL = st.one_of(st.floats(-1e3, 1e3), SPECIAL)
WHOLE = st.one_of(st.integers(-3, 10), st.sampled_from([math.nan, math.inf, -math.inf, 2.5, -1.0, 0.0, 3.0, "3"]))
DIMS = st.lists(WHOLE, max_size=4)
REALS = st.lists(REAL, min_size=1, max_size=4)
DEPTH = st.one_of(st.integers(-1, 6), st.sampled_from([math.nan, math.inf, 2.5, 3.0]))


def settles(function, arguments: dict, infinite: bool = False):
    """function(**arguments) is finite (or +inf where `infinite`: a depth scale, a branch that is
    None past its spinodal), or it raises a ValueError / TypeError starting with an argument's name."""
    try:
        result = function(**arguments)
    except (ValueError, TypeError) as err:
        assert re.match(rf"({'|'.join(map(re.escape, arguments))})\b", str(err)), (function.__name__, arguments, err)
        return
    if result is None:
        assert function is linear_networks.broken_branch
        return
    values = np.asarray(result.numpy() if torch.is_tensor(result) else result, dtype=float)
    assert not np.isnan(values).any() and (np.isfinite(values) | (infinite & (values == np.inf))).all(), \
        (function.__name__, arguments, result)


CASES = [
    (entanglement.page_entropy, {"m": WHOLE, "n": WHOLE}, False),
    (entanglement.page_curve, {"dims": DIMS}, False),
    (entanglement.low_rank_centre, {"rank": WHOLE, "d_out": WHOLE, "d_in": WHOLE}, False),
    (entanglement.low_rank_curve, {"rank": WHOLE, "row_dims": DIMS, "col_dims": DIMS}, False),
    (linear_networks.plateau_losses, {"s": REALS}, False),
    (linear_networks.mode_strength, {"t": REALS, "s": REAL, "a0": REAL, "depth": DEPTH}, False),
    (linear_networks.half_time, {"s": REAL, "a0": REAL, "depth": DEPTH}, False),
    (linear_networks.regularised_singular_value, {"s": REAL, "weight_decay": REAL, "depth": DEPTH}, False),
    (linear_networks.broken_branch, {"s": REAL, "weight_decay": REAL, "depth": DEPTH}, False),
    (linear_networks.spinodal, {"s": REAL, "depth": DEPTH}, False),
    (linear_networks.jump, {"s": REAL, "depth": DEPTH}, False),
    (neutral_modes.block_span, {"h": REALS.map(torch.tensor), "k": WHOLE, "rtol": REAL, "atol": REAL}, False),
    (neutral_modes.neutral_mode_count, {"group": st.just("ok"), "k": WHOLE, "span": WHOLE}, False),
    (mean_field.c_map, {"c": REAL, "sigma_w": REAL, "k": WHOLE}, False),
    (mean_field.fixed_point, {"sigma_w": REAL, "k": WHOLE}, False),
    (mean_field.fixed_point_expansion, {"sigma_w": REAL, "k": WHOLE}, False),
    (mean_field.iterate_c_map, {"c0": REAL, "sigma_w": REAL, "depth": WHOLE, "k": WHOLE}, False),
    (mean_field.c_map_slope, {"sigma_w": REAL, "k": WHOLE}, False),
    (mean_field.depth_scale_c, {"sigma_w": REAL, "k": WHOLE}, True),
    (mean_field.overlap_map, {"rho": REAL, "sigma_w": REAL, "k": WHOLE, "n_nodes": WHOLE}, False),  # n_nodes^3 memory
    (mean_field.overlap_slope, {"sigma_w": REAL, "k": WHOLE}, False),
    (mean_field.depth_scale_overlap, {"sigma_w": REAL, "k": WHOLE}, True),
]


@pytest.mark.parametrize("function,arguments,infinite", CASES, ids=[case[0].__name__ for case in CASES])
@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_a_closed_form_is_finite_or_names_the_argument(function, arguments, infinite, data):
    settles(function, data.draw(st.fixed_dictionaries(arguments)), infinite)


def test_the_linear_network_forms_hold_at_their_edges():
    """A stable logistic far out, a half-time before t = 0 for a0 > s / 2, no broken branch at depth 2
    once lambda >= s, and the spinodal and jump of a mode too small for the old 1e-12 bracket."""
    assert linear_networks.mode_strength(np.array([0.0, 1e3]), 1e3, 1.0, 2) == pytest.approx([1.0, 1e3])
    assert linear_networks.half_time(1.0, 0.75, 2) == pytest.approx(math.log(1 / 3) / 2)
    assert linear_networks.half_time(1.0, 0.75, 3) < 0
    assert linear_networks.broken_branch(1.0, 2.0, 2) is None
    assert linear_networks.regularised_singular_value(1.0, 2.0, 2) == 0.0
    tiny = 1e-10
    assert 0 < linear_networks.jump(tiny, 3) < linear_networks.spinodal(tiny, 3) < tiny ** (4 / 3) * 4
    with pytest.raises(ValueError, match=r"a0 must be < s"):
        linear_networks.half_time(1.0, 1.5, 2)

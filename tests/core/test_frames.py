import pandas as pd
import pytest

from goldstone.core.frames import holds, series

FRAME = pd.DataFrame({"step": [2, 0, 2, 0, 1, 0],
                      "observable": ["c", "c", "c", "c", "c", "test"],
                      "metric": ["value", "value", "value", "value", "other", "value"],
                      "layer": [0, 0, 1, 1, 0, 0],
                      "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})


def test_series_keeps_one_metric_sorted_by_step_in_logged_order_within_a_step():
    rows = series(FRAME, "c", "value")
    assert rows.step.tolist() == [0, 0, 2, 2] and rows.value.tolist() == [2.0, 4.0, 1.0, 3.0]


def test_series_filters_index_columns_and_takes_every_metric_without_one():
    assert series(FRAME, "c", "value", layer=1).value.tolist() == [4.0, 3.0]
    assert series(FRAME, "c", layer=0).value.tolist() == [2.0, 5.0, 1.0]


def test_series_leaves_out_index_columns_only_other_observables_fill():
    frame = pd.concat([FRAME, pd.DataFrame({"step": [0], "observable": ["norms"], "metric": ["norm"],
                                            "parameter": ["w"], "value": [7.0]})], ignore_index=True)
    assert "parameter" not in series(frame, "c", "value").columns
    assert series(frame, "norms").parameter.tolist() == ["w"] and "layer" not in series(frame, "norms").columns
    assert list(series(frame.iloc[:0], "c").columns) == list(frame.columns)  # no rows yet: no rows


@pytest.mark.parametrize("args, index, message", [
    (("C", "value"), {}, "no observable 'C' in the rows of the frame; it has c, test"),
    (("c", "valu"), {}, "no metric 'valu' in the rows of 'c'; it has other, value"),
    (("c", "value"), {"layer": 2}, "no layer 2 in the rows of 'c' 'value'; it has 0, 1"),
    (("c", "value"), {"head": 0}, "the frame has no column 'head' .*it has step, observable, metric, layer, value"),
])
def test_a_name_the_frame_does_not_hold_is_one_error_listing_those_it_does(args, index, message):
    """A typo is an error naming what the frame holds, not an empty result."""
    with pytest.raises(ValueError, match=message):
        series(FRAME, *args, **index)
    assert holds(FRAME, "c", "other") and not holds(FRAME, "test", "other") and not holds(FRAME, "C")

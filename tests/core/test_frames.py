import pandas as pd

from goldstone.core.frames import series

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
    assert series(FRAME, "missing", "value").empty


def test_series_leaves_out_index_columns_only_other_observables_fill():
    frame = pd.concat([FRAME, pd.DataFrame({"step": [0], "observable": ["norms"], "metric": ["norm"],
                                            "parameter": ["w"], "value": [7.0]})], ignore_index=True)
    assert "parameter" not in series(frame, "c", "value").columns
    assert series(frame, "norms").parameter.tolist() == ["w"] and "layer" not in series(frame, "norms").columns
    assert list(series(frame, "missing").columns) == list(frame.columns)

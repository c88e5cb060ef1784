"""Reading long-form metrics (``step, observable, metric, <index columns>, value``)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def series(frame: pd.DataFrame, observable: str, metric: str | None = None, **index: Any) -> pd.DataFrame:
    """The rows of `observable`'s `metric` (every metric if None) whose index columns equal `index`
    (e.g. ``layer=0``), sorted by step; rows of one step keep their order."""
    keep = frame.observable == observable
    if metric is not None:
        keep &= frame.metric == metric
    for column, value in index.items():
        keep &= frame[column] == value
    return frame[keep].sort_values("step", kind="stable")

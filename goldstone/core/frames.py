"""Reading long-form metrics (``step, observable, metric, <index columns>, value``)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def series(frame: pd.DataFrame, observable: str, metric: str | None = None, **index: Any) -> pd.DataFrame:
    """The rows of `observable`'s `metric` (every metric if None) whose index columns equal `index`
    (e.g. ``layer=0``), sorted by step; rows of one step keep their order. Index columns that
    only other observables fill (all empty in these rows) are left out."""
    keep = frame.observable == observable
    if metric is not None:
        keep &= frame.metric == metric
    for column, value in index.items():
        keep &= frame[column] == value
    rows = frame[keep].sort_values("step", kind="stable")
    empty = [c for c in rows.columns if c not in ("step", "observable", "metric", "value") and len(rows) and rows[c].isna().all()]
    return rows.drop(columns=empty)

"""Reading long-form metrics (``step, observable, metric, <index columns>, value``)."""

from __future__ import annotations

from typing import Any

import pandas as pd


def series(frame: pd.DataFrame, observable: str, metric: str | None = None, **index: Any) -> pd.DataFrame:
    """The rows of `observable`'s `metric` (every metric if None) whose index columns equal `index`
    (e.g. ``layer=0``), sorted by step; rows of one step keep their order. Index columns that
    only other observables fill (all empty in these rows) are left out. A frame with no rows gives
    no rows; a name the frame does not hold (an observable, its metric, an index column or value)
    is a ValueError that lists the names it does hold, so that a typo is not an empty result."""
    missing = [c for c in ("step", "observable", "metric", "value", *index) if c not in frame.columns]
    if missing:
        raise ValueError(f"series: the frame has no column {', '.join(map(repr, missing))} (it has "
                         f"{', '.join(map(str, frame.columns))}); give a long-form frame of step, observable, "
                         "metric, <index columns>, value")
    if frame.empty:
        return frame.copy()
    keep = frame.observable == observable
    _require_some(keep, "observable", observable, frame.observable, "the frame")
    if metric is not None:
        _require_some(keep & (frame.metric == metric), "metric", metric, frame.metric[keep], repr(observable))
        keep &= frame.metric == metric
    for column, value in index.items():
        _require_some(keep & (frame[column] == value), column, value, frame[column][keep],
                      f"{observable!r}{f' {metric!r}' if metric else ''}")
        keep &= frame[column] == value
    rows = frame[keep].sort_values("step", kind="stable")
    empty = [c for c in rows.columns if c not in ("step", "observable", "metric", "value") and rows[c].isna().all()]
    return rows.drop(columns=empty)


def holds(frame: pd.DataFrame, observable: str, metric: str | None = None) -> bool:
    """Whether `frame` has rows of `observable` (and of its `metric`, if given)."""
    if "observable" not in frame.columns:
        return False
    keep = frame.observable == observable
    return bool((keep & (frame.metric == metric)).any() if metric is not None else keep.any())


def _require_some(keep: pd.Series, what: str, wanted: Any, present: pd.Series, where: str) -> None:
    if not keep.any():
        values = sorted({str(v) for v in present.dropna().unique()})
        shown = ", ".join(values[:12]) + (f", ... ({len(values)} in all)" if len(values) > 12 else "")
        raise ValueError(f"series: no {what} {wanted!r} in the rows of {where}; "
                         f"{f'it has {shown}' if values else f'none of them has a {what}'}")

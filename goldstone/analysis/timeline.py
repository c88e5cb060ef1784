"""What changes when: the transitions of every logged series, lined up on one step axis.

Each series (one observable's metric at one index: a layer, a head, a matrix) is searched for its
steepest rise and its steepest drop with `find_rise` / `find_drop` (continuous piecewise-linear
fits with the modified-BIC penalty, "Sudden Drops in the Loss", Chen et al., ICLR 2024); the larger
of the two is its transition if it is at least `MIN_SHARE` of the curve's range and `MIN_CHANGE` of
its median magnitude, and stands out of the curve's own noise and trend: bending a
straight-line fit of the whole curve at the window's two ends must lower the residual sum of
squares by at least `SIGNIFICANCE`^2 sigma^2, sigma the noise level estimated from the median
absolute first difference (sigma = MAD(diff) / (0.6745 sqrt 2), floored at float32 resolution), so
neither noise nor a steady drift counts, however long the curve. The window
[start, end] is the steep part of the fit; `step` is the first checkpoint after `start`, where the
new regime shows first; `before` and `after` are the levels at the window's ends (medians of two
checkpoints). The stretches before and after a window are searched again, so a curve that falls
early and drops again later (a warm-up, a plateau, a sudden drop) shows both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from goldstone.analysis.onsets import find_drop, find_rise

SIGNIFICANCE = 6.0
"""How far (in units of the noise sigma) a transition must stand out of a straight line to count."""

MIN_POINTS = 5
"""Checkpoints a series needs before it is searched."""

MIN_SHARE = 0.15
"""The smallest transition reported, as a share of the range (max - min) of the stretch searched;
a later one, in a stretch beside an earlier window, must also be a third of that of the whole
series (a drop after a warm-up counts, the last wiggles of a saturated curve do not)."""

MIN_CHANGE = 0.1
"""The smallest transition reported, as a share of the series' median magnitude: a series that
barely moves has a small range, and a tenth of a per cent of its level is not a transition."""

COLUMNS = ("observable", "metric", "value")
FIELDS = ("step", "start", "end", "before", "after", "size", "share", "noise")
"""The columns of a transition besides its series' observable, metric and index."""


def index_columns(table: pd.DataFrame) -> list[str]:
    """The index columns (layer, head, parameter, ...) of a frame or a transition table."""
    return [c for c in table.columns if c not in ("observable", "metric", "value", *FIELDS)]


def salient(table: pd.DataFrame, count: int) -> pd.DataFrame:
    """The `count` largest transitions (as shares of their series' range), in step order."""
    return table.nlargest(count, "share").sort_values(["step", "share"], ascending=[True, False], kind="stable")


def noise_level(values: np.ndarray) -> float:
    """Robust sigma of white noise on a curve from its first differences (see the module docstring)."""
    d = np.diff(values)
    sigma = np.median(np.abs(d - np.median(d))) / (0.6745 * np.sqrt(2))
    return max(float(sigma), float(np.finfo(np.float32).eps * np.max(np.abs(values))))


def step_axis(steps: np.ndarray) -> str:
    """"linear" for steps from 0 or evenly spaced, else "log": the axis transitions are sought on
    (and `goldstone.plotting.audit_timeline` draws)."""
    gaps = np.diff(steps)
    return "linear" if steps[0] <= 0 or np.allclose(gaps, gaps[0], rtol=1e-6) else "log"


def _rss(columns: list[np.ndarray], values: np.ndarray) -> float:
    design = np.column_stack(columns)
    residual = values - design @ np.linalg.lstsq(design, values, rcond=None)[0]
    return float(residual @ residual)


def bend_gain(x: np.ndarray, values: np.ndarray, start: float, end: float) -> float:
    """How much bending a straight-line fit at `start` and `end` (continuous, free slopes) lowers
    the residual sum of squares."""
    line = [np.ones_like(x), x]
    return _rss(line, values) - _rss(line + [np.maximum(x - start, 0), np.maximum(x - end, 0)], values)


def series_transition(steps: np.ndarray, values: np.ndarray, sigma: float | None = None,
                      span: float | None = None, level: float | None = None) -> dict | None:
    """The significant steepest transition of one curve, or None (see the module docstring);
    `sigma` is the noise level, `span` the range and `level` the median magnitude of the whole
    series the curve is a stretch of (default: all from the curve given)."""
    stretch = float(np.ptp(values))
    span = stretch if span is None else span
    level = float(np.median(np.abs(values))) if level is None else level
    if len(steps) < MIN_POINTS or stretch == 0:
        return None
    axis = step_axis(steps)
    sigma = noise_level(values) if sigma is None else sigma
    x = np.log(steps) if axis == "log" else steps
    best = None
    for found in (find_rise(steps, values, axis), find_drop(steps, values, axis)):
        if found is None:
            continue
        first, last = np.searchsorted(steps, [found.start, found.end])
        before, after = float(np.median(values[max(first - 1, 0):first + 1])), float(np.median(values[last:last + 2]))
        size = after - before
        gain = bend_gain(x, values, x[first], x[last])
        large = abs(size) >= max(MIN_SHARE * stretch, MIN_SHARE / 3 * span, MIN_CHANGE * level)
        if large and gain >= (SIGNIFICANCE * sigma) ** 2 and (best is None or abs(size) > abs(best["size"])):
            best = {"step": float(steps[min(first + 1, len(steps) - 1)]), "start": found.start, "end": found.end,
                    "before": before, "after": after, "size": size, "share": abs(size) / span, "noise": sigma}
    return best


def series_transitions(steps: np.ndarray, values: np.ndarray) -> list[dict]:
    """Every significant transition of one curve, in step order: the steepest, then, recursively,
    those of the stretches before and after its window (each of at least `MIN_POINTS` checkpoints),
    against the larger of the noise levels of the whole curve and of the stretch (noise may differ
    on the two sides of a change)."""
    if len(values) < MIN_POINTS:
        return []
    whole, span, level = noise_level(values), float(np.ptp(values)), float(np.median(np.abs(values)))
    found, stretches = [], [(0, len(steps))]
    while stretches:
        lo, hi = stretches.pop()
        if hi - lo < MIN_POINTS:
            continue
        sigma = max(whole, noise_level(values[lo:hi]))
        best = series_transition(steps[lo:hi], values[lo:hi], sigma, span, level)
        if best is None:
            continue
        found.append(best)
        first, last = np.searchsorted(steps, [best["start"], best["end"]])
        stretches += [(lo, int(first) + 1), (int(last), hi)]
    return sorted(found, key=lambda t: t["step"])


def transitions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per significant transition of every series of a tidy frame (``step, observable,
    metric, <index>, value``): its observable, metric, index columns, step, start, end, before, after,
    size and noise, ordered by step."""
    index = index_columns(frame)
    rows = []
    for key, group in frame.groupby(["observable", "metric", *index], dropna=False, sort=False):
        group = group[np.isfinite(group.value.to_numpy(float))].sort_values("step")
        steps = group.step.to_numpy(float)
        if len(np.unique(steps)) != len(steps):
            continue  # not a series along steps (several rows per step)
        for found in series_transitions(steps, group.value.to_numpy(float)):
            rows.append({**dict(zip(["observable", "metric", *index], key)), **found})
    columns = ["observable", "metric", *index, "step", "start", "end", "before", "after", "size", "share", "noise"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["step", "observable", "metric"], kind="stable", ignore_index=True)


def index_text(value) -> str:
    """An index value as written: whole numbers without a decimal point."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def describe(row: pd.Series, index: list[str]) -> str:
    """One line: "at step S: <observable> <metric> [<index>] rises from a to b"."""
    where = ", ".join(f"{c} {index_text(row[c])}" for c in index if pd.notna(row[c]))
    verb = "rises" if row["size"] > 0 else "drops"
    return (f"at step {row['step']:g}: {row['observable'].replace('_', ' ')} {row['metric'].replace('_', ' ')}"
            f"{f' ({where})' if where else ''} {verb} from {row['before']:.4g} to {row['after']:.4g}")

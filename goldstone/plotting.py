"""Figures as functions of tidy frames: the phase diagrams, curves, head heat maps and audit
timeline that goldstone's reports draw, for you to redraw from your own runs.

Every function takes a pandas frame in one of goldstone's tidy forms and returns a matplotlib
`Figure` (drawn with the object API: pyplot is never imported and no global state changes, so
your backend and open figures stay as they are; save it with ``fig.savefig(path)``):

- long form, one row per number, ``step, observable, metric, <index columns>, value``: what
  `Monitor.frame()`, `scan_checkpoints` and `Result.to_frame()` give, a run's ``metrics.parquet``,
  an audit's ``frame.parquet``; a sweep's ``results.parquet`` is the same with the swept keys and
  ``seed`` as columns, and its ``summary.parquet`` (the headline numbers) is
  ``<swept keys>, seed, metric, value``. `metric` names the rows to draw (their numbers are in
  ``value``);
- wide form, one column per metric (`Result.table()`, your own frame): `metric` names the column.

`phase_diagram` draws a heat map over two keys, `curves` lines against one key with seed bands and
a theory overlay, `head_heatmap` the layer x head grid of a per-head metric, `audit_timeline` the
transitions along training that `goldstone audit` finds. Names are shown through `labels`:
``{"sigma_w": "weight scale σ_W"}`` labels a column or a metric (give units there),
``{"group=ok": "O({k})"}`` a value, formatted with the panel's values and `fixed` (so it reads
O(4)); a run's presentation stores labels in this form. Anything not labelled is shown by its
name, underscores as spaces. A frame without a column a function needs is refused with a
`ValueError` naming it.

    import pandas as pd
    from goldstone import plotting

    summary = pd.read_parquet("runs/phase_diagram/summary.parquet")   # a sweep over sigma_w, depth, group
    fig = plotting.phase_diagram(summary, "sigma_w", "depth", "final_test_accuracy", critical={"sigma_w": 1.0})
    fig.savefig("phase_diagram.png")
"""

from __future__ import annotations

import inspect
import itertools
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from goldstone.analysis.timeline import index_columns, index_text, step_axis, transitions

__all__ = ["all_numbers", "audit_timeline", "curves", "distinct_values", "head_heatmap", "phase_diagram", "seed_band",
           "spread_text"]

NOT_KEYS = ("observable", "metric", "value")
"""Columns of a tidy frame that are never keys of a panel."""

TRANSITION_COLUMNS = ("step", "start", "end", "size", "share")
"""The columns of a transition table (`goldstone.analysis.timeline.transitions`) the timeline draws."""


# ------------------------------------------------------------------------------ frames


def _require(frame: pd.DataFrame, columns: Sequence[str | None], what: str) -> None:
    """A `ValueError` naming the first of `columns` the frame lacks."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(frame).__name__}")
    for column in columns:
        if column is not None and column not in frame.columns:
            have = ", ".join(map(str, frame.columns))
            raise ValueError(f"{what}: the frame has no column {column!r} (it has {have})")


def _rows(frame: pd.DataFrame, metric: str, observable: str | None, where: Mapping[str, Any] | None,
          columns: Sequence[str | None], what: str) -> tuple[pd.DataFrame, bool]:
    """The rows of `metric` (long form: rows whose metric column is `metric`, of `observable` if
    given; wide form: the column `metric`, as ``value``) that match `where`, without the key columns
    they leave empty; and whether the frame is in long form."""
    _require(frame, [*(where or {}), *columns], what)
    for column, value in (where or {}).items():
        frame = frame[frame[column] == value]
    long = "metric" in frame.columns and "value" in frame.columns and metric in set(frame.metric)
    if long:
        keep = frame.metric == metric
        if observable is not None:
            _require(frame, ["observable"], what)
            keep &= frame.observable == observable
        rows = frame[keep]
    elif metric in frame.columns:
        rows = frame.assign(value=frame[metric])
    elif "metric" in frame.columns and metric in set(frame.metric):
        raise ValueError(f"{what}: the frame has rows of metric {metric!r} but no value column")
    else:
        have = sorted(map(str, frame.metric.unique())) if "metric" in frame.columns else list(map(str, frame.columns))
        raise ValueError(f"{what}: no metric {metric!r} in the frame (neither a value of its metric column nor a "
                         f"column; it has {', '.join(have) or 'no rows'})")
    if observable is None and "observable" in rows.columns and rows.observable.nunique() > 1:
        raise ValueError(f"{what}: metric {metric!r} belongs to several observables "
                         f"({', '.join(sorted(map(str, rows.observable.unique())))}); give observable=")
    if rows.empty:
        of = f" of observable {observable!r}" if observable else ""
        raise ValueError(f"{what}: no rows of metric {metric!r}{of}" + (f" where {dict(where)}" if where else ""))
    rows = rows.drop(columns=[c for c in rows.columns if c != "value" and rows[c].isna().all()])
    for column in columns:
        if column is not None and column not in rows.columns:
            raise ValueError(f"{what}: the column {column!r} holds no value in the rows of metric {metric!r}")
    return rows, long


def _panel_keys(rows: pd.DataFrame, panels: Sequence[str] | None, used: Sequence[str | None], long: bool) -> list[str]:
    """`panels`, or by default every column of a long-form frame that is not `used` nor one of
    `NOT_KEYS`, takes several values and has one in every row (a key missing from some rows, as in
    frames of several sweeps put together, would leave those rows out of every panel; a wide
    frame: none)."""
    if panels is not None:
        return list(panels)
    if not long:
        return []
    return [c for c in rows.columns if c not in (*NOT_KEYS, *used) and rows[c].nunique() > 1 and rows[c].notna().all()]


def _sort_key(value: Any) -> tuple:
    """Numbers in order, then text (text holding a number, e.g. a layer "10", in numeric order)."""
    if isinstance(value, str):
        try:
            return (1, 0, float(value), "")
        except ValueError:
            return (1, 1, 0.0, value)
    return (0, 0, value, "")


def distinct_values(values: pd.Series | Sequence) -> list:
    """The distinct values, sorted by `_sort_key`."""
    return sorted(pd.Series(values).dropna().unique(), key=_sort_key)


def all_numbers(values: list) -> bool:
    """Whether `values` is non-empty and holds only numbers (booleans are not numbers here)."""
    return bool(values) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                                for v in values)


def _spans_decades(values: list, ratio: float) -> bool:
    """Positive numbers whose largest is `ratio` times the smallest or more (NaN left out)."""
    numbers = [float(v) for v in values if not np.isnan(float(v))]
    return bool(numbers) and min(numbers) > 0 and max(numbers) >= ratio * min(numbers)


def _log_values(values: list) -> bool:
    """Whether y values read best on a log axis: they span a factor 100, and are not fractions that
    reach above one half (accuracies stay linear however low one point falls)."""
    numbers = [float(v) for v in values if not np.isnan(float(v))]
    fractions = bool(numbers) and min(numbers) >= 0 and 0.5 < max(numbers) <= 1
    return _spans_decades(numbers, 100) and not fractions


def _select(rows: pd.DataFrame, keys: Sequence[str], values: tuple) -> pd.DataFrame:
    for key, value in zip(keys, values):
        rows = rows[rows[key] == value]
    return rows


def _facets(rows: pd.DataFrame, keys: Sequence[str]) -> list[tuple]:
    return list(itertools.product(*(distinct_values(rows[k]) for k in keys)))


def seed_band(stats: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The band `curves` draws: mean +- std over seeds, clipped to [min, max] of the seeds (`stats`
    has columns mean, std, min, max): a bimodal point (some seeds at 0, some at 1) would otherwise
    get a band reaching values no seed had, below 0 for instance."""
    return (np.maximum(stats["mean"] - stats["std"], stats["min"]),
            np.minimum(stats["mean"] + stats["std"], stats["max"]))


def spread_text(rows: pd.DataFrame, unit: str = "seed") -> str:
    """What a mean over the `unit` column is taken over: "mean ± std over 3 seeds", "1 seed", or ""
    without that column."""
    if unit not in rows.columns:
        return ""
    count = rows[unit].nunique()
    return f"mean ± std over {count} {unit}s" if count > 1 else f"1 {unit}"


# ------------------------------------------------------------------------------ labels


def _label(labels: Mapping[str, str] | None, name: Any) -> str:
    return (labels or {}).get(name, str(name).replace("_", " "))


def _value_text(labels: Mapping[str, str] | None, key: str, value: Any, params: Mapping[str, Any] | None = None) -> str:
    """A value in words: the label of ``key=value``, formatted with `params` (so that ``"O({k})"``
    reads O(4)), else the value itself."""
    template = (labels or {}).get(f"{key}={value}")
    if template is None:
        return f"{value:g}" if all_numbers([value]) else str(value)
    try:
        return template.format(**(params or {}))
    except (KeyError, IndexError, ValueError):
        return template


def _facet_title(labels: Mapping[str, str] | None, keys: Sequence[str], values: tuple,
                 fixed: Mapping[str, Any] | None) -> str:
    """"symmetry group = O(4), depth = 100": labels formatted with the panel's own and the fixed keys."""
    params = {**(fixed or {}), **dict(zip(keys, values))}
    return ", ".join(f"{_label(labels, k)} = {_value_text(labels, k, v, params)}" for k, v in zip(keys, values))


# ------------------------------------------------------------------------------ panels and axes


def _figure(count: int, ax: Any, size: tuple[float, float], columns: int, share: bool = False
            ) -> tuple[Figure, list]:
    """`ax`'s figure and `ax` (one panel only), or a new figure of `count` panels, at most `columns`
    to a row, sized to their number plus room for a legend on the right."""
    if ax is not None:
        if count != 1:
            raise ValueError(f"ax= draws one panel, and this frame makes {count}: give panels=[] (or where=) to draw "
                             "one, or leave ax out")
        return ax.get_figure(root=True), [ax]
    columns = max(1, min(count, columns))
    rows = -(-count // columns)
    fig = Figure(figsize=(size[0] * columns + 2.8, size[1] * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharex=share, sharey=share)
    for unused in axes.flat[count:]:
        unused.set_visible(False)
    return fig, list(axes.flat[:count])


def _scale(values: list, log: bool | None) -> str | None:
    """How a numeric axis over `values` is drawn: "log" (positive values spanning a decade or more,
    not evenly spaced), "symlog" (the same beside a zero), "linear"; None for categories. `log`
    True or False forces it."""
    if not all_numbers(values):
        return None
    numbers = np.asarray(sorted(float(v) for v in values))
    positive = numbers[numbers > 0]
    even = len(numbers) > 2 and np.allclose(np.diff(numbers), numbers[1] - numbers[0], rtol=1e-6, atol=0)
    if log is None:
        log = not even and len(positive) > 1 and positive.max() >= 10 * positive.min() and numbers.min() >= 0
    if not log:
        return "linear"
    return "log" if numbers.min() > 0 else "symlog"


def _set_scale(ax: Any, axis: str, values: list, scale: str | None) -> None:
    """Apply `scale` to the x or y axis; label the values themselves when there are at most 8 of
    them (not 2.2 blocks, not only decades)."""
    if scale is None:
        return
    target = ax.xaxis if axis == "x" else ax.yaxis
    if scale == "log":
        getattr(ax, f"set_{axis}scale")("log")
    elif scale == "symlog":
        getattr(ax, f"set_{axis}scale")("symlog", linthresh=min(float(v) for v in values if v > 0), linscale=0.5)
    if scale != "linear":
        target.set_minor_formatter(NullFormatter())
    if 0 < len(values) <= 8:
        numbers = [float(v) for v in values]
        getattr(ax, f"set_{axis}ticks")(numbers, [f"{v:g}" for v in numbers])


def _edges(values: list, scale: str | None) -> np.ndarray:
    """Cell edges around sorted cell centres: midpoints (of the logarithms on a log axis), ends
    mirrored; categories sit at 0, 1, 2, ..."""
    if scale is None:
        return np.arange(len(values) + 1) - 0.5
    v = np.asarray(values, dtype=float)
    if scale == "log":
        return np.exp(_edges(list(np.log(v)), "linear"))
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _category_ticks(ax: Any, axis: str, values: list, labels: Mapping[str, str] | None, key: str,
                    fixed: Mapping[str, Any] | None) -> None:
    texts = [_value_text(labels, key, v, {**(fixed or {}), key: v}) for v in values]
    getattr(ax, f"set_{axis}ticks")(range(len(values)), texts)


def _slant(ax: Any) -> None:
    """Long category names on the x axis: slanted, right-aligned."""
    ax.tick_params(axis="x", labelrotation=30)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")


def _legend(fig: Figure, ax: Any, axes: list, title: str | None, twinned: bool = False,
            facecolor: str | None = None) -> None:
    """One legend of every labelled line of `axes` (critical values last), outside the data: right
    of the figure, or of `ax` when drawing into it (further right when `ax` has a right-hand axis);
    on a grey `facecolor` where the lines are white."""
    lines = [line for panel in axes for line in panel.get_lines()
             if line.get_label() and not line.get_label().startswith("_")]
    handles: dict[str, Any] = {}
    for line in sorted(lines, key=lambda line: line.get_gid() == "critical"):
        handles.setdefault(line.get_label(), line)
    if not handles:
        return
    style = {"fontsize": 8, "title": title, "title_fontsize": 8, "facecolor": facecolor}
    if ax is None:
        fig.legend(list(handles.values()), list(handles), loc="outside right center", **style)
    else:
        ax.legend(list(handles.values()), list(handles), loc="center left",
                  bbox_to_anchor=(1.18 if twinned else 1.02, 0.5), **style)


def _title(fig: Figure, ax: Any, title: str | None) -> None:
    """A figure's title, wrapped to its width (or `ax`'s, when drawing into it)."""
    if not title:
        return
    if ax is not None:
        ax.set_title(title, fontsize=9)
    else:
        fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 11)), fontsize=9)


def _critical(ax: Any, key: str, critical: Mapping[str, float] | None, labels: Mapping[str, str] | None,
              vertical: bool, colour: str) -> None:
    """The theory's critical value of `key`, dashed across the panel."""
    if critical and key in critical:
        line = ax.axvline if vertical else ax.axhline
        line(critical[key], color=colour, ls="--", lw=1.2, gid="critical",
             label=f"critical {_label(labels, key)} = {critical[key]:g}")


# ------------------------------------------------------------------------------ phase diagram


def phase_diagram(summary: pd.DataFrame, x: str, y: str, metric: str, *, panels: Sequence[str] | None = None,
                  where: Mapping[str, Any] | None = None, critical: Mapping[str, float] | None = None,
                  labels: Mapping[str, str] | None = None, fixed: Mapping[str, Any] | None = None,
                  title: str | None = None, logx: bool | None = None, logy: bool | None = None,
                  cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
                  ax: Any = None) -> Figure:
    """A heat map of `metric` over `x` and `y`: each cell the mean over seeds (over every row of
    the cell), one panel per combination of the `panels` keys, one colour scale for all, the
    critical values of `x` and `y` (``critical={"sigma_w": 1.0}``) dashed in white.

    Columns: `x`, `y`, the panel keys and ``metric, value`` (long form, a sweep's summary or
    results) or a column named `metric` (wide form); ``seed`` if there are several. `panels`
    defaults to every other column of the metric's rows that takes several values (besides
    ``observable``, ``metric``, ``value`` and ``seed``); `where` selects rows first (e.g.
    ``{"step": 360}``). Numeric keys get numeric axes (log where the values span decades unevenly,
    or as `logx`/`logy` say), others one cell per value. `fixed` holds the values of keys not in
    the frame, for labels such as ``"O({k})"``; `title` goes above the figure. With `ax` (one
    panel only) it draws into that axes.

        import pandas as pd
        from goldstone import plotting

        summary = pd.read_parquet("runs/sweep-deep_mlp-1a2b3c4d/summary.parquet")
        fig = plotting.phase_diagram(summary, "sigma_w", "depth", "final_test_accuracy",
                                     critical={"sigma_w": 1.0}, labels={"sigma_w": "weight scale σ_W"})
    """
    rows, long = _rows(summary, metric, None, where, [x, y, *(panels or [])], "phase_diagram")
    panels = _panel_keys(rows, panels, [x, y, "seed"], long)
    facets = _facets(rows, panels)
    fig, axes = _figure(len(facets), ax, (4.6, 3.6), 3)
    xs, ys = distinct_values(rows[x]), distinct_values(rows[y])
    xscale, yscale = _scale(xs, logx), _scale(ys, logy)
    grids = [_select(rows, panels, facet).groupby([y, x]).value.mean().unstack(x).reindex(index=ys, columns=xs)
             for facet in facets]
    means = np.concatenate([grid.to_numpy(float).ravel() for grid in grids])
    vmin = np.nanmin(means) if vmin is None else vmin
    vmax = np.nanmax(means) if vmax is None else vmax
    for panel, facet, grid in zip(axes, facets, grids):
        image = panel.pcolormesh(_edges(xs, xscale), _edges(ys, yscale), grid.to_numpy(float), cmap=cmap,
                                 vmin=vmin, vmax=vmax)
        for axis, key, values, scale in (("x", x, xs, xscale), ("y", y, ys, yscale)):
            _set_scale(panel, axis, values, scale)
            if scale is None:
                _category_ticks(panel, axis, values, labels, key, fixed)
            _critical(panel, key, critical, labels, axis == "x", "w")
        if xscale is None:
            _slant(panel)
        panel.set(xlabel=_label(labels, x), ylabel=_label(labels, y))
        if panels:
            panel.set_title(_facet_title(labels, panels, facet, fixed), fontsize=10)
    spread = spread_text(rows) if "seed" not in (x, y, *panels) else ""  # a cell per seed: no spread
    fig.colorbar(image, ax=axes, label=_label(labels, metric) + (f" ({spread})" if spread else ""))
    _legend(fig, ax, axes, None, facecolor="0.75")  # the critical values, white as on the map
    _title(fig, ax, title)
    return fig


# ------------------------------------------------------------------------------ curves


def _theory_curve(theory: pd.DataFrame | Callable, point: Mapping[str, Any], known: Mapping[str, Any],
                  xs: np.ndarray, scale: str | None, name: str, labels: Mapping[str, str] | None
                  ) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(name, x, y) of the theory curve of the line whose hue, panel and fixed keys take the values
    `point` (`known`: those and every other column constant along the line): the rows of a frame
    (x, y, optional name, and key columns selecting the line's curve by `known`), or a callable
    evaluated at 200 points over the line's range `xs`, given the values of `point` it names."""
    if callable(theory):
        low, high = float(np.min(xs)), float(np.max(xs))
        dense = np.geomspace(low, high, 200) if scale == "log" else np.linspace(low, high, 200)
        try:
            parameters = list(inspect.signature(theory).parameters.values())[1:]
        except (TypeError, ValueError):  # a numpy ufunc, say: a function of x alone
            parameters = []
        every = any(p.kind is p.VAR_KEYWORD for p in parameters)
        used = {k: v for k, v in point.items() if every or k in {p.name for p in parameters}}
        if used:
            name += ", " + ", ".join(f"{_label(labels, k)} = {_value_text(labels, k, v, point)}"
                                     for k, v in used.items())
        return name, dense, np.asarray(theory(dense, **used), dtype=float) * np.ones_like(dense)
    keys = [k for k in theory.columns if k not in ("name", "x", "y")]
    for key in keys:
        if key not in known:
            raise ValueError(f"curves: the theory frame's column {key!r} is not the hue, a panel key, a key of fixed= "
                             "nor a column constant along each line")
    rows = _select(theory, keys, tuple(known[k] for k in keys))
    if rows.empty:
        return None
    if "name" in rows:
        name = str(rows["name"].iloc[0])
    elif keys:  # one curve per line: named by the keys that pick it, so curves of different lines stay apart
        name += ", " + ", ".join(f"{_label(labels, k)} = {_value_text(labels, k, known[k], known)}" for k in keys)
    return name, rows.x.to_numpy(float), rows.y.to_numpy(float)


def _draw_theory(ax: Any, right: bool, label: str, lines: list[tuple[str, np.ndarray, np.ndarray]],
                 members: list[str], colours: list[str]) -> Any:
    """The theory curve (name, x, y) of every line, dashed, on the measurement's axis or a
    right-hand one: in the line's colour when each line has its own curve, else one black curve per
    distinct name, labelled with its lines (curves of lines whose names agree are drawn once).
    Returns the axes drawn on."""
    twin = ax.twinx() if right else ax
    named: dict[str, tuple] = {}
    for (name, x, y), member, colour in zip(lines, members, colours):
        named.setdefault(name, (x, y, [], []))[2].append(member)
        named[name][3].append(colour)
    own = len(named) == len(members) > 1
    for style, (name, (x, y, who, colour)) in zip(itertools.cycle(["--", ":", "-."]), named.items()):
        text = name if own or not who[0] else f"{name}: {', '.join(who)}"
        twin.plot(x, y, color=colour[0] if own else "k", ls="--" if own else style, lw=1.4, label=text)
    if right:
        twin.set_ylabel(label)
    return twin


def curves(frame: pd.DataFrame, x: str, metric: str, hue: str | None = None, *, observable: str | None = None,
           panels: Sequence[str] | None = None, where: Mapping[str, Any] | None = None, seeds: str = "band",
           unit: str = "seed", theory: pd.DataFrame | Callable | None = None, theory_label: str = "theory",
           theory_axis: str = "same", critical: Mapping[str, float] | None = None,
           labels: Mapping[str, str] | None = None, fixed: Mapping[str, Any] | None = None, title: str | None = None,
           logx: bool | None = None, logy: bool | None = None, columns: int = 3,
           size: tuple[float, float] = (4.6, 3.6), share: bool = False, legend: bool = True, ax: Any = None,
           **line: Any) -> Figure:
    """`metric` against `x`, one line per value of `hue`, one panel per combination of the
    `panels` keys: with ``seeds="band"`` the mean over seeds (over every row at an x) with a band
    of +-1 std clipped to the range the seeds reached (`seed_band`), with ``seeds="lines"`` one
    thin line per value of the `unit` column (a seed). Over categories (`x` values that are not
    numbers, such as ``group``) the means are points with the band as error bars, the lines side by
    side, the values named by `labels`. The theory's critical value of `x`
    (``critical=``) is dashed grey; a theory curve is drawn dashed beside each measurement, on the
    same axis (``theory_axis="same"``, a prediction of the metric itself) or a right-hand axis
    labelled `theory_label` (``"right"``).

    Columns: `x`, `hue`, the panel keys and ``metric, value`` (long form, of `observable` if
    given: a monitor's frame, a run's metrics, a sweep's results or summary) or a column named
    `metric` (wide form); ``seed`` (`unit`) where there are several. `panels` defaults to every
    other column of the metric's rows that takes several values and is filled in every row
    (besides ``observable``, ``metric``, ``value`` and `unit`); `where` selects rows first. `theory` is a frame of columns
    ``x, y``, optionally ``name`` (the legend entry; lines whose names agree share one curve) and
    key columns naming the line each curve belongs to (by its values of `hue`, the panel keys,
    `fixed` or any column constant along the line), or a callable ``f(x, **keys) -> y`` given the
    line's values of the hue, panel and fixed keys it names as parameters.
    `labels` name columns, the metric and values; `fixed` gives values of keys not in the frame;
    `title` goes above the figure. The x axis is logarithmic where its values span decades
    unevenly (`logx` forces it), y where they span a factor 100, unless they are fractions reaching
    above one half such as accuracies (`logy` forces either). `columns` panels to a
    row, each of `size` inches, all sharing their axes when `share`; `line` is passed to
    ``Axes.plot`` (e.g. ``lw=0.8, marker=None``). With `ax` (one panel only) it draws into that axes.

        import numpy as np
        from goldstone import plotting

        frame = monitor.frame()                      # step, observable, metric, layer, value
        fig = plotting.curves(frame, "step", "c", hue="layer", observable="order_parameter",
                              labels={"step": "training step", "c": "order parameter c"})
        fig = plotting.curves(sweep.summary, "sigma_w", "final_test_accuracy", hue="group",
                              theory=lambda x: np.tanh(x), critical={"sigma_w": 1.0})
    """
    if seeds not in ("band", "lines"):
        raise ValueError(f"curves: seeds={seeds!r}; give 'band' or 'lines'")
    if theory_axis not in ("same", "right"):
        raise ValueError(f"curves: theory_axis={theory_axis!r}; give 'same' or 'right'")
    if isinstance(theory, pd.DataFrame):
        _require(theory, ["x", "y"], "curves: theory")
    rows, long = _rows(frame, metric, observable, where,
                       [x, hue, *(panels or []), unit if seeds == "lines" else None], "curves")
    panels = _panel_keys(rows, panels, [x, hue, unit], long)
    facets = _facets(rows, panels)
    xs = distinct_values(rows[x])
    xscale = _scale(xs, logx)
    width = max(size[0], 0.45 * len(xs)) if xscale is None else size[0]
    fig, axes = _figure(len(facets), ax, (width, size[1]), columns, share)
    colours = {v: f"C{i}" for i, v in enumerate(distinct_values(rows[hue]) if hue else [None])}
    dodge = {c: 0.1 * (i - (len(colours) - 1) / 2) for i, c in enumerate(colours.values())}

    def at(values: pd.Series, colour: str) -> pd.Series:
        """Where values of `x` go: numbers as they are; categories in order, lines side by side."""
        return values if xscale is not None else values.map({v: i for i, v in enumerate(xs)}) + dodge[colour]

    spread = spread_text(rows, unit) if seeds == "band" else ""
    banded = seeds == "band" and rows.groupby([*panels, *([hue] if hue else []), x]).value.size().max() > 1
    drawn = list(axes)  # and the right-hand axes of theory curves
    for panel, facet in zip(axes, facets):
        sel = _select(rows, panels, facet)
        curves_of_theory, members, line_colours = [], [], []
        for value, colour in colours.items():
            group = sel if value is None else sel[sel[hue] == value]
            if group.empty:
                continue
            point = {**(fixed or {}), **dict(zip(panels, facet)), **({hue: value} if hue else {})}
            name = _value_text(labels, hue, value, point) if hue else ("one seed" if seeds == "lines"
                                                                        else _label(labels, metric))
            if seeds == "lines":
                for _, one in group.groupby(unit, sort=True):
                    one = one.sort_values(x, kind="stable")
                    panel.plot(at(one[x], colour), one.value, color=colour, label=name, **{"lw": 1, **line})
            else:
                stats = group.groupby(x).value.agg(["mean", "std", "min", "max"]).reset_index().fillna({"std": 0.0})
                if xscale is None:  # categories: a point with the seeds' band as an error bar, no line
                    low, high = seed_band(stats) if banded else (stats["mean"], stats["mean"])
                    panel.errorbar(at(stats[x], colour), stats["mean"], yerr=[stats["mean"] - low, high - stats["mean"]],
                                   fmt="none", ecolor=colour, capsize=3)
                    panel.plot(at(stats[x], colour), stats["mean"], color=colour, label=name,
                               **{"marker": "o", "ms": 4, "ls": "none", **line})
                    continue
                panel.plot(stats[x], stats["mean"], color=colour, label=name, **{"marker": "o", "ms": 4, **line})
                if banded:
                    panel.fill_between(stats[x], *seed_band(stats), color=colour, alpha=0.2, lw=0)
            if theory is not None and xscale is not None:
                known = {c: group[c].iloc[0] for c in group.columns
                         if c not in (*NOT_KEYS, x) and group[c].nunique(dropna=False) == 1}
                found = _theory_curve(theory, point, {**known, **point}, group[x].to_numpy(float), xscale,
                                      theory_label, labels)
                if found is not None:
                    curves_of_theory.append(found)
                    members.append(name if hue else "")
                    line_colours.append(colour)
        if curves_of_theory:
            drawn.append(_draw_theory(panel, theory_axis == "right", theory_label, curves_of_theory, members,
                                      line_colours))
        _critical(panel, x, critical, labels, True, "grey")
        ylabel = _label(labels, metric) + (f" ({spread})" if spread else "")
        panel.set(xlabel=_label(labels, x), ylabel=textwrap.fill(ylabel, 48))  # two lines rather than cut off
        _set_scale(panel, "x", xs, xscale)
        if logy or (logy is None and _log_values(list(rows.value))):
            panel.set_yscale("log")
        if xscale is None:
            _category_ticks(panel, "x", xs, labels, x, {**(fixed or {}), **dict(zip(panels, facet))})
            panel.set_xlim(-0.5, len(xs) - 0.5)
            _slant(panel)
        if panels:
            panel.set_title(_facet_title(labels, panels, facet, fixed), fontsize=10 if size[0] >= 4 else 8)
        if share:
            panel.label_outer()
    if legend:
        _legend(fig, ax, drawn, _label(labels, hue) if hue else None, twinned=len(set(drawn)) > len(axes))
    _title(fig, ax, title)
    return fig


# ------------------------------------------------------------------------------ heads


def head_heatmap(frame: pd.DataFrame, metric: str | None = None, *, observable: str | None = None,
                 where: Mapping[str, Any] | None = None, panels: Sequence[str] | None = None, reduce: str = "mean",
                 layer: str = "layer", head: str = "head", labels: Mapping[str, str] | None = None,
                 cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None,
                 annotate: bool | None = None, ax: Any = None) -> Figure:
    """A layer x head grid of a per-head metric (layer 0 at the top), one panel per combination of
    the `panels` keys, one colour scale for all; each cell is `reduce` ("mean", "max", ...) of the
    head's rows, and the colour bar says what it was taken over. With several steps and no step in
    `where` or `panels`, the last step is drawn (the title says which).

    Columns: `layer`, `head`, ``metric, value`` (long form: `HeadUAS`, `AttentionPatterns`,
    `HeadSpecialisation` results' ``to_frame()``, a monitor's or an audit's frame) or a column
    named `metric` (wide form, e.g. ``result.table()``); `metric` may be left out when the frame
    holds one. `where` selects rows (``{"relation": "nsubj"}``). Values are written in the cells
    when `annotate` (default: at most 12 x 12 cells). With `ax` (one panel only) it draws into that axes.

        from goldstone import HeadUAS, measure, plotting

        (uas,) = measure(model, [HeadUAS(relations)], batches)
        fig = plotting.head_heatmap(uas.to_frame(), "accuracy", where={"relation": "all"}, reduce="max")
    """
    if metric is None:
        _require(frame, ["metric"], "head_heatmap")
        found = frame.metric.unique() if observable is None or "observable" not in frame else \
            frame[frame.observable == observable].metric.unique()
        if len(found) != 1:
            raise ValueError(f"head_heatmap: give the metric to draw (the frame holds {', '.join(map(str, found))})")
        metric = found[0]
    rows, long = _rows(frame, metric, observable, where, [layer, head, *(panels or [])], "head_heatmap")
    panels = list(panels or [])
    at = ""
    if "step" in rows and rows.step.nunique() > 1 and "step" not in panels:
        rows = rows[rows.step == rows.step.max()]
        at = f"step {rows.step.iloc[0]:g}"
    reduced = [c for c in rows.columns if c not in (*NOT_KEYS, layer, head, *panels) and rows[c].nunique() > 1] \
        if long else []
    facets = _facets(rows, panels)
    fig, axes = _figure(len(facets), ax, (0.5 * rows[head].nunique() + 1.6, 0.4 * rows[layer].nunique() + 1.2), 3)
    layers, heads = distinct_values(rows[layer]), distinct_values(rows[head])
    grids = [_select(rows, panels, facet).groupby([layer, head]).value.agg(reduce).unstack(head)
             .reindex(index=layers, columns=heads).to_numpy(float) for facet in facets]
    vmin = np.nanmin(grids) if vmin is None else vmin
    vmax = np.nanmax(grids) if vmax is None else vmax
    annotate = len(layers) <= 12 and len(heads) <= 12 if annotate is None else annotate
    for panel, facet, grid in zip(axes, facets, grids):
        image = panel.imshow(grid, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        _category_ticks(panel, "x", heads, labels, head, None)
        _category_ticks(panel, "y", layers, labels, layer, None)
        panel.set(xlabel=_label(labels, head), ylabel=_label(labels, layer))
        if annotate:
            middle = (vmin + vmax) / 2
            for (i, j), value in np.ndenumerate(grid):
                if np.isfinite(value):
                    panel.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=7,
                               color="k" if value > middle else "w")
        panel.set_title(", ".join(filter(None, [_facet_title(labels, panels, facet, None), at])), fontsize=10)
    over = f" ({reduce} over {', '.join(_label(labels, c) for c in reduced)})" if reduced else ""
    fig.colorbar(image, ax=axes, label=_label(labels, metric) + over)
    return fig


# ------------------------------------------------------------------------------ audit timeline


def audit_timeline(frame: pd.DataFrame, *, steps: Sequence[float] | np.ndarray | None = None, limit: int = 40,
                   ax: Any = None) -> Figure:
    """The `limit` largest transitions (as shares of their series' range) as windows on one step
    axis, one row each, earliest at the top: the bar is the steepest part of the change (blue a
    rise, red a drop), the dot the first checkpoint after it. This is the timeline of
    `goldstone audit`'s report.

    `frame` is a table of transitions (an audit's ``transitions.parquet`` or
    `AuditResult.transitions`: ``observable, metric, <index>, step, start, end, size, share``), or
    a tidy frame (``step, observable, metric, <index>, value``: a monitor's frame, an audit's
    ``frame.parquet``) whose transitions are found first (`goldstone.analysis.timeline.transitions`,
    at least 5 checkpoints per series; change points need `ruptures`, in the `hf` extra). `steps` are the checkpoints' steps (default: the tidy
    frame's, else the transitions' own); the axis is logarithmic when they are spaced so. With `ax`
    it draws into that axes.

        import pandas as pd
        from goldstone import plotting

        fig = plotting.audit_timeline(pd.read_parquet("goldstone-audit/transitions.parquet"))
        fig = plotting.audit_timeline(monitor.frame())
    """
    _require(frame, ["step", "observable", "metric"], "audit_timeline")
    if all(c in frame.columns for c in TRANSITION_COLUMNS):
        table = frame
        steps = np.concatenate([frame[c].to_numpy(float) for c in ("step", "start", "end")]) if steps is None else steps
    else:
        _require(frame, ["value"], "audit_timeline (a tidy frame; a transition table needs "
                 f"{', '.join(TRANSITION_COLUMNS)})")
        steps = frame.step.to_numpy(float) if steps is None else steps
        table = transitions(frame)
    steps = np.sort(np.unique(np.asarray(steps, dtype=float)))
    index = index_columns(table)
    shown = table.nlargest(limit, "share").sort_values("step", kind="stable", ascending=False) if len(table) else table
    if ax is None:
        fig = Figure(figsize=(9, 1.2 + 0.28 * max(len(shown), 1)), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.get_figure(root=True)
    for y, (_, row) in enumerate(shown.iterrows()):
        colour = "tab:blue" if row["size"] > 0 else "tab:red"
        ax.plot([row.start, row.end], [y, y], color=colour, lw=5, alpha=0.5, solid_capstyle="butt")
        ax.plot([row.step], [y], "o", color=colour, ms=4)
    names = [" ".join(index_text(v) for v in [r.observable, r.metric, *(r[c] for c in index)] if pd.notna(v))
             for _, r in shown.iterrows()]
    ax.set_yticks(range(len(shown)), names, fontsize=7)
    if shown.empty:
        ax.text(0.5, 0.5, "no transition found", transform=ax.transAxes, ha="center", va="center")
    if len(steps) > 1:
        ax.set_xlim(steps.min(), steps.max())
        if step_axis(steps) == "log":
            ax.set_xscale("log")
    ax.set_xlabel("training step (window: steepest part of the change; dot: first checkpoint after it)")
    ax.set_title("transitions along training (blue: rises, red: drops)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return fig

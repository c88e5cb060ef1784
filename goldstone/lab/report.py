"""Self-contained HTML reports of a run or a sweep: figures embedded as base64 PNG (GIF for
animations), nothing fetched from a network, every piece of text from configs and data escaped.

A sweep's report draws its phase diagram: a heat map of a headline metric (mean over seeds)
over two swept keys, one panel per value of the other keys, with the experiment's critical
value drawn as a dashed line; with one swept key, a line with a band of +-1 std over seeds
(clipped to the range the seeds reached). Everything comes from the folders (the presentation each
run stores, a sweep's theory curves and sections): a report never imports an experiment.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from goldstone.core.atomic import check_output_file, write_figure, write_text
from goldstone.core.config import applicable
from goldstone.core.errors import GoldstoneError
from goldstone.core.frames import series
from goldstone.lab.presentation import Presentation

if TYPE_CHECKING:  # the views call the report, not the other way round
    from goldstone.lab.views import Run, Sweep

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
th{background:#f3f3f3}figure{margin:1em 0 2em}figcaption{color:#555;font-size:.95em}img{max-width:100%}
code{background:#f3f3f3;padding:0 .2em}"""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", border=0, na_rep="")


def _figure(image: Path, caption: str) -> str:
    """An embedded PNG or GIF with its caption."""
    data = base64.b64encode(image.read_bytes()).decode()
    kind = image.suffix.lstrip(".")
    return (f'<figure><img alt="{html.escape(image.stem)}" src="data:image/{kind};base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _section(folder: Path, item: dict[str, str]) -> str:
    """A sweep's stored section (`Sweep.sections`: a heading, a table or a figure) as HTML."""
    if "table" in item:
        return _table(pd.read_parquet(folder / item["table"]))
    if "figure" in item:
        return _figure(folder / item["figure"], item["caption"])
    return f"<h3>{html.escape(item['heading'])}</h3>"


def _config_table(config: dict[str, Any]) -> str:
    return _table(pd.DataFrame({"key": list(config), "value": [json.dumps(v) for v in config.values()]}))


def _notes(pres: Presentation) -> list[str]:
    return [f"<p>{html.escape(pres.notes)}</p>"] if pres.notes else []


def run_sections(run: Run, level: int = 2) -> list[str]:
    folder = run.folder
    stored, manifest, pres = run.stored, run.manifest, run.presentation
    h = f"h{level}"
    headline = manifest["headline"]
    out = [f"<{h}>Run {html.escape(stored['experiment'])} (seed {stored['seed']})</{h}>",
           f"<p><code>{html.escape(str(folder))}</code>{'' if run.complete else ' <b>(unfinished)</b>'}</p>",
           *_notes(pres), "<h3>Headline</h3>",
           _table(pd.DataFrame({"metric": [pres.label(m) for m in headline], "value": list(headline.values())})),
           "<h3>Config</h3>", _config_table(applicable(stored["config"], pres.when))]
    for fig in manifest["figures"]:
        out.append(_figure(folder / "figures" / fig.get("file", f"{fig['name']}.png"), fig["caption"]))
    for table in manifest["tables"]:
        out += [f"<h3>{html.escape(table['name'])}</h3><p>{html.escape(table['caption'])}</p>",
                _table(run.table(table["name"]))]
    return out


def _axis_values(values: pd.Series) -> list:
    return sorted(values.unique(), key=lambda v: (isinstance(v, str), v))


def _numeric(values: list) -> bool:
    return bool(values) and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)


def _spans_decades(values: list, ratio: float) -> bool:
    """Positive numbers whose largest is `ratio` times the smallest or more: drawn on a log axis."""
    numbers = [float(v) for v in values]
    return min(numbers) > 0 and max(numbers) >= ratio * min(numbers)


def _value_text(pres: Presentation, key: str, value: Any, params: dict[str, Any] | None = None) -> str:
    """A value in words: the experiment's label for ``key=value``, formatted with `params` (so that
    ``"O({k})"`` reads O(4)), else the value itself."""
    template = pres.labels.get(f"{key}={value}")
    if template is None:
        return f"{value:g}" if _numeric([value]) else str(value)
    try:
        return template.format(**(params or {}))
    except (KeyError, IndexError, ValueError):
        return template


def _facet_title(pres: Presentation, keys: list[str], values: tuple, fixed: dict[str, Any]) -> str:
    """"symmetry group = O(4), depth = 100": labels formatted with the panel's own and the fixed keys."""
    params = {**fixed, **dict(zip(keys, values))}
    return ", ".join(f"{pres.label(k)} = {_value_text(pres, k, v, params)}" for k, v in zip(keys, values))


def _select(rows: pd.DataFrame, keys: list[str], values: tuple) -> pd.DataFrame:
    for key, value in zip(keys, values):
        rows = rows[rows[key] == value]
    return rows


def _panels(count: int, width: float = 4.6, height: float = 3.6, sharey: bool = False,
            columns: int = 3) -> tuple[Figure, np.ndarray]:
    """A grid of `count` panels, at most `columns` to a row, sized to their number (plus room for
    a legend on the right)."""
    columns = min(count, columns)
    rows = -(-count // columns)
    fig = Figure(figsize=(width * columns + 2.8, height * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharey=sharey)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, axes.flat[:count]


def _layout(keys: list[str], rows: pd.DataFrame, critical: dict[str, float], theory_key: str | None = None
            ) -> tuple[str, str | None, list[str]]:
    """(x key, line key or None, facet keys): x is numeric, preferably the key with a critical
    value, then the key the theory curve is drawn against, then the one with the most values;
    lines are drawn per value of the key with the fewest values (a category first)."""
    numeric = [k for k in keys if _numeric(_axis_values(rows[k]))]
    preferred = [k for k in numeric if k in critical] + [k for k in numeric if k == theory_key]
    most = max(numeric, key=lambda k: rows[k].nunique()) if numeric else keys[0]
    x_key = preferred[0] if preferred else most
    rest = sorted((k for k in keys if k != x_key), key=lambda k: (k in numeric, rows[k].nunique()))
    return x_key, (rest[0] if rest else None), rest[1:]


def _heatmap_wanted(rows: pd.DataFrame, x_key: str, line_key: str | None) -> bool:
    """Two numeric axes with many values read better as a heat map than as many lines."""
    return line_key is not None and _numeric(_axis_values(rows[line_key])) and rows[line_key].nunique() > 6


def _edges(values: list[float]) -> np.ndarray:
    """Cell edges around sorted numeric cell centres (midpoints, ends mirrored)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _theory_curve(theory: pd.DataFrame, point: dict[str, Any]) -> tuple[str, np.ndarray, np.ndarray]:
    """(name, x, y) of the stored theory curve (`Sweep.theory`) of the line whose swept values are in `point`."""
    keys = [k for k in theory.columns if k not in ("name", "x", "y")]
    rows = _select(theory, keys, tuple(point[k] for k in keys))
    return rows["name"].iloc[0], rows.x.to_numpy(), rows.y.to_numpy()


def _draw_theory(ax: Any, theory: dict[str, Any], lines: list[tuple[str, np.ndarray, np.ndarray]],
                 members: list[str], colours: list[str]) -> list:
    """The theory curve (name, x, y) of every line, on a right-hand axis: dashed in the line's colour
    when each line has its own curve, else one black curve per distinct name, labelled with its lines."""
    twin = ax if theory["same_axis"] else ax.twinx()
    handles, named = [], {}
    for (name, x, y), member, colour in zip(lines, members, colours):
        named.setdefault(name, (x, y, [], []))[2].append(member)
        named[name][3].append(colour)
    own = len(named) == len(members) > 1
    for style, (name, (x, y, who, colour)) in zip(itertools.cycle(["--", ":", "-."]), named.items()):
        label = name if own or not who[0] else f"{name}: {', '.join(who)}"
        (line,) = twin.plot(x, y, color=colour[0] if own else "k", ls="--" if own else style, lw=1.4, label=label)
        handles.append(line)
    if not theory["same_axis"]:
        twin.set_ylabel(theory["label"])
    return handles


def seed_band(stats: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """mean +- std over seeds, clipped to [min, max] of the seeds: a bimodal point (some seeds at
    0, some at 1) would otherwise get a band reaching values no seed had, below 0 for instance."""
    return (np.maximum(stats["mean"] - stats["std"], stats["min"]),
            np.minimum(stats["mean"] + stats["std"], stats["max"]))


def phase_diagram(summary: pd.DataFrame, keys: list[str], metric: str, pres: Presentation, path: Path,
                  fixed: dict[str, Any] | None = None, theory: pd.DataFrame | None = None) -> str:
    """Draw the phase diagram PNG+SVG of `metric` over the swept `keys`; returns its caption.

    A numeric x axis (the key with a critical value, drawn dashed), one line per value of a second
    key (mean over seeds, band of one std when there are several), one panel per value of the
    others, and the experiment's theory curves (`Sweep.theory`) on a right-hand axis; two
    many-valued numeric keys give a heat map on numeric axes instead.
    """
    rows = summary[summary.metric == metric]
    if rows.empty:
        raise GoldstoneError(f"no headline metric {metric!r} in this sweep (have: {sorted(summary.metric.unique())})")
    fixed = fixed or {}
    theory = pd.DataFrame() if theory is None else theory
    x_key, line_key, facet_keys = _layout(keys, rows, pres.critical, pres.theory["key"] if pres.theory else None)
    seeds = rows.seed.nunique() if "seed" in rows else 1
    over = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    facets = list(itertools.product(*(_axis_values(rows[k]) for k in facet_keys))) or [()]
    categorical = not _numeric(_axis_values(rows[x_key]))
    fig, axes = _panels(len(facets), width=max(4.6, 0.45 * rows[x_key].nunique()) if categorical else 4.6)
    heatmap = _heatmap_wanted(rows, x_key, line_key)
    theory_drawn = (pres.theory is not None and pres.theory["key"] == x_key and not theory.empty
                    and _numeric(_axis_values(rows[x_key])))
    handles: dict[str, Any] = {}
    vmin, vmax = rows.value.min(), rows.value.max()
    for ax, facet in zip(axes, facets):
        sel = _select(rows, facet_keys, facet)
        if heatmap:
            xs, ys = _axis_values(rows[x_key]), _axis_values(rows[line_key])
            grid = sel.groupby([line_key, x_key]).value.mean().unstack(x_key).reindex(index=ys, columns=xs)
            image = ax.pcolormesh(_edges(xs), _edges(ys), grid.to_numpy(float), cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_ylabel(pres.label(line_key))
            if line_key in pres.critical:
                ax.axhline(pres.critical[line_key], color="w", ls="--", lw=1.5)
        else:
            lines = _axis_values(sel[line_key]) if line_key else [None]
            curves, members, colours = [], [], []
            for value in lines:
                group = sel if value is None else sel[sel[line_key] == value]
                stats = (group.groupby(x_key).value.agg(["mean", "std", "min", "max"]).reset_index()
                         .fillna({"std": 0.0}))
                point = {**fixed, **dict(zip(facet_keys, facet)), **({line_key: value} if line_key else {})}
                label = _value_text(pres, line_key, value, point) if line_key else pres.label(metric)
                (line,) = ax.plot(stats[x_key], stats["mean"], "o-", ms=4, label=label)
                if seeds > 1:
                    ax.fill_between(stats[x_key], *seed_band(stats), color=line.get_color(), alpha=0.2, lw=0)
                handles.setdefault(label, line)
                if theory_drawn:
                    curves.append(_theory_curve(theory, point))
                members.append(label if line_key else "")
                colours.append(line.get_color())
            ax.set_ylabel(textwrap.fill(f"{pres.label(metric)} ({over})", 48))  # two lines rather than cut off
            if theory_drawn:
                for handle in _draw_theory(ax, pres.theory, curves, members, colours):
                    handles.setdefault(handle.get_label(), handle)
        if x_key in pres.critical:
            critical = ax.axvline(pres.critical[x_key], color="grey" if not heatmap else "w", ls="--", lw=1.2,
                                  label=f"critical {pres.label(x_key)} = {pres.critical[x_key]:g}")
            handles.setdefault(critical.get_label(), critical)
        ax.set_xlabel(pres.label(x_key))
        x_values = [] if categorical else [float(v) for v in _axis_values(rows[x_key])]
        positive = [v for v in x_values if v > 0]
        if x_values and _spans_decades(x_values, 10):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        elif positive and min(x_values) == 0 and _spans_decades(positive, 10):  # 0 and decades: log beyond the first
            ax.set_xscale("symlog", linthresh=min(positive), linscale=0.5)
            ax.xaxis.set_minor_formatter(NullFormatter())
        grid_values = [] if categorical else [float(v) for v in _axis_values(rows[x_key])]
        if 0 < len(grid_values) <= 8:  # label the swept values themselves (not 2.2 blocks, not only decades)
            ax.set_xticks(grid_values, [f"{v:g}" for v in grid_values])
        if not heatmap and _spans_decades(list(rows.value), 100):
            ax.set_yscale("log")
        if categorical:  # long category names: slanted, and the panel widens with their number
            ax.tick_params(axis="x", labelrotation=30)
            for tick in ax.get_xticklabels():
                tick.set_horizontalalignment("right")
        if facet_keys:
            ax.set_title(_facet_title(pres, facet_keys, facet, fixed), fontsize=10)
    if heatmap:
        fig.colorbar(image, ax=list(axes), label=f"{pres.label(metric)} ({over})")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=8,
                   title=pres.label(line_key) if line_key and not heatmap else None, title_fontsize=8)
    if fixed:
        fixed_text = ", ".join(f"{pres.label(k)} = {v}" for k, v in fixed.items())
        fig.suptitle(textwrap.fill(f"fixed: {fixed_text}", int(fig.get_figwidth() * 11)), fontsize=9)
    for suffix in ("png", "svg"):
        write_figure(path.with_suffix(f".{suffix}"), fig)
    shown = f"{pres.label(metric)} ({over}) against {pres.label(x_key)}"
    shown += (f" and {pres.label(line_key)} (colour)" if heatmap else f", one line per {pres.label(line_key)}") \
        if line_key else ""
    caption = shown + (f", one panel per {', '.join(pres.label(k) for k in facet_keys)}" if facet_keys else "")
    if x_key in pres.critical:
        caption += f"; dashed: the theory's critical {pres.label(x_key)} = {pres.critical[x_key]:g}"
    if theory_drawn and not heatmap:
        caption += (f"; dashed, in each line's colour: {pres.theory['label']}" if pres.theory["same_axis"]
                    else f"; black: {pres.theory['label']} (right axis)")
    return caption + "."


def curves(results: pd.DataFrame, keys: list[str], pres: Presentation, path: Path,
           fixed: dict[str, Any] | None = None) -> str:
    """The experiment's curve (observable, metric) against step for every point: one panel per
    value of every key but the line key (the same layout as the phase diagram: a row per facet,
    a column per x value), one colour per line-key value, one thin line per seed."""
    observable, metric = pres.curve
    fixed = fixed or {}
    rows = series(results, observable, metric)
    x_key, line_key, facet_keys = _layout(keys, rows, pres.critical, pres.theory["key"] if pres.theory else None)
    panel_keys = [*facet_keys, x_key]
    panels = list(itertools.product(*(_axis_values(rows[k]) for k in panel_keys)))
    columns = rows[x_key].nunique() if facet_keys else 3
    fig, axes = _panels(len(panels), width=3.0, height=2.6, sharey=True, columns=columns)
    colours = {v: f"C{i}" for i, v in enumerate(_axis_values(rows[line_key]))} if line_key else {None: "C0"}
    positive = rows.step[rows.step > 0]
    log_steps = len(positive) and positive.max() > 100 * positive.min()
    for ax, panel in zip(axes, panels):
        sel = _select(rows, panel_keys, panel)
        for (value, seed), group in sel.groupby([line_key or "seed", "seed"]) if line_key else sel.groupby(["seed", "seed"]):
            colour = colours[value if line_key else None]
            point = {**fixed, **dict(zip(panel_keys, panel)), **({line_key: value} if line_key else {})}
            ax.plot(group.step, group.value, lw=1, color=colour,
                    label=_value_text(pres, line_key, value, point) if line_key else "one seed")
        ax.set(title=_facet_title(pres, panel_keys, panel, fixed), xlabel="training step", ylabel=f"{observable} {metric}")
        ax.title.set_fontsize(8)
        ax.label_outer()
        if log_steps:
            ax.set_xscale("log")
    handles = {}
    for ax in axes:
        for line in ax.get_lines():
            handles.setdefault(line.get_label(), line)
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=8,
               title=pres.label(line_key) if line_key else None, title_fontsize=8)
    for suffix in ("png", "svg"):
        write_figure(path.with_suffix(f".{suffix}"), fig)
    return (f"{observable} {metric} against training step for every point of the sweep (one thin line per seed), "
            f"one panel per {', '.join(pres.label(k) for k in panel_keys)}.")


def headline_table(summary: pd.DataFrame, keys: list[str], pres: Presentation) -> pd.DataFrame:
    """One row per point of the grid, one column per headline metric (mean over seeds), with its
    std over seeds beside it when there are several seeds."""
    seeds = summary.seed.nunique()
    stats = summary.groupby(keys + ["metric"], sort=False).value.agg(["mean", "std"]).unstack("metric")
    metrics = list(dict.fromkeys(summary.metric))
    columns = {}
    for m in metrics:
        columns[pres.label(m) + (" (mean)" if seeds > 1 else "")] = stats[("mean", m)]
        if seeds > 1:
            columns[pres.label(m) + " (std)"] = stats[("std", m)]
    table = pd.DataFrame(columns).reset_index()
    return table.rename(columns={k: pres.label(k) for k in keys}).sort_values([pres.label(k) for k in keys])


def _fixed_settings(sweep: Sweep, pres: Presentation) -> dict[str, Any]:
    """The config keys not swept that apply to at least one point, as the points stored them."""
    fixed: dict[str, Any] = {}
    for run in sweep.point_runs():
        config = run.config
        fixed.update({k: v for k, v in applicable(config, pres.when).items() if k not in sweep.spec.grid})
    return fixed


def sweep_sections(sweep: Sweep, metric: str | None = None) -> list[str]:
    folder = sweep.folder
    spec, summary, pres = sweep.spec, sweep.summary, sweep.presentation
    keys = list(spec.grid)
    fixed = _fixed_settings(sweep, pres)
    out = [f"<h2>Sweep {html.escape(spec.experiment)}</h2>", f"<p><code>{html.escape(str(folder))}</code>: "
           f"{len(spec.points())} points ({spec.seeds} seed(s) each)</p>", *_notes(pres), "<h3>Grid</h3>",
           _table(pd.DataFrame({"key": keys, "values": [", ".join(map(str, v)) for v in spec.grid.values()]})),
           "<h3>Fixed settings</h3>", _config_table(fixed)]
    if summary.empty:
        return out + ["<p>No point has finished yet.</p>"]
    if metric is not None and metric not in set(summary.metric):
        raise GoldstoneError(f"--metric {metric!r}: the sweep has no such headline metric; it has "
                             f"{', '.join(sorted(set(summary.metric)))}")
    metric = metric or (pres.metric if pres.metric in set(summary.metric) else summary.metric.iloc[0])
    shown = {k: v for k, v in fixed.items() if k in pres.labels}
    caption = phase_diagram(summary, keys, metric, pres, folder / "figures" / "phase_diagram.png", shown,
                            sweep.theory)
    out.append(_figure(folder / "figures" / "phase_diagram.png", caption))
    if pres.curve:
        caption = curves(sweep.results, keys, pres, folder / "figures" / "curves.png", fixed)
        out.append(_figure(folder / "figures" / "curves.png", caption))
    out += [_section(folder, item) for item in sweep.sections]
    out += ["<h3>Headline metrics</h3>", _table(headline_table(summary, keys, pres))]
    return out


def sections(view: Run | Sweep, metric: str | None = None) -> list[str]:
    return sweep_sections(view, metric) if hasattr(view, "spec") else run_sections(view)


GENERATOR = "<meta name='generator' content='goldstone'>"
"""Marks a file as a goldstone report: only such a file is replaced without --force."""


def is_report(path: Path) -> bool:
    """Whether `path` holds an HTML report that goldstone wrote."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return GENERATOR in f.read(400)
    except OSError:
        return False


def render(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'>{GENERATOR}<title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "</body></html>\n")


def write_report(view: Run | Sweep, path: str | Path | None = None, metric: str | None = None,
                 force: bool = False) -> Path:
    """Write ``report.html`` (or `path`) for a run or sweep (a `Run` or `Sweep` view of its
    folder); returns its path."""
    own = view.folder / "report.html"  # the folder's own report, whatever wrote it
    path = check_output_file(path if path is not None else own, ".html", lambda p: p == own or is_report(p), force)
    write_text(path, render(f"Goldstone report: {view.folder.name}", sections(view, metric)))
    return path


def write_combined_report(views: list[Run | Sweep], path: Path, title: str, intro: str = "") -> Path:
    """One HTML file with the sections of several runs and sweeps, in order."""
    body = [f"<p>{html.escape(intro)}</p>"] if intro else []
    for view in views:
        body += sections(view)
    write_text(path, render(title, body))
    return path

"""Self-contained HTML reports of a run or a sweep: figures embedded as base64 PNG (GIF for
animations), nothing fetched from a network, every piece of text from configs and data escaped.

A sweep's report draws its phase diagram: a heat map of a headline metric (mean over seeds)
over two swept keys, one panel per value of the other keys, with the experiment's critical
value drawn as a dashed line; with one swept key, a line with a band of +-1 std over seeds
(clipped to the range the seeds reached). Everything comes from the folders (the presentation each
run stores, a sweep's theory curves and sections): a report never imports an experiment. The
figures are drawn by `goldstone.plotting`; the report chooses their layout, labels them from the
presentation, writes them atomically and captions them.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from goldstone import plotting
from goldstone.core.atomic import check_output_file, write_figure, write_text
from goldstone.core.config import applicable
from goldstone.core.errors import GoldstoneError
from goldstone.core.frames import holds, series
from goldstone.lab.presentation import Presentation
from goldstone.plotting import all_numbers, distinct_values, spread_text

if TYPE_CHECKING:  # the views call the report, not the other way round
    from goldstone.lab.views import Run, Sweep

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
th{background:#f3f3f3}figure{margin:1em 0 2em}figcaption{color:#555;font-size:.95em}img{max-width:100%}
code{background:#f3f3f3;padding:0 .2em;overflow-wrap:anywhere}.scroll{overflow-x:auto;max-width:100%}
h1,h2,h3,p,figcaption{overflow-wrap:anywhere}"""
"""Readable on a phone too: tables scroll sideways in their own box, long names wrap."""


def html_table(frame: pd.DataFrame) -> str:
    """`frame` as an HTML table (text escaped, numbers to 4 significant digits) in a box that scrolls
    sideways on a narrow screen."""
    table = frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", border=0, na_rep="")
    return f'<div class="scroll">{table}</div>'


def _figure(image: Path, caption: str) -> str:
    """An embedded PNG or GIF with its caption."""
    data = base64.b64encode(image.read_bytes()).decode()
    kind = image.suffix.lstrip(".")
    return (f'<figure><img alt="{html.escape(image.stem)}" src="data:image/{kind};base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _section(folder: Path, item: dict[str, str]) -> str:
    """A sweep's stored section (`Sweep.sections`: a heading, a table or a figure) as HTML."""
    if "table" in item:
        return html_table(pd.read_parquet(folder / item["table"]))
    if "figure" in item:
        return _figure(folder / item["figure"], item["caption"])
    return f"<h3>{html.escape(item['heading'])}</h3>"


def _config_table(config: dict[str, Any]) -> str:
    return html_table(pd.DataFrame({"key": list(config), "value": [json.dumps(v) for v in config.values()]}))


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
           html_table(pd.DataFrame({"metric": [pres.label(m) for m in headline], "value": list(headline.values())})),
           "<h3>Config</h3>", _config_table(applicable(stored["config"], pres.when))]
    for fig in manifest["figures"]:
        out.append(_figure(folder / "figures" / fig.get("file", f"{fig['name']}.png"), fig["caption"]))
    for table in manifest["tables"]:
        out += [f"<h3>{html.escape(table['name'])}</h3><p>{html.escape(table['caption'])}</p>",
                html_table(run.table(table["name"]))]
    return out


def _layout(keys: list[str], rows: pd.DataFrame, critical: dict[str, float], theory_key: str | None = None
            ) -> tuple[str, str | None, list[str]]:
    """(x key, line key or None, facet keys): x is numeric, preferably the key with a critical
    value, then the key the theory curve is drawn against, then the one with the most values;
    lines are drawn per value of the key with the fewest values (a category first)."""
    numeric = [k for k in keys if all_numbers(distinct_values(rows[k]))]
    preferred = [k for k in numeric if k in critical] + [k for k in numeric if k == theory_key]
    most = max(numeric, key=lambda k: rows[k].nunique()) if numeric else keys[0]
    x_key = preferred[0] if preferred else most
    rest = sorted((k for k in keys if k != x_key), key=lambda k: (k in numeric, rows[k].nunique()))
    return x_key, (rest[0] if rest else None), rest[1:]


def _heatmap_wanted(rows: pd.DataFrame, x_key: str, line_key: str | None) -> bool:
    """Two numeric axes with many values read better as a heat map than as many lines."""
    return line_key is not None and all_numbers(distinct_values(rows[line_key])) and rows[line_key].nunique() > 6


def phase_diagram(summary: pd.DataFrame, keys: list[str], metric: str, pres: Presentation, path: Path,
                  fixed: dict[str, Any] | None = None, theory: pd.DataFrame | None = None) -> str:
    """Draw the phase diagram PNG+SVG of `metric` over the swept `keys`; returns its caption.

    A numeric x axis (the key with a critical value, drawn dashed), one line per value of a second
    key (mean over seeds, band of one std when there are several), one panel per value of the
    others, and the experiment's theory curves (`Sweep.theory`) on a right-hand axis
    (`goldstone.plotting.curves`); two many-valued numeric keys give a heat map on numeric axes
    instead (`goldstone.plotting.phase_diagram`).
    """
    rows = summary[summary.metric == metric]
    fixed = fixed or {}
    x_key, line_key, facet_keys = _layout(keys, rows, pres.critical, pres.theory["key"] if pres.theory else None)
    over = spread_text(rows)
    heatmap = _heatmap_wanted(rows, x_key, line_key)
    theory_drawn = (pres.theory is not None and pres.theory["key"] == x_key and theory is not None
                    and not theory.empty and all_numbers(distinct_values(rows[x_key])))
    title = f"fixed: {', '.join(f'{pres.label(k)} = {v}' for k, v in fixed.items())}" if fixed else None
    common = {"panels": facet_keys, "critical": pres.critical, "labels": pres.labels, "fixed": fixed, "title": title}
    if heatmap:
        fig = plotting.phase_diagram(rows, x_key, line_key, metric, **common)
    else:
        fig = plotting.curves(rows, x_key, metric, line_key, theory=theory if theory_drawn else None,
                              theory_label=pres.theory["label"] if theory_drawn else "theory",
                              theory_axis="same" if theory_drawn and pres.theory["same_axis"] else "right", **common)
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
    a column per x value), one colour per line-key value, one thin line per seed
    (`goldstone.plotting.curves`)."""
    observable, metric = pres.curve
    rows = series(results, observable, metric)
    x_key, line_key, facet_keys = _layout(keys, rows, pres.critical, pres.theory["key"] if pres.theory else None)
    panel_keys = [*facet_keys, x_key]
    fig = plotting.curves(rows, "step", metric, line_key, panels=panel_keys, seeds="lines",
                          labels={**pres.labels, "step": "training step", metric: f"{observable} {metric}"},
                          fixed=fixed, columns=rows[x_key].nunique() if facet_keys else 3, size=(3.0, 2.6),
                          share=True)
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
           f"{sweep.finished()} of {len(spec.points())} points finished ({spec.seeds} seed(s) each)</p>", *_notes(pres), "<h3>Grid</h3>",
           html_table(pd.DataFrame({"key": keys, "values": [", ".join(map(str, v)) for v in spec.grid.values()]})),
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
    if pres.curve and holds(sweep.results, *pres.curve):
        caption = curves(sweep.results, keys, pres, folder / "figures" / "curves.png", fixed)
        out.append(_figure(folder / "figures" / "curves.png", caption))
    out += [_section(folder, item) for item in sweep.sections]
    out += ["<h3>Headline metrics</h3>", html_table(headline_table(summary, keys, pres))]
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
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>{GENERATOR}<title>{html.escape(title)}</title>"
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

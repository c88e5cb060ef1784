"""Self-contained HTML reports of a run or a sweep: figures embedded as base64 PNG, nothing
fetched from a network, every piece of text from configs and data escaped.

A sweep's report draws its phase diagram: a heat map of a headline metric (mean over seeds)
over two swept keys, one panel per value of the other keys, with the experiment's critical
value drawn as a dashed line; with one swept key, a line with a band of +-1 std over seeds.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from goldstone.core.atomic import write_figure, write_text
from goldstone.core.errors import GoldstoneError, RunFolderError
from goldstone.core.registry import get_experiment

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
th{background:#f3f3f3}figure{margin:1em 0 2em}figcaption{color:#555;font-size:.95em}img{max-width:100%}
code{background:#f3f3f3;padding:0 .2em}"""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}", border=0)


def _figure(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(png.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _config_table(config: dict[str, Any]) -> str:
    return _table(pd.DataFrame({"key": list(config), "value": [json.dumps(v) for v in config.values()]}))


def run_sections(folder: Path, level: int = 2) -> list[str]:
    from goldstone.core.run import Run

    run = Run(folder)
    stored, manifest = run.config, run.manifest
    h = f"h{level}"
    out = [f"<{h}>Run {html.escape(stored['experiment'])} (seed {stored['seed']})</{h}>",
           f"<p><code>{html.escape(str(folder))}</code>{'' if run.complete else ' <b>(unfinished)</b>'}</p>",
           "<h3>Headline</h3>", _table(pd.DataFrame({"metric": list(manifest["headline"]),
                                                     "value": list(manifest["headline"].values())})),
           "<h3>Config</h3>", _config_table(stored["config"])]
    for fig in manifest["figures"]:
        out.append(_figure(folder / "figures" / f"{fig['name']}.png", fig["caption"]))
    for table in manifest["tables"]:
        out += [f"<h3>{html.escape(table['name'])}</h3><p>{html.escape(table['caption'])}</p>",
                _table(run.table(table["name"]))]
    return out


def _axis_values(values: pd.Series) -> list:
    return sorted(values.unique(), key=lambda v: (isinstance(v, str), v))


def _critical_position(values: list, critical: float) -> float | None:
    """Where `critical` falls on an axis of evenly spaced cells holding sorted numeric `values`."""
    if not values or not all(isinstance(v, (int, float, np.number)) for v in values):
        return None
    if len(values) == 1 or not values[0] <= critical <= values[-1]:
        return None
    return float(np.interp(critical, values, np.arange(len(values))))


def _theory_overlay(ax: Any, xs: list, theory: tuple, params: dict[str, Any]) -> None:
    """Draw theory f(x) in white over a heat map whose columns hold the numeric values `xs`."""
    _, label, fn = theory
    dense = np.linspace(xs[0], xs[-1], 200)
    twin = ax.twinx()
    twin.plot(np.interp(dense, xs, np.arange(len(xs))), fn(dense, params), color="w", lw=2)
    twin.set_ylabel(label)


def phase_diagram(summary: pd.DataFrame, keys: list[str], metric: str, critical: dict[str, float],
                  path: Path, theory: tuple | None = None, fixed: dict[str, Any] | None = None) -> str:
    """Draw the phase diagram PNG+SVG of `metric` over `keys`; returns its caption."""
    rows = summary[summary.metric == metric]
    if rows.empty:
        raise GoldstoneError(f"no headline metric {metric!r} in this sweep (have: {sorted(summary.metric.unique())})")
    if len(keys) == 1:
        key = keys[0]
        stats = rows.groupby(key).value.agg(["mean", "std"]).reset_index().fillna({"std": 0.0})
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        ax.plot(stats[key], stats["mean"], "o-")
        ax.fill_between(stats[key], stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.3)
        if key in critical:
            ax.axvline(critical[key], color="k", ls="--", label=f"critical {key} = {critical[key]}")
            ax.legend()
        ax.set(xlabel=key, ylabel=metric)
        caption = f"{metric} against {key}: mean over seeds with a band of one standard deviation."
    else:
        x_key = next((k for k in keys if k in critical), keys[0])
        y_key = next(k for k in keys if k != x_key)
        facet_keys = [k for k in keys if k not in (x_key, y_key)]
        facets = list(itertools.product(*(_axis_values(rows[k]) for k in facet_keys))) or [()]
        xs, ys = _axis_values(rows[x_key]), _axis_values(rows[y_key])
        fig, axes = plt.subplots(1, len(facets), figsize=(4.6 * len(facets) + 1, 4.4), squeeze=False,
                                 layout="constrained")
        vmin, vmax = rows.value.min(), rows.value.max()
        for ax, facet in zip(axes[0], facets):
            sel = rows
            for k, v in zip(facet_keys, facet):
                sel = sel[sel[k] == v]
            grid = sel.groupby([y_key, x_key]).value.mean().unstack(x_key).reindex(index=ys, columns=xs)
            image = ax.imshow(grid.to_numpy(float), origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_xticks(range(len(xs)), [f"{v:g}" if not isinstance(v, str) else v for v in xs], rotation=45)
            ax.set_yticks(range(len(ys)), [f"{v:g}" if not isinstance(v, str) else v for v in ys])
            ax.set(xlabel=x_key, ylabel=y_key, title=", ".join(f"{k}={v}" for k, v in zip(facet_keys, facet)))
            for key, positions, draw in ((x_key, xs, ax.axvline), (y_key, ys, ax.axhline)):
                pos = _critical_position(positions, critical[key]) if key in critical else None
                if pos is not None:
                    draw(pos, color="w", ls="--", lw=1.5)
            if theory and theory[0] == x_key and _critical_position(xs, xs[0]) is not None:
                _theory_overlay(ax, xs, theory, {**(fixed or {}), **dict(zip(facet_keys, facet))})
        fig.colorbar(image, ax=axes[0].tolist(), label=f"{metric} (mean over seeds)", location="bottom",
                     shrink=0.6, aspect=40)
        lines = [f"{k} = {v}" for k, v in critical.items() if k in (x_key, y_key)]
        caption = (f"Phase diagram of {metric} (mean over seeds) over {x_key} and {y_key}"
                   + (f", one panel per {', '.join(facet_keys)}" if facet_keys else "")
                   + (f"; dashed: the theory's critical {' and '.join(lines)}" if lines else "")
                   + (f"; white line: {theory[1]} (right axis)" if theory and theory[0] == x_key else "") + ".")
    for suffix in ("png", "svg"):
        write_figure(path.with_suffix(f".{suffix}"), fig)
    plt.close(fig)
    return caption


def curves(results: pd.DataFrame, keys: list[str], observable: str, metric: str, path: Path) -> str:
    """`metric` against step for every point, one panel per value of the first key."""
    rows = results[(results.observable == observable) & (results.metric == metric)]
    panel_key, colour_keys = keys[-1], keys[:-1]
    panels = _axis_values(rows[panel_key])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.2), squeeze=False, sharey=True)
    for ax, value in zip(axes[0], panels):
        for label, group in rows[rows[panel_key] == value].groupby(colour_keys + ["seed"] if colour_keys else ["seed"]):
            label = label if isinstance(label, tuple) else (label,)
            ax.plot(group.step, group.value, lw=1, label=", ".join(map(str, label)))
        ax.set(title=f"{panel_key}={value}", xlabel="step", ylabel=f"{observable} {metric}")
        positive = rows.step[rows.step > 0]
        if len(positive) and positive.max() > 100 * positive.min():  # log-spaced checkpoints
            ax.set_xscale("log")
    axes[0][-1].legend(fontsize=7, title=", ".join(colour_keys + ["seed"]), title_fontsize=7)
    for suffix in ("png", "svg"):
        write_figure(path.with_suffix(f".{suffix}"), fig)
    plt.close(fig)
    return f"{observable} {metric} against training step for every point of the sweep, one panel per {panel_key}."


def sweep_sections(folder: Path, metric: str | None = None) -> list[str]:
    from goldstone.core.sweep import Sweep

    sweep = Sweep(folder)
    spec, summary = sweep.spec, sweep.summary
    exp = get_experiment(spec.experiment)
    keys = list(spec.grid)
    out = [f"<h2>Sweep {html.escape(spec.experiment)}</h2>", f"<p><code>{html.escape(str(folder))}</code>: "
           f"{len(spec.points())} points ({spec.seeds} seed(s) each)</p>", "<h3>Grid</h3>",
           _table(pd.DataFrame({"key": keys, "values": [", ".join(map(str, v)) for v in spec.grid.values()]}))]
    if summary.empty:
        return out + ["<p>No point has finished yet.</p>"]
    metric = metric or summary.metric.iloc[0]
    caption = phase_diagram(summary, keys, metric, exp.critical, folder / "figures" / "phase_diagram.png",
                            exp.theory, spec.overrides)
    out.append(_figure(folder / "figures" / "phase_diagram.png", caption))
    if exp.curve:
        caption = curves(sweep.results, keys, *exp.curve, folder / "figures" / "curves.png")
        out.append(_figure(folder / "figures" / "curves.png", caption))
    table = summary.groupby(keys + ["metric"]).value.agg(["mean", "std", "count"]).reset_index()
    out += ["<h3>Headline metrics (over seeds)</h3>", _table(table)]
    return out


def sections(folder: Path, metric: str | None = None) -> list[str]:
    from goldstone.core.run import CONFIG
    from goldstone.core.sweep import SPEC

    if (folder / SPEC).exists():
        return sweep_sections(folder, metric)
    if (folder / CONFIG).exists():
        return run_sections(folder)
    raise RunFolderError(f"{folder} holds neither a run ({CONFIG}) nor a sweep ({SPEC})")


def render(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "</body></html>\n")


def write_report(folder: str | Path, path: str | Path | None = None, metric: str | None = None) -> Path:
    """Write ``report.html`` (or `path`) for a run or sweep folder; returns its path."""
    folder = Path(folder)
    path = Path(path) if path is not None else folder / "report.html"
    write_text(path, render(f"Goldstone report: {folder.name}", sections(folder, metric)))
    return path


def write_combined_report(folders: list[Path], path: Path, title: str, intro: str = "") -> Path:
    """One HTML file with the sections of several run and sweep folders, in order."""
    body = [f"<p>{html.escape(intro)}</p>"] if intro else []
    for folder in folders:
        body += sections(Path(folder))
    write_text(path, render(title, body))
    return path

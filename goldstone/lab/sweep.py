"""Sweeps: every point of a parameter grid (times seeds) is a run inside the sweep folder.

``sweep.json`` records the spec; ``points/<id>/`` are the runs; ``results.parquet`` gathers all
their metrics in one tidy table (swept keys and seed as columns) and ``summary.parquet`` their
headline numbers; ``theory.parquet`` and ``sections.json`` hold what the report draws from the
experiment's code. A sweep resumes: finished points are skipped, unfinished ones resumed. Points
run seed by seed (`run_order`), so a sweep stopped part-way holds whole comparisons.
Points run in this process, in worker processes (`goldstone.lab.workers`), or as Ray tasks. Every point runs on one
torch thread whatever the backend, so its numbers do not depend on how the sweep was scheduled.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from goldstone.core.atomic import write_json, write_parquet, write_text
from goldstone.core.config import config_dict, resolve_config
from goldstone.core.device import resolve_device
from goldstone.core.errors import ConfigError, DivergedError, FolderInUseError, RunFolderError
from goldstone.core.extras import require_extra
from goldstone.core.memory import check_memory
from goldstone.lab.lock import claimed_folder, foreign_entries
from goldstone.core.progress import Bar, log
from goldstone.lab.registry import Experiment, Theory, get_experiment
from goldstone.lab.run import execute
from goldstone.lab.views import (CONFIG, DIVERGED, DONE, PROGRESS, SECTIONS, SPEC, THEORY, Run, Sweep, SweepSpec,
                                 point_id, read_json)
from goldstone.lab.workers import run_tasks


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``key=v1,v2,...`` (a list) or ``key=start:stop:num`` (num values, both ends included)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, spec = item.partition("=")
        key = key.strip()
        if not sep or not key or not spec.strip():
            raise ConfigError(f"--grid {item!r}: expected key=v1,v2,... or key=start:stop:num")
        if key in grid:
            raise ConfigError(f"--grid: key {key!r} given twice")
        parts = spec.split(":")
        if len(parts) == 3:
            try:
                start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError as err:
                raise ConfigError(f"--grid {item!r}: start:stop:num needs two numbers and an integer") from err
            if not (np.isfinite(start) and np.isfinite(stop)):
                raise ConfigError(f"--grid {item!r}: start and stop must be finite numbers")
            if num < 1:
                raise ConfigError(f"--grid {item!r}: num must be >= 1")
            grid[key] = [f"{v:.6g}" for v in np.linspace(start, stop, num)]
        elif len(parts) != 1:
            raise ConfigError(f"--grid {item!r}: a range is start:stop:num (num values, both ends included), "
                              f"e.g. {key}={parts[0]}:{parts[-1]}:5; a list is {key}=v1,v2,...")
        else:
            grid[key] = [v.strip() for v in spec.split(",") if v.strip()]
            if not grid[key]:
                raise ConfigError(f"--grid {item!r}: no values")
    return grid


def run_point(experiment: str, overrides: dict[str, Any], folder: str, seed: int, device: str,
              force: bool = False) -> str:
    """Run (or resume) one point on one torch thread; returns its folder. A point whose loss turns
    non-finite is a result of the sweep, not a failure: its folder gets ``DIVERGED`` (step, message)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        execute(experiment, overrides, None, folder, seed, device, resume=(Path(folder) / CONFIG).exists(), quiet=True,
                force=force)
    except DivergedError as err:
        Path(folder).mkdir(parents=True, exist_ok=True)
        write_text(Path(folder) / DIVERGED, f"{err.step}\n{err}\n")
    finally:
        torch.set_num_threads(threads)
    return folder


RUN_POINT = "goldstone.lab.sweep:run_point"
"""What a worker runs for each point."""


def _share_done(folder: Path) -> float:
    """The share of a point's steps done, from its progress.json (0 before it starts)."""
    try:
        state = json.loads((folder / PROGRESS).read_text())
        return min(float(state["done"]) / float(state["total"]), 1.0)
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return 0.0


class _Tracker:
    """Advances a sweep's bar by finished points plus the share done of the running ones, read
    from their progress files every `poll` seconds on a background thread (any backend)."""

    def __init__(self, bar: Bar, folders: list[Path], poll: float = 0.5):
        self.bar, self.folders, self.poll = bar, folders, poll
        self.finished: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh_until_stopped, daemon=True)

    def done(self, i: int) -> None:
        self.finished.add(i)
        self.refresh()

    def refresh(self) -> None:
        running = sum(_share_done(f) for i, f in enumerate(self.folders) if i not in self.finished)
        self.bar.update(len(self.finished) + running)

    def _refresh_until_stopped(self) -> None:
        while not self._stop.wait(self.poll):
            self.refresh()

    def __enter__(self) -> _Tracker:
        if self.bar.active:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def gather(sweep: Sweep, exp: Experiment) -> None:
    """Concatenate every finished point's metrics and headline numbers into tidy tables; store the
    experiment's theory curves and its own report sections."""
    frames, rows, configs = [], [], []
    for point, folder in sweep.point_folders():
        if (folder / DIVERGED).exists():
            config = config_dict(resolve_config(exp.config, {**sweep.spec.overrides, **point["values"]}, None, exp.name))
            step = int((folder / DIVERGED).read_text().split("\n", 1)[0])
            rows.append({**{k: config[k] for k in point["values"]}, "seed": point["seed"], "metric": "diverged_at_step",
                         "value": step})
        if not (folder / DONE).exists():
            continue
        run = Run(folder)
        config = run.config
        configs.append(config)
        labels = {**{k: config[k] for k in point["values"]}, "seed": point["seed"]}
        frames.append(run.metrics.assign(**labels))
        rows.extend({**labels, "metric": k, "value": v} for k, v in run.manifest["headline"].items())
    write_parquet(sweep.folder / "results.parquet", pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
    write_parquet(sweep.folder / "summary.parquet", pd.DataFrame(rows))
    if exp.theory:
        write_parquet(sweep.folder / THEORY, theory_curves(exp.theory, list(sweep.spec.grid), configs))
    if exp.sweep_summary:
        write_json(sweep.folder / SECTIONS, stored_sections(sweep.folder, exp.sweep_summary(sweep.folder)))


def gather_finished(sweep: Sweep) -> bool:
    """Gather the points finished so far (`goldstone report` on a sweep that was interrupted or is
    still running); False, gathering nothing, while another process holds the folder."""
    try:
        with claimed_folder(sweep.folder):
            gather(sweep, get_experiment(sweep.spec.experiment))
    except FolderInUseError:
        return False
    return True


def theory_curves(theory: Theory, keys: list[str], configs: list[dict[str, Any]]) -> pd.DataFrame:
    """`theory` over the range its key spans in `configs` (200 points), once per combination of the
    other swept `keys` (given the full config of its first point): their values, name, x, y. Empty
    unless the key is swept and numeric."""
    xs = [config[theory.key] for config in configs] if theory.key in keys else []
    if not xs or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
        return pd.DataFrame()
    dense = np.linspace(min(xs), max(xs), 200)
    others = [k for k in keys if k != theory.key]
    frames: dict[tuple, pd.DataFrame] = {}
    for config in configs:
        combo = tuple(config[k] for k in others)
        if combo not in frames:
            params = {k: v for k, v in config.items() if k != theory.key}
            frames[combo] = pd.DataFrame({**dict(zip(others, combo)), "name": theory.name(params) or theory.label,
                                          "x": dense, "y": np.asarray(theory.fn(dense, params), dtype=float)})
    return pd.concat(frames.values(), ignore_index=True)


def stored_sections(folder: Path, items: list[Any]) -> list[dict[str, str]]:
    """An experiment's sweep sections (headings, DataFrames, (image path, caption)) as `Sweep.sections`
    reads them; tables are written to ``tables/section_<i>.parquet``."""
    out: list[dict[str, str]] = []
    for i, item in enumerate(items):
        if isinstance(item, pd.DataFrame):
            out.append({"table": f"tables/section_{i}.parquet"})
            write_parquet(folder / out[-1]["table"], item)
        elif isinstance(item, tuple):
            out.append({"figure": Path(item[0]).relative_to(folder).as_posix(), "caption": item[1]})
        else:
            out.append({"heading": item})
    return out


def default_sweep_folder(spec: SweepSpec, root: str | Path = "runs") -> Path:
    """``runs/sweep-<experiment>-<hash of the spec>``; the seed count is left out of the hash, so that
    the same command with more ``--seeds`` extends the same folder."""
    identity = {**spec.to_json(), "seeds": None}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / f"sweep-{spec.experiment}-{digest}"


def execute_sweep(spec: SweepSpec, out: str | Path | None = None, workers: int = 1, backend: str = "local",
                  ray_address: str | None = None, quiet: bool = False, force: bool = False) -> Sweep:
    """Validate every point (its memory estimate too, times the local workers running side by side,
    unless `force`), then run the unfinished ones; the engine of ``goldstone sweep``."""
    exp = get_experiment(spec.experiment)
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend must be local or ray, got {backend!r}")
    if backend == "ray":
        require_extra("ray", "--backend ray")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if spec.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {spec.seeds}")
    if not spec.grid:
        raise ConfigError("a sweep needs at least one --grid key=values")
    configs = [resolve_config(exp.config, {**spec.overrides, **point["values"]}, None, spec.experiment)
               for point in spec.points()]
    device = resolve_device(spec.device)
    for config in configs:
        check_memory(config, device, force, min(workers, len(configs)) if backend == "local" else 1)
    folder = Path(out) if out is not None else default_sweep_folder(spec)
    with claimed_folder(folder):
        _claim(folder, spec, quiet)
        sweep = Sweep(folder.resolve())  # absolute: Ray workers need not share our working directory
        _run_points(sweep, spec, workers, backend, ray_address, quiet, force)
        gather(sweep, exp)
    diverged = [path / DIVERGED for _, path in sweep.point_folders() if (path / DIVERGED).exists()]
    if diverged:
        log(f"{len(diverged)} of {len(spec.points())} points stopped on a NaN or infinite loss (metric "
            f"diverged_at_step in the summary; e.g. {diverged[0]})", quiet)
    return sweep


def _claim(folder: Path, spec: SweepSpec, quiet: bool = False) -> None:
    """Write the spec into a new sweep folder, or check that an existing one holds this sweep. More
    seeds than the folder's extend it: its finished points are kept and the new seeds added."""
    if (folder / SPEC).exists():
        stored, wanted = read_json(folder / SPEC), json.loads(json.dumps(spec.to_json()))  # as JSON stores it
        diff = [k for k in wanted if not isinstance(stored, dict) or stored.get(k) != wanted[k]]
        if stored == wanted:
            return
        if diff == ["seeds"] and isinstance(stored.get("seeds"), int) and stored["seeds"] < spec.seeds:
            _rename_points(folder, spec)
            write_json(folder / SPEC, spec.to_json())
            log(f"{folder}: extended from {stored['seeds']} to {spec.seeds} seeds (finished points kept)", quiet)
        else:
            raise RunFolderError(f"{folder} holds a different sweep (differs in: {', '.join(diff)}); refusing to use it")
    elif foreign_entries(folder):
        raise RunFolderError(f"{folder} is not empty and holds no goldstone sweep; refusing to write there")
    else:
        write_json(folder / SPEC, spec.to_json())


def _rename_points(folder: Path, spec: SweepSpec) -> None:
    """Move the point folders in `folder` to the names they take in `spec` (a point's folder name
    starts with its index, which more seeds change; the rest of the name identifies the point).
    Renames only, before the new spec is written: killed half-way, any rerun finishes them."""
    names = [point_id(i, p) for i, p in enumerate(spec.points())]
    points = {name.split("-", 1)[1]: name for name in names}
    if len(points) < len(names):
        raise RunFolderError(f"{folder}: two points of this sweep share a folder name once their values are "
                             "written as file names; extend it into a new --out instead")
    for path in sorted((folder / "points").glob("p[0-9][0-9][0-9][0-9]-*")):
        target = path.with_name(points.get(path.name.split("-", 1)[1], path.name))
        if path != target and not target.exists():
            path.rename(target)


def run_order(points: list[tuple[dict[str, Any], Path]]) -> list[tuple[dict[str, Any], Path]]:
    """The order points run in: those already started first (their progress is not left waiting),
    then seed by seed, every grid point of seed 0 before any of seed 1, so that a sweep stopped
    part-way holds whole comparisons rather than all seeds of a few points."""
    return sorted(points, key=lambda item: (not (item[1] / CONFIG).exists(), item[0]["seed"]))


def _run_points(sweep: Sweep, spec: SweepSpec, workers: int, backend: str, ray_address: str | None,
                quiet: bool, force: bool) -> None:
    todo = run_order([(point, path) for point, path in sweep.point_folders()
                      if not (path / DONE).exists() and not (path / DIVERGED).exists()])
    tasks = [{"experiment": spec.experiment, "overrides": {**spec.overrides, **point["values"]}, "folder": str(path),
              "seed": point["seed"], "device": spec.device, "force": force} for point, path in todo]
    workers = min(workers, len(tasks)) if tasks else workers
    label = (f"sweep {spec.experiment}: {len(tasks)} of {len(spec.points())} points to run"
             f"{f' on {workers} workers' if workers > 1 else ''}")
    with Bar(label, len(tasks), "points", quiet) as bar, _Tracker(bar, [path for _, path in todo]) as tracker:
        run_tasks(tasks, RUN_POINT, workers, backend, ray_address, sweep.folder / "workers.log", tracker.done)

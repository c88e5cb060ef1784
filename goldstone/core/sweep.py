"""Sweeps: every point of a parameter grid (times seeds) is a run inside the sweep folder.

``sweep.json`` records the spec; ``points/<id>/`` are the runs; ``results.parquet`` gathers all
their metrics in one tidy table (swept keys and seed as columns) and ``summary.parquet`` their
headline numbers. A sweep resumes: finished points are skipped, unfinished ones resumed.
Points run in this process, in a local process pool, or as Ray tasks. Every point runs on one
torch thread whatever the backend, so its numbers do not depend on how the sweep was scheduled.
"""

from __future__ import annotations

import concurrent.futures as futures
import ctypes
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from goldstone.core.atomic import write_json, write_parquet
from goldstone.core.config import resolve_config
from goldstone.core.errors import ConfigError, GoldstoneError, RunFolderError
from goldstone.core.progress import progress
from goldstone.core.registry import get_experiment
from goldstone.core.run import CONFIG, DONE, Run, execute

SPEC = "sweep.json"


@dataclasses.dataclass
class SweepSpec:
    experiment: str
    grid: dict[str, list[Any]]
    seeds: int = 1
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    device: str = "cpu"

    def points(self) -> list[dict[str, Any]]:
        """Every combination of grid values, for seeds 0 .. seeds-1, in a fixed order."""
        keys = list(self.grid)
        return [{"values": dict(zip(keys, combo)), "seed": seed}
                for combo in itertools.product(*(self.grid[k] for k in keys)) for seed in range(self.seeds)]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
            if num < 1:
                raise ConfigError(f"--grid {item!r}: num must be >= 1")
            grid[key] = [f"{v:.6g}" for v in np.linspace(start, stop, num)]
        else:
            grid[key] = [v.strip() for v in spec.split(",") if v.strip()]
    return grid


def point_id(index: int, point: dict[str, Any]) -> str:
    text = "-".join(f"{k}={v}" for k, v in point["values"].items())
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", f"p{index:04d}-{text}-seed{point['seed']}")


def _die_with_parent() -> None:
    """Worker initialiser: one torch thread, and SIGKILL when the sweep process dies (Linux)."""
    torch.set_num_threads(1)
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_point(experiment: str, overrides: dict[str, Any], folder: str, seed: int, device: str) -> str:
    """Run (or resume) one point on one torch thread; returns its folder."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        execute(experiment, overrides, None, folder, seed, device, resume=(Path(folder) / CONFIG).exists(), quiet=True)
    finally:
        torch.set_num_threads(threads)
    return folder


def _run_ray(tasks: list[tuple], workers: int, address: str | None, quiet: bool) -> None:
    try:
        import ray
    except ImportError as err:
        raise GoldstoneError("--backend ray needs Ray: pip install 'goldstone[ray]'") from err
    started = not ray.is_initialized()
    if started:
        kwargs = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
        ray.init(**kwargs, log_to_driver=False, logging_level="ERROR")
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_point)
        pending = [remote.remote(*t) for t in tasks]
        for _ in progress(range(len(tasks)), "sweep (ray)", quiet):
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done)
    finally:
        if started:
            ray.shutdown()


def _run_local(tasks: list[tuple], workers: int, quiet: bool) -> None:
    if workers == 1:
        for task in progress(tasks, "sweep", quiet):
            run_point(*task)
        return
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent) as pool:
        jobs = [pool.submit(run_point, *t) for t in tasks]
        for job in progress(futures.as_completed(jobs), "sweep", quiet, total=len(jobs)):
            job.result()


class Sweep:
    """A sweep folder: its spec, points, gathered results and report."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / SPEC).exists():
            raise RunFolderError(f"{self.folder} holds no goldstone sweep ({SPEC} missing)")

    @property
    def spec(self) -> SweepSpec:
        return SweepSpec(**json.loads((self.folder / SPEC).read_text()))

    def point_folders(self) -> list[tuple[dict[str, Any], Path]]:
        return [(p, self.folder / "points" / point_id(i, p)) for i, p in enumerate(self.spec.points())]

    @property
    def results(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "results.parquet")

    @property
    def summary(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "summary.parquet")

    def gather(self) -> None:
        """Concatenate every finished point's metrics and headline numbers into tidy tables."""
        frames, rows = [], []
        for point, folder in self.point_folders():
            if not (folder / DONE).exists():
                continue
            run = Run(folder)
            config = run.config["config"]
            labels = {**{k: config[k] for k in point["values"]}, "seed": point["seed"]}
            frames.append(run.metrics.assign(**labels))
            rows.extend({**labels, "metric": k, "value": v} for k, v in run.manifest["headline"].items())
        write_parquet(self.folder / "results.parquet", pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())
        write_parquet(self.folder / "summary.parquet", pd.DataFrame(rows))

    def report(self, path: str | Path | None = None, metric: str | None = None) -> Path:
        from goldstone.core.report import write_report

        return write_report(self.folder, path, metric=metric)

    def __repr__(self) -> str:
        return f"Sweep({str(self.folder)!r}, points={len(self.spec.points())})"


def default_sweep_folder(spec: SweepSpec, root: str | Path = "runs") -> Path:
    digest = hashlib.sha256(json.dumps(spec.to_json(), sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / f"sweep-{spec.experiment}-{digest}"


def execute_sweep(spec: SweepSpec, out: str | Path | None = None, workers: int = 1, backend: str = "local",
                  ray_address: str | None = None, quiet: bool = False) -> Sweep:
    """Validate every point, then run the unfinished ones; the engine of ``goldstone sweep``."""
    exp = get_experiment(spec.experiment)
    if backend not in ("local", "ray"):
        raise ConfigError(f"--backend must be local or ray, got {backend!r}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if spec.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {spec.seeds}")
    if not spec.grid:
        raise ConfigError("a sweep needs at least one --grid key=values")
    for point in spec.points():
        resolve_config(exp.config, {**spec.overrides, **point["values"]}, None, spec.experiment)
    folder = Path(out) if out is not None else default_sweep_folder(spec)
    if (folder / SPEC).exists():
        stored = json.loads((folder / SPEC).read_text())
        if stored != json.loads(json.dumps(spec.to_json())):
            diff = [k for k in spec.to_json() if stored.get(k) != json.loads(json.dumps(spec.to_json()[k]))]
            raise RunFolderError(f"{folder} holds a different sweep (differs in: {', '.join(diff)}); refusing to use it")
    elif folder.exists() and any(folder.iterdir()):
        raise RunFolderError(f"{folder} is not empty and holds no goldstone sweep; refusing to write there")
    else:
        write_json(folder / SPEC, spec.to_json())
    sweep = Sweep(folder.resolve())  # absolute: Ray workers need not share our working directory
    tasks = [(spec.experiment, {**spec.overrides, **point["values"]}, str(path), point["seed"], spec.device)
             for point, path in sweep.point_folders() if not (path / DONE).exists()]
    if tasks:
        if backend == "ray":
            _run_ray(tasks, workers, ray_address, quiet)
        else:
            _run_local(tasks, min(workers, len(tasks)), quiet)
    sweep.gather()
    return sweep

"""Read-only views of run and sweep folders and the names of what they hold.

A run folder holds ``config.json`` (config, seed, device, package versions, presentation),
``metrics.parquet`` (long form), ``arrays/*.safetensors``, ``figures/*.png|svg|gif``,
``tables/*.parquet``, ``checkpoints/step_*/``, ``progress.json`` while it trains and, written last,
``DONE`` (or ``DIVERGED``, the step and the message, where a sweep's point stopped on a non-finite
loss). A sweep folder holds ``sweep.json``, one run per point under ``points/``,
``results.parquet``, ``summary.parquet`` and what its report draws from the experiment's code:
``theory.parquet`` (the theory curves) and ``sections.json`` (the experiment's own sections).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file

from goldstone.core.errors import RunFolderError
from goldstone.lab.presentation import Presentation
from goldstone.lab.report import write_report

CONFIG, METRICS, MANIFEST, DONE, PROGRESS = "config.json", "metrics.parquet", "manifest.json", "DONE", "progress.json"
DIVERGED = "DIVERGED"
SPEC, THEORY, SECTIONS = "sweep.json", "theory.parquet", "sections.json"


def read_json(path: Path) -> Any:
    """JSON from `path`, or a `RunFolderError` naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RunFolderError(f"{path}: cannot be read as JSON ({err}); the folder was left as it is") from err


def read_stored(folder: Path) -> dict[str, Any]:
    """The run identity in ``folder/config.json``, or a `RunFolderError` saying what is wrong with it."""
    path = folder / CONFIG
    stored = read_json(path)
    if not (isinstance(stored, dict) and isinstance(stored.get("config"), dict) and "experiment" in stored
            and isinstance(stored.get("seed"), int)):
        raise RunFolderError(f"{path} is not a goldstone run's config (no experiment, seed and config); "
                             "the folder was left as it is")
    return stored


class Run:
    """A finished (or unfinished) run folder, read lazily."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / CONFIG).exists():
            raise RunFolderError(f"{self.folder} holds no goldstone run ({CONFIG} missing)")

    @property
    def stored(self) -> dict[str, Any]:
        """Everything config.json holds: experiment, seed, config, device, package versions."""
        return read_stored(self.folder)

    @property
    def config(self) -> dict[str, Any]:
        """The experiment's config (every key, as run)."""
        return self.stored["config"]

    @property
    def experiment(self) -> str:
        return self.stored["experiment"]

    @property
    def seed(self) -> int:
        return int(self.stored["seed"])

    @property
    def versions(self) -> dict[str, str]:
        """Python and package versions the run was started with."""
        return self.stored["versions"]

    @property
    def presentation(self) -> Presentation:
        """Labels, critical values, notes, ... of the run's experiment, as stored with the run."""
        return Presentation.from_json(self.stored.get("presentation"))

    @property
    def complete(self) -> bool:
        return (self.folder / DONE).exists()

    @property
    def metrics(self) -> pd.DataFrame:
        """Every logged row (step, observable, metric, <index columns>, value); no rows for a run
        that has not logged yet."""
        path = self.folder / METRICS
        if not path.exists():
            return pd.DataFrame(columns=["step", "observable", "metric", "value"])
        return pd.read_parquet(path)

    @property
    def manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        manifest = read_json(path) if path.exists() else {"figures": [], "tables": [], "headline": {}}
        if not (isinstance(manifest, dict) and {"figures", "tables", "headline"} <= set(manifest)):
            raise RunFolderError(f"{path} is not a goldstone run's manifest; the folder was left as it is")
        return manifest

    @property
    def arrays(self) -> dict[str, dict[str, torch.Tensor]]:
        return {p.stem: load_file(str(p)) for p in sorted((self.folder / "arrays").glob("*.safetensors"))}

    def table(self, name: str) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "tables" / f"{name}.parquet")

    def report(self, path: str | Path | None = None, force: bool = False) -> Path:
        """Write the run's HTML report (``report.html`` in its folder, or `path`); returns its path."""
        return write_report(self, path, force=force)

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}, complete={self.complete})"


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


def point_id(index: int, point: dict[str, Any]) -> str:
    text = "-".join(f"{k}={v}" for k, v in point["values"].items())
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", f"p{index:04d}-{text}-seed{point['seed']}")


class Sweep:
    """A sweep folder: its spec, points, gathered results and report."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / SPEC).exists():
            raise RunFolderError(f"{self.folder} holds no goldstone sweep ({SPEC} missing)")

    @property
    def spec(self) -> SweepSpec:
        spec = read_json(self.folder / SPEC)
        try:
            return SweepSpec(**spec)
        except TypeError as err:
            raise RunFolderError(f"{self.folder / SPEC} is not a goldstone sweep's spec ({err})") from err

    def point_folders(self) -> list[tuple[dict[str, Any], Path]]:
        return [(p, self.folder / "points" / point_id(i, p)) for i, p in enumerate(self.spec.points())]

    def finished(self) -> int:
        """How many points have finished."""
        return sum((folder / DONE).exists() for _, folder in self.point_folders())

    def point_runs(self) -> list[Run]:
        """The runs of the points started so far."""
        return [Run(folder) for _, folder in self.point_folders() if (folder / CONFIG).exists()]

    @property
    def results(self) -> pd.DataFrame:
        """Every finished point's metrics (empty until the sweep has gathered them)."""
        path = self.folder / "results.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

    @property
    def summary(self) -> pd.DataFrame:
        """Every finished point's headline numbers (empty until the sweep has gathered them)."""
        path = self.folder / "summary.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

    @property
    def presentation(self) -> Presentation:
        """The presentation stored with the first point that has started."""
        started = [folder for _, folder in self.point_folders() if (folder / CONFIG).exists()]
        return Run(started[0]).presentation if started else Presentation()

    @property
    def theory(self) -> pd.DataFrame:
        """The theory curve of every combination of the other swept keys: their values, name, x, y
        (empty when the experiment has none, or the sweep has not gathered)."""
        path = self.folder / THEORY
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

    @property
    def sections(self) -> list[dict[str, str]]:
        """The experiment's own report sections: ``{"heading": text}``, ``{"table": parquet path}`` or
        ``{"figure": image path, "caption": text}``, paths relative to the sweep folder."""
        path = self.folder / SECTIONS
        return read_json(path) if path.exists() else []

    def report(self, path: str | Path | None = None, metric: str | None = None, force: bool = False) -> Path:
        """Write the sweep's HTML report (``report.html`` in its folder, or `path`), its phase
        diagram showing `metric`; returns its path."""
        return write_report(self, path, metric, force)

    def __repr__(self) -> str:
        return f"Sweep({str(self.folder)!r}, points={len(self.spec.points())})"


def open_folder(folder: str | Path) -> Run | Sweep:
    """The `Sweep` or `Run` a folder holds."""
    folder = Path(folder)
    if (folder / SPEC).exists():
        return Sweep(folder)
    if (folder / CONFIG).exists():
        return Run(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder}: no such folder")
    raise RunFolderError(f"{folder} holds neither a run ({CONFIG}) nor a sweep ({SPEC})")

"""Runs: one experiment, one config, one folder.

A run folder holds ``config.json`` (config, seed, package versions, and how reports present the
run), ``metrics.parquet`` (long form), ``arrays/*.safetensors``, ``figures/*.png|svg|gif``,
``tables/*.parquet``, ``checkpoints/step_*/`` and, written last, ``DONE``. Every file is written
atomically; a run killed at any moment continues from its newest checkpoint with ``resume=True``
and ends with the same metrics, bit for bit on CPU.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import platform
import random
import shutil
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from goldstone.core.atomic import write_figure, write_gif, write_json, write_parquet, write_safetensors, write_text
from goldstone.core.checkpoint import load_checkpoint, save_checkpoint
from goldstone.core.config import config_dict, resolve_config
from goldstone.core.device import resolve_device
from goldstone.core.errors import ConfigError, GoldstoneError, RunFolderError
from goldstone.core.extras import require_extra
from goldstone.core.memory import check_memory
from goldstone.lab.lock import claimed_folder, foreign_entries
from goldstone.core.progress import library_bars_off, log, progress
from goldstone.lab.registry import Experiment, get_experiment
from goldstone.core.result import Result
from goldstone.lab.views import CONFIG, DONE, MANIFEST, METRICS, PROGRESS, Run, read_stored

PROGRESS_EVERY = 0.5
"""Seconds between two writes of a run's progress.json."""
SYNC_EVERY = 100
"""Rows `RunContext.log_tensor` holds on the device before copying their values to the host at once."""
PACKAGES = ("goldstone", "torch", "numpy", "scipy", "pandas", "pyarrow", "safetensors", "matplotlib")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_identity(experiment: str, config: Any, seed: int) -> dict[str, Any]:
    """What must match for two runs to be the same run."""
    return {"experiment": experiment, "seed": seed, "config": config_dict(config)}


def default_folder(identity: dict[str, Any], root: str | Path = "runs") -> Path:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / f"{identity['experiment']}-{digest}"


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    flat_old = {"experiment": old["experiment"], "seed": old["seed"], **old["config"]}
    flat_new = {"experiment": new["experiment"], "seed": new["seed"], **new["config"]}
    return [f"{k}: {flat_old.get(k)!r} -> {flat_new.get(k)!r}"
            for k in sorted(set(flat_old) | set(flat_new)) if flat_old.get(k) != flat_new.get(k)]


class RunContext:
    """What an experiment function receives: its config, device, seed, and the run's outputs."""

    def __init__(self, folder: Path, experiment: str, config: Any, seed: int, device: torch.device, quiet: bool):
        self.folder, self.experiment, self.config = folder, experiment, config
        self.seed, self.device, self.quiet = seed, device, quiet
        self._frames: list[pd.DataFrame] = []
        self._rows: list[dict[str, Any]] = []  # `log` rows not yet in a frame
        self._held: list[tuple[dict[str, Any], torch.Tensor]] = []  # `log_tensor` rows and their values
        self._manifest: dict[str, Any] = {"figures": [], "tables": [], "headline": {}}

    # -- metrics ---------------------------------------------------------------------------
    def log(self, step: int, observable: str, value: float, metric: str = "value", **index: int) -> None:
        """One scalar row: ``(step, observable, metric, **index, value)``. Rows stay plain dicts
        until the metrics are read: a small pandas frame per step, kept for the whole run between
        the step's large tensors, fragments the heap (7 MB more resident memory per step of a
        copy task at T_max = 200)."""
        self._rows.append({"step": step, "observable": observable, "metric": metric, **index, "value": float(value)})

    def log_tensor(self, step: int, observable: str, value: torch.Tensor, metric: str = "value", **index: int) -> None:
        """`log` for a scalar tensor (a training loss) without a device sync per call: the row takes
        its place now, and its value is copied to the host with those of the other held rows every
        `SYNC_EVERY` rows and whenever the metrics are read (so before every checkpoint and at the end)."""
        row = {"step": step, "observable": observable, "metric": metric, **index, "value": None}
        self._rows.append(row)
        self._held.append((row, value.detach()))
        if len(self._held) >= SYNC_EVERY:
            self._sync()

    def _sync(self) -> None:
        """Fill the held rows' values, in one transfer."""
        if self._held:
            for (row, _), value in zip(self._held, torch.stack([v for _, v in self._held]).tolist()):
                row["value"] = value
            self._held = []

    def log_frame(self, frame: pd.DataFrame) -> None:
        self._flush_rows()
        self._frames.append(frame)

    def log_results(self, step: int, results: list[Result]) -> None:
        for result in results:
            self.log_frame(result.to_frame(step))

    def _flush_rows(self) -> None:
        self._sync()
        if self._rows:
            self._frames.append(pd.DataFrame(self._rows))
            self._rows = []

    @property
    def metrics(self) -> pd.DataFrame:
        self._flush_rows()
        frames = [f for f in self._frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=["step", "observable", "metric", "value"])
        frame = pd.concat(frames, ignore_index=True)
        self._frames = [frame]  # later calls concatenate onto this, as after a restore
        columns = ["step", "observable", "metric"] + [c for c in frame.columns
                                                     if c not in ("step", "observable", "metric", "value")]
        return frame[columns + ["value"]]

    # -- training state --------------------------------------------------------------------
    def _checkpoints(self) -> list[Path]:
        root = self.folder / "checkpoints"
        return sorted(p for p in root.glob("step_*") if p.is_dir()) if root.exists() else []

    def restore(self, **objects: Any) -> int:
        """Load the newest checkpoint into `objects` (modules, optimizers, torch generators) and
        the metrics logged up to it; returns its step, or 0 when there is none."""
        checkpoints = self._checkpoints()
        if not checkpoints:
            return 0
        state, metrics = load_checkpoint(checkpoints[-1])
        for name, obj in objects.items():
            if name not in state:
                raise RunFolderError(f"checkpoint {checkpoints[-1]} has no state for {name!r}")
            if isinstance(obj, torch.Generator):
                obj.set_state(state[name])
            else:
                obj.load_state_dict(state[name])
        torch.set_rng_state(state["torch_rng"])
        self._frames, self._rows, self._held = [metrics], [], []
        return int(state["step"])

    def checkpoint(self, step: int, **objects: Any) -> None:
        """Save the full training state after `step` steps, then prune old checkpoints."""
        state = {"step": step, "torch_rng": torch.get_rng_state()}
        for name, obj in objects.items():
            state[name] = obj.get_state() if isinstance(obj, torch.Generator) else obj.state_dict()
        metrics = self.metrics
        save_checkpoint(self.folder / "checkpoints" / f"step_{step:08d}", state, metrics)
        write_parquet(self.folder / METRICS, metrics)
        keep = getattr(self.config, "keep_checkpoints", 1)
        for old in self._checkpoints()[:-keep] if keep > 0 else []:
            shutil.rmtree(old)

    def steps(self, start: int, total: int, description: str = "", unit: str = "steps") -> Iterator[int]:
        """Steps ``start .. total-1`` behind a labelled progress bar; the share done is also kept in
        ``progress.json`` (read by a sweep to advance its own bar within a point)."""
        label = description or f"{self.experiment}: training"
        last = [0.0]

        def report(done: int, count: int) -> None:
            now = time.monotonic()
            if done == count or now - last[0] >= PROGRESS_EVERY:
                last[0] = now
                write_json(self.folder / PROGRESS, {"stage": label, "done": start + done, "total": total})

        return progress(range(start, total), label, self.quiet, total=total - start, unit=unit, report=report)

    # -- outputs ---------------------------------------------------------------------------
    def save_arrays(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        write_safetensors(self.folder / "arrays" / f"{name}.safetensors", tensors)

    def figure(self, name: str, figure: Any, caption: str) -> None:
        """Save a matplotlib figure as PNG and SVG with a one-sentence caption for the report."""
        for suffix in ("png", "svg"):
            write_figure(self.folder / "figures" / f"{name}.{suffix}", figure)
        self._manifest["figures"].append({"name": name, "caption": caption})

    def animation(self, name: str, figure: Any, update: Callable[[int], None], frames: int, caption: str,
                  seconds_per_frame: float = 0.25) -> None:
        """Save a looping GIF of `figure`, redrawn by `update(i)` for each of `frames` frames, with a
        caption for the report (which shows it like a figure)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image

        canvas = FigureCanvasAgg(figure)
        images = []
        for i in range(frames):
            update(i)
            canvas.draw()
            rgba = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba())
            images.append(rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE))
        write_gif(self.folder / "figures" / f"{name}.gif", images, seconds_per_frame)
        self._manifest["figures"].append({"name": name, "caption": caption, "file": f"{name}.gif"})

    def table(self, name: str, frame: pd.DataFrame, caption: str) -> None:
        """A theory-vs-measurement (or any) table, shown in the report."""
        write_parquet(self.folder / "tables" / f"{name}.parquet", frame)
        self._manifest["tables"].append({"name": name, "caption": caption})

    def headline(self, name: str, value: float) -> None:
        self._manifest["headline"][name] = float(value)

    def finish(self) -> None:
        write_parquet(self.folder / METRICS, self.metrics)
        write_json(self.folder / MANIFEST, self._manifest)
        write_text(self.folder / DONE, "complete\n")


def _prepare_folder(folder: Path, identity: dict[str, Any], resume: bool) -> bool:
    """Check what `folder` holds; returns True when it already holds this run, complete."""
    config_file = folder / CONFIG
    if config_file.exists():
        stored = read_stored(folder)
        diff = differing_keys(stored, identity)
        if diff:
            verb = "resume with another config" if resume else "write a different run there"
            raise RunFolderError(f"{folder} holds a different run; refusing to {verb} "
                                 f"(keys that differ: {'; '.join(diff)})")
        if (folder / DONE).exists():
            return True
        if not resume:
            raise RunFolderError(f"{folder} holds an unfinished run of this config; pass --resume to continue it")
        return False
    if resume:
        raise RunFolderError(f"--resume: {folder} holds no run to resume ({CONFIG} missing)")
    if foreign_entries(folder):
        raise RunFolderError(f"{folder} is not empty and holds no goldstone run; refusing to write there")
    return False


def _stored_run(out: str | Path | None, resume: bool) -> dict[str, Any]:
    """What `out` holds when resuming (config, seed, device), else {}."""
    if not resume or out is None or not (Path(out) / CONFIG).is_file():
        return {}
    return read_stored(Path(out))


def execute(experiment: str, overrides: dict[str, Any] | None = None, config_file: str | Path | None = None,
            out: str | Path | None = None, seed: int | None = None, device: str | None = None, resume: bool = False,
            quiet: bool = False, force: bool = False) -> Run:
    """Run `experiment` into a run folder (see module docstring); the engine of ``goldstone run``.

    Resuming, the config, seed and device stored in `out` are the defaults: `overrides`, the config
    file and an explicit `seed` must agree with them (else the keys that differ are named). A config
    whose memory estimate exceeds what the device has is refused unless `force` (`check_memory`).
    """
    exp = get_experiment(experiment)
    with library_bars_off(quiet):
        return _execute(exp, overrides, config_file, out, seed, device, resume, quiet, force)


def _execute(exp: Experiment, overrides: dict[str, Any] | None, config_file: str | Path | None, out: str | Path | None,
             seed: int | None, device: str | None, resume: bool, quiet: bool, force: bool) -> Run:
    experiment = exp.name
    for extra in exp.extras:
        require_extra(extra, f"experiment {experiment!r}")
    stored = _stored_run(out, resume)
    if stored and stored.get("experiment") != experiment:
        raise RunFolderError(f"--resume: {out} holds a run of experiment {stored.get('experiment')!r}, "
                             f"not {experiment!r}")
    config = resolve_config(exp.config, overrides, config_file, experiment, defaults=stored.get("config"))
    seed = seed if seed is not None else int(stored.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise ConfigError(f"--seed must be a whole number from 0 to 2**32 - 1, got {seed!r}")
    device = device or stored.get("device") or "cpu"
    torch_device = resolve_device(device)
    check_memory(config, torch_device, force)
    identity = run_identity(experiment, config, seed)
    folder = Path(out) if out is not None else default_folder(identity)
    with claimed_folder(folder):
        if _prepare_folder(folder, identity, resume):
            log(f"{folder} already holds this run, complete: nothing was run again (to run it afresh, delete the "
                "folder or give another --out)", quiet)
            return Run(folder)
        fresh = not (folder / CONFIG).exists()
        if fresh:
            write_json(folder / CONFIG, {**identity, "device": device, "versions": package_versions(),
                                         "presentation": exp.presentation.to_json()})
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        ctx = RunContext(folder, experiment, config, seed, torch_device, quiet)
        try:
            exp.fn(ctx)
        except GoldstoneError:
            if fresh and not ctx._checkpoints():  # bad input found by the experiment: leave no run behind
                (folder / CONFIG).unlink()
            raise
        ctx.finish()
    return Run(folder)

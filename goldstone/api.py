"""The Python API, mirroring the CLI: ``goldstone.run(...)``, ``goldstone.sweep(...)``, and
``goldstone.load(folder)`` to read what they wrote."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def run(experiment: str, out: str | Path | None = None, seed: int | None = None, device: str | None = None,
        resume: bool = False, config_file: str | Path | None = None, quiet: bool = True, force: bool = False,
        **overrides: Any):
    """Run `experiment` with config overrides as keyword arguments; returns a `Run`
    (``.config``, ``.seed``, ``.versions``, ``.metrics``, ``.arrays``, ``.report()``). A config whose
    memory estimate exceeds the device's free memory is refused unless `force`."""
    from goldstone.lab.run import execute

    return execute(experiment, overrides, config_file, out, seed, device, resume, quiet, force)


def sweep(experiment: str, grid: dict[str, list[Any]], out: str | Path | None = None, seeds: int = 1,
          workers: int = 1, backend: str = "local", ray_address: str | None = None, device: str = "cpu",
          quiet: bool = True, force: bool = False, **overrides: Any):
    """Run every point of `grid` (key -> values) for `seeds` seeds; returns a `Sweep`
    (``.results`` tidy table, ``.report()``). Points run in worker processes that never import
    the calling script, so a plain script needs no ``if __name__ == "__main__":`` guard."""
    from goldstone.lab.sweep import execute_sweep
    from goldstone.lab.views import SweepSpec

    spec = SweepSpec(experiment, grid_lists(grid), seeds, overrides, device)
    return execute_sweep(spec, out, workers, backend, ray_address, quiet, force)


def grid_lists(grid: Any) -> dict[str, list[Any]]:
    """`grid` as key -> list of values, or one error naming the key whose values are not a list."""
    from goldstone.core.errors import ConfigError

    if not isinstance(grid, Mapping):
        raise ConfigError(f"sweep: the grid is a dict of key -> list of values, got {type(grid).__name__}")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ConfigError(f"sweep: grid key {key!r} takes a list of values, got {values!r} (give [{values!r}], "
                              f"or {key}={values!r} as a fixed setting)")
    return {key: list(values) for key, values in grid.items()}


def load(folder: str | Path):
    """The finished (or unfinished) run or sweep in `folder`, read-only: a `Run` (``.config``,
    ``.metrics``, ``.manifest``, ``.arrays``, ``.report()``) or a `Sweep` (``.results``,
    ``.summary``, ``.finished()``, ``.report()``); one clear error if the folder holds neither."""
    from goldstone.lab.views import open_folder

    return open_folder(folder)


def list_experiments() -> dict[str, str]:
    """Experiment name -> one-line summary."""
    from goldstone.lab.registry import load_all

    return {name: exp.summary for name, exp in sorted(load_all().items())}

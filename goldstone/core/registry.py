"""The experiment registry: an experiment is a config dataclass plus a function of a `RunContext`.

Adding one is one file in ``goldstone/experiments/`` that decorates its function with
`@experiment(...)`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from goldstone.core.errors import ConfigError

EXPERIMENTS: dict[str, Experiment] = {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    config: type
    fn: Callable[[Any], None]
    summary: str
    critical: dict[str, float] = dataclasses.field(default_factory=dict)
    """The theory's critical value of a config key (e.g. ``{"sigma_w": 1.0}``), drawn as a line
    on every phase diagram that has that key on an axis."""
    curve: tuple[str, str] | None = None
    """(observable, metric) drawn against step for every point of a sweep's report."""
    theory: tuple[str, str, Callable[[Any, dict[str, Any]], Any]] | None = None
    """(key, label, f): a theory curve f(values of key, fixed params of the panel) drawn over the
    phase diagram on a second axis, e.g. c*(sigma_W)."""


def experiment(name: str, config: type, summary: str, critical: dict[str, float] | None = None,
               curve: tuple[str, str] | None = None,
               theory: tuple[str, str, Callable[[Any, dict[str, Any]], Any]] | None = None) -> Callable:
    def register(fn: Callable) -> Callable:
        EXPERIMENTS[name] = Experiment(name, config, fn, summary, dict(critical or {}), curve, theory)
        return fn
    return register


def load_all() -> dict[str, Experiment]:
    """Import every module of ``goldstone.experiments`` (each registers itself)."""
    import goldstone.experiments as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return EXPERIMENTS


def get_experiment(name: str) -> Experiment:
    experiments = load_all()
    if name not in experiments:
        close = difflib.get_close_matches(name, list(experiments), n=1, cutoff=0.0)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown experiment {name!r}{hint} (`goldstone list` shows them all)")
    return experiments[name]

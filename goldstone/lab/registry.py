"""The experiment registry: an experiment is a config dataclass plus a function of a `RunContext`.

Adding one is a module that decorates its function with `@experiment("<name>", ...)` and one
entry point naming that module in the group ``goldstone_experiments`` (``pyproject.toml``: the
built-in ones are ``goldstone/experiments/<name>.py``; your own package can add its own the same
way). A module is imported when its experiment is first asked for by name; experiments registered
elsewhere (a user's module, imported before use) are found as well.
"""

from __future__ import annotations

import dataclasses
import difflib
from importlib import metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from goldstone.core.config import declared
from goldstone.core.errors import ConfigError
from goldstone.lab.presentation import Presentation

EXPERIMENTS: dict[str, Experiment] = {}


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    config: type
    fn: Callable[[Any], None]
    summary: str
    critical: dict[str, float] = dataclasses.field(default_factory=dict)
    """The theory's critical value of a config key (`param(critical=...)`), drawn as a line on every
    phase diagram that has that key on an axis."""
    curve: tuple[str, str] | None = None
    """(observable, metric) drawn against step for every point of a sweep's report."""
    theory: Theory | None = None
    """A theory curve drawn next to the measurement on every phase diagram with its key on an axis."""
    extras: tuple[str, ...] = ()
    """Optional-dependency extras the experiment needs (see `goldstone.core.extras`)."""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    """Labels in words (with units) for config keys (`param(label=...)`) and headline metrics, and for
    values as ``"key=value"`` (e.g. ``"group=u1": "U(1)"``)."""
    notes: str = ""
    """A paragraph every report of this experiment shows (conventions a reader must know)."""
    metric: str | None = None
    """The headline metric a sweep's phase diagram shows unless another is asked for."""
    sweep_summary: Callable[[Path], list[Any]] | None = None
    """Extra sections of a sweep's report, from the sweep folder (e.g. onsets with seed bands): a list of
    headings (str), tables (DataFrame) and figures ((image path, caption))."""

    @property
    def presentation(self) -> Presentation:
        """What a report needs of the experiment, stored with each of its runs."""
        theory = ({"key": self.theory.key, "label": self.theory.label, "same_axis": self.theory.same_axis}
                  if self.theory else None)
        return Presentation(self.labels, self.critical, self.notes, self.curve, self.metric,
                            declared(self.config, "when"), theory)


@dataclasses.dataclass(frozen=True)
class Theory:
    """`fn(values of key, params) -> curve`, drawn against `key`; `params` are the fixed config values
    of the line or panel. `name(params)` names the curve in a legend (e.g. "c*, k = 4"); curves of
    lines whose names agree are drawn once."""
    key: str
    label: str
    fn: Callable[[Any, dict[str, Any]], Any]
    name: Callable[[dict[str, Any]], str | None] = lambda params: None
    same_axis: bool = False
    """Draw the curve on the measurement's own axis (it predicts the plotted metric itself)
    instead of a right-hand axis of its own."""


def experiment(name: str, config: type, summary: str, curve: tuple[str, str] | None = None,
               theory: Theory | None = None, extras: tuple[str, ...] = (), labels: dict[str, str] | None = None,
               notes: str = "", metric: str | None = None,
               sweep_summary: Callable[[Path], list[Any]] | None = None) -> Callable:
    """Register `fn` as experiment `name`; its keys' labels and critical values come from the params
    of `config`, `labels` adds those of headline metrics and of values ("group=u1")."""
    def register(fn: Callable) -> Callable:
        EXPERIMENTS[name] = Experiment(name, config, fn, summary, declared(config, "critical"), curve, theory,
                                       tuple(extras), {**declared(config, "label"), **(labels or {})}, notes, metric,
                                       sweep_summary)
        return fn
    return register


ENTRY_POINTS = "goldstone_experiments"
"""The entry-point group naming the module of every installed experiment."""


def _installed() -> dict[str, metadata.EntryPoint]:
    installed = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINTS)}
    if not installed:
        raise ConfigError("no experiment is installed: goldstone finds its experiments through the entry points of "
                          "its package metadata; reinstall it (pip install -e . in a checkout)")
    return installed


def load_all() -> dict[str, Experiment]:
    """Import the module of every installed experiment (each registers itself)."""
    for entry in _installed().values():
        entry.load()
    return EXPERIMENTS


def get_experiment(name: str) -> Experiment:
    """The experiment called `name`, importing its module (named by its entry point) if needed."""
    installed = _installed()
    if name not in EXPERIMENTS and name in installed:
        installed[name].load()
    if name not in EXPERIMENTS:
        close = difflib.get_close_matches(name, sorted(set(EXPERIMENTS) | set(installed)), n=1, cutoff=0.0)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown experiment {name!r}{hint} (`goldstone list` shows them all)")
    return EXPERIMENTS[name]

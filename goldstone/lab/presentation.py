"""How a run is shown: its experiment's labels, critical values, notes, curve and headline metric,
when each config key applies, and what its theory curve is drawn against. A run stores it in its
``config.json`` (key "presentation"), so that its report, and a sweep's, never import the experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Presentation:
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    """Labels in words (with units) for config keys and headline metrics, and for values as
    ``"key=value"`` (e.g. ``"group=u1": "U(1)"``)."""
    critical: dict[str, float] = dataclasses.field(default_factory=dict)
    """The theory's critical value of a config key (e.g. ``{"sigma_w": 1.0}``)."""
    notes: str = ""
    """A paragraph every report of the experiment shows."""
    curve: tuple[str, str] | None = None
    """(observable, metric) drawn against step for every point of a sweep's report."""
    metric: str | None = None
    """The headline metric a sweep's phase diagram shows unless another is asked for."""
    when: dict[str, dict[str, list]] = dataclasses.field(default_factory=dict)
    """``{key: {other key: values}}``: a key applies only when each other key takes one of its values."""
    theory: dict[str, Any] | None = None
    """The theory curve's key (its x axis), label and whether it shares the measurement's axis
    (``same_axis``); a sweep stores the curves themselves."""

    def label(self, name: str) -> str:
        return self.labels.get(name, name.replace("_", " "))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any] | None) -> Presentation:
        """From `to_json`; None (a run stored before runs kept their presentation) gives plain key names."""
        stored = dict(stored or {})
        if stored.get("curve") is not None:
            stored["curve"] = tuple(stored["curve"])
        return cls(**stored)

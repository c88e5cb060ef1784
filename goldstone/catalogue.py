"""What `goldstone list` shows, read from the package's sources so that it imports neither torch
nor any experiment: each built-in experiment with the summary and extras of its `@experiment(...)`,
each built-in observable with its class's `name` and `summary`."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _statements(folder: str, marker: str) -> list[ast.stmt]:
    """The top-level statements of the modules under `folder` whose text holds `marker`."""
    texts = [path.read_text(encoding="utf-8") for path in sorted((PACKAGE / folder).rglob("*.py"))]
    return [node for text in texts if marker in text for node in ast.parse(text).body]


def experiments() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Experiment name -> (summary, extras), from the `@experiment(name, config, summary, ...)` decorators."""
    found = {}
    for node in _statements("experiments", "@experiment("):
        for decorator in getattr(node, "decorator_list", []):
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "experiment":
                extras = next((k.value for k in decorator.keywords if k.arg == "extras"), ast.Tuple([]))
                found[ast.literal_eval(decorator.args[0])] = (ast.literal_eval(decorator.args[2]),
                                                              tuple(ast.literal_eval(extras)))
    return found


def observables() -> dict[str, str]:
    """Observable name -> summary, from the classes that set both."""
    found = {}
    for node in _statements("observables", "summary = "):
        if isinstance(node, ast.ClassDef):
            values = {t.id: s.value.value for s in node.body if isinstance(s, ast.Assign)
                      and isinstance(s.value, ast.Constant) for t in s.targets if isinstance(t, ast.Name)}
            if values.get("name") and "summary" in values:
                found[values["name"]] = values["summary"]
    return found

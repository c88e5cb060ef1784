"""Pages of the documentation site generated at build time (mkdocs-gen-files): the API reference
from the docstrings of `goldstone.__all__`, the observables catalogue from the observable registry,
the experiments catalogue from the experiment registry, the CLI reference from the Typer app, and
the examples rendered with the output of each cell.

The examples run at every build (seconds each), each in a fresh interpreter in an empty folder, so
the output shown is that of the code being documented.
"""

from __future__ import annotations

import dataclasses
import ast
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import mkdocs_gen_files
import typer.main
from typer.testing import CliRunner

import goldstone
from goldstone.cli import app
from goldstone.core.config import describe_fields
from goldstone.core.observable import OBSERVABLES
from goldstone.core.result import Result
from goldstone.lab.registry import load_all

ROOT = Path(__file__).resolve().parents[2]
CELL = re.compile(r"^# %%(.*)$", re.MULTILINE)
OUTPUT_MARK = "\x1egoldstone-site-cell\x1e"


def write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w") as handle:
        handle.write(text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# -- API reference ---------------------------------------------------------------------------
def api_page() -> str:
    lines = ["# API reference", "",
             "Every name below is importable from `goldstone` (`goldstone.__all__`); each is imported when "
             "first used, so `import goldstone` stays fast.", ""]
    for name in sorted(goldstone._HOMES):
        lines += [f"::: {goldstone._HOMES[name]}.{name}", "    options:", "      heading_level: 2",
                  "      show_root_heading: true", "      show_root_full_path: false", ""]
    lines += ["## `goldstone.plotting`", "",
              "The figures the experiments, the sweep reports and the audit draw, as functions of tidy frames: "
              "redraw them from your own runs.", "", "::: goldstone.plotting", "    options:",
              "      heading_level: 3", "      show_root_heading: false", "      members_order: source", ""]
    return "\n".join(lines)


# -- observables catalogue ----------------------------------------------------------------------
def _results() -> dict[str, type]:
    found, todo = {}, [Result]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.observable != "result":
            found.setdefault(cls.observable, cls)
    return found


def _inputs(cls: type) -> str:
    needs = [what for flag, what in ((cls.needs_forward, "a probe batch (forward pass)"),
                                     (cls.needs_gradients, "gradients (after `loss.backward()`)"),
                                     (cls.needs_optimizer, "the optimiser")) if flag]
    return "; ".join(needs) if needs else "nothing from the loop: the model and what its constructor is given"


def _cost(cls: type) -> str:
    if cls.needs_gradients:
        return "reads the gradients of a backward pass the training loop already did"
    if cls.needs_forward:
        return "one forward pass of the probe with hooks on the named modules"
    return "no forward pass of the probe: the weights, or the data given to its constructor"


def _fields(result: type | None) -> str:
    if result is None:
        return "see the class's `compute`"
    parts = []
    for f in dataclasses.fields(result):
        if f.metadata.get("meta"):
            continue
        axes = f.metadata.get("dims", ())
        parts.append(f"`{f.name}`" + (f" ({', '.join(axes)})" if axes else ""))
    return ", ".join(parts)


def observables_page() -> str:
    importlib.import_module("goldstone.observables")  # registers every built-in observable
    results = _results()
    lines = ["# Observables", "",
             "Every built-in observable, from the registry (`goldstone list` prints the same names). "
             "Each is configured in its constructor, accumulates with `update(probe)`, returns a typed "
             "`Result` from `compute()` and turns into tidy rows `step, observable, metric, <axes>, value`. "
             "A **snapshot** stands alone at each measurement; a **stream** accumulates across steps.", "",
             "| name | what it measures | inputs | lifecycle | result fields (axes) |",
             "| --- | --- | --- | --- | --- |"]
    for name, cls in sorted(OBSERVABLES.items()):
        lifecycle = cls.lifecycle + (", every step" if cls.lifecycle == "stream" and cls.every_step else "")
        lines.append(f"| [`{name}`](#{name}) | {_cell(cls.summary)} | {_cell(_inputs(cls))} "
                     f"| {lifecycle} | {_cell(_fields(results.get(name)))} |")
    lines.append("")
    for name, cls in sorted(OBSERVABLES.items()):
        module = inspect.getmodule(cls)
        formula = inspect.cleandoc(module.__doc__ or "").strip()
        lines += [f"## `{name}` {{#{name}}}", "", f"`{cls.__module__}.{cls.__name__}`: {cls.summary}.", "",
                  f"**Inputs**: {_inputs(cls)}. **Cost**: {_cost(cls)}. **Lifecycle**: {cls.lifecycle}.", "",
                  f"**Result**: {_fields(results.get(name))}.", ""]
        if formula:
            lines += ["```text", formula, "```", ""]
        lines += [f"::: {cls.__module__}.{cls.__name__}", "    options:", "      heading_level: 3",
                  "      show_root_heading: true", "      show_root_full_path: false", "      members: false", ""]
    return "\n".join(lines)


# -- experiments catalogue ----------------------------------------------------------------------
def experiments_page() -> str:
    lines = ["# Experiments", "",
             "Every experiment with every key (`goldstone show NAME` prints the same table). Set a key with "
             "`goldstone run NAME --set key=value`, in a TOML file given to `--config`, or as a keyword of "
             "`goldstone.run(NAME, key=value)`.", ""]
    for name, exp in sorted(load_all().items()):
        lines += [f"## `{name}`", "", exp.summary[:1].upper() + exp.summary[1:] + ".", ""]
        if exp.extras:
            lines += [f"Needs the extra{'s' if len(exp.extras) > 1 else ''} "
                      + ", ".join(f"`{e}`" for e in exp.extras) + ".", ""]
        lines += ["| key | type | default | range | description |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{f.name}` | {_cell(f.type)} | `{_cell(repr(f.default))}` | {_cell(f.range)} | {_cell(f.help)} |"
                  for f in describe_fields(exp.config)]
        lines.append("")
    return "\n".join(lines)


# -- CLI reference ------------------------------------------------------------------------------
def cli_page() -> str:
    runner = CliRunner()
    env = {"COLUMNS": "100", "TERMINAL_WIDTH": "100", "NO_COLOR": "1"}
    lines = ["# Command line", "", "`goldstone --help` and `goldstone COMMAND --help` print the same text.", ""]
    lines += ["```text", runner.invoke(app, ["--help"], env=env, prog_name="goldstone").output.rstrip(), "```", ""]
    for command in typer.main.get_command(app).list_commands(None):
        help_text = runner.invoke(app, [command, "--help"], env=env, prog_name="goldstone").output.rstrip()
        lines += [f"## `goldstone {command}`", "", "```text", help_text, "```", ""]
    return "\n".join(lines)


# -- examples -------------------------------------------------------------------------------------
def _cells(source: str) -> list[tuple[str, str]]:
    """(kind, text) of each `# %%` cell: "markdown" (comment markers stripped) or "code"."""
    parts = CELL.split(source)
    cells = []
    for header, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        if "[markdown]" in header:
            cells.append(("markdown", "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                                                for line in body.splitlines())))
        elif body.strip():
            cells.append(("code", body))
    return cells


def missing_modules(source: str) -> list[str]:
    """The top-level modules `source` imports that are not installed (an extra this build lacks)."""
    names = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
             for alias in node.names}
    names |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def run_cells(example: Path, codes: list[str]) -> list[str]:
    """The standard output of each code cell, run in order in one fresh interpreter in an empty folder."""
    program = "\n".join(f"print({OUTPUT_MARK!r}, flush=True)\n{code}" for code in codes)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", program], cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"examples/{example.name} failed while building the site:\n{done.stderr[-3000:]}")
    return [o.strip("\n") for o in done.stdout.split(OUTPUT_MARK + "\n")[1:]]


def example_page(example: Path) -> str:
    source = example.read_text(encoding="utf-8")
    cells, missing = _cells(source), missing_modules(source)
    codes = [text for kind, text in cells if kind == "code"]
    outputs = iter([""] * len(codes) if missing else run_cells(example, codes))
    note = (f"*`examples/{example.name}`: run it with `python examples/{example.name}`, or open it as a "
            f"notebook with `jupytext --to notebook examples/{example.name}`. The output below is from "
            f"the build of this site.*")
    lines = []
    for number, (kind, text) in enumerate(cells):
        if kind == "markdown":
            lines += [text, ""] + ([note, ""] if number == 0 else [])
            if number == 0 and missing:
                lines += ['!!! note "Not run in this build"', f"    It needs {', '.join(missing)}, which this build "
                          "lacks (`pip install -e '.[all]'` installs every extra).", ""]
            continue
        lines += ["```python", text, "```", ""]
        output = next(outputs)
        if output:
            lines += ['```text title="output"', output, "```", ""]
    return "\n".join(lines)


def main() -> None:
    write("reference/api.md", api_page())
    write("reference/observables.md", observables_page())
    write("reference/experiments.md", experiments_page())
    write("reference/cli.md", cli_page())
    for example in sorted((ROOT / "examples").glob("*.py")):
        write(f"examples/{example.stem}.md", example_page(example))


main()

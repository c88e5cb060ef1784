"""The command line: ``goldstone list | run | sweep | report | uas | nodes | demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from goldstone.core.errors import GoldstoneError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Goldstone: symmetry breaking and phase transitions in neural-network learning.")
console, errors = Console(), Console(stderr=True)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
Device = Annotated[str, typer.Option(help="cpu or cuda")]


def _fail(err: GoldstoneError) -> None:
    errors.print(f"[bold red]error:[/] {err}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2)


@app.command("list")
def list_cmd() -> None:
    """Experiments and observables, one line each."""
    from goldstone.core.observable import OBSERVABLES
    from goldstone.core.registry import load_all
    import goldstone.observables  # noqa: F401  (registers the built-in observables)

    table = Table("experiment", "what it does", title="experiments")
    for name, exp in sorted(load_all().items()):
        table.add_row(name, exp.summary)
    console.print(table)
    table = Table("observable", "what it measures", title="observables")
    for name, cls in sorted(OBSERVABLES.items()):
        table.add_row(name, cls.summary)
    console.print(table)


@app.command()
def run(experiment: str,
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="key=value (repeatable)")] = None,
        config: Annotated[Optional[Path], typer.Option(help="TOML file of config keys")] = None,
        out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/<experiment>-<hash>)")] = None,
        seed: int = 0, device: Device = "cpu",
        resume: Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")] = False,
        quiet: Quiet = False) -> None:
    """Run one experiment into a run folder and write its HTML report."""
    from goldstone.core.config import parse_assignments
    from goldstone.core.run import execute

    try:
        result = execute(experiment, parse_assignments(set_), config, out, seed, device, resume, quiet)
        report = result.report()
    except GoldstoneError as err:
        _fail(err)
    _print_headline(result.manifest["headline"])
    console.print(f"run folder: {result.folder}\nreport: {report}", highlight=False)


def _print_headline(headline: dict[str, float]) -> None:
    for name, value in headline.items():
        console.print(f"  {name} = {value:.4g}", highlight=False)


@app.command()
def sweep(experiment: str,
          grid: Annotated[list[str], typer.Option(help="key=v1,v2,... or key=start:stop:num (repeatable)")],
          set_: Annotated[Optional[list[str]], typer.Option("--set", help="fixed key=value (repeatable)")] = None,
          seeds: int = 1, workers: int = 1,
          backend: Annotated[str, typer.Option(help="local or ray")] = "local",
          ray_address: Annotated[Optional[str], typer.Option(help="address of a running Ray cluster")] = None,
          out: Optional[Path] = None, device: Device = "cpu", quiet: Quiet = False) -> None:
    """Run an experiment over a grid (times seeds); resumes an unfinished sweep in --out."""
    from goldstone.core.config import parse_assignments
    from goldstone.core.sweep import SweepSpec, execute_sweep, parse_grid

    try:
        spec = SweepSpec(experiment, parse_grid(grid), seeds, parse_assignments(set_), device)
        result = execute_sweep(spec, out, workers, backend, ray_address, quiet)
        report = result.report()
    except GoldstoneError as err:
        _fail(err)
    console.print(f"sweep folder: {result.folder}\nreport: {report}", highlight=False)


@app.command()
def report(folder: Path,
           metric: Annotated[Optional[str], typer.Option(help="headline metric of the phase diagram")] = None,
           out: Annotated[Optional[Path], typer.Option(help="HTML file (default FOLDER/report.html)")] = None) -> None:
    """Write the self-contained HTML report of a run or sweep folder."""
    from goldstone.core.report import write_report

    try:
        path = write_report(folder, out, metric)
    except GoldstoneError as err:
        _fail(err)
    console.print(f"report: {path}", highlight=False)


@app.command()
def uas(model: Annotated[Path, typer.Option(help="Hugging Face model folder (e.g. a MiniLM or BERT checkpoint)")],
        treebank: Annotated[Path, typer.Option(help="CoNLL-U file with gold dependency trees")],
        out: Annotated[Path, typer.Option(help="full table (parquet)")] = Path("head_uas.parquet"),
        max_sentences: Annotated[Optional[int], typer.Option(help="read at most this many sentences")] = None,
        max_length: int = 128, batch_size: int = 16,
        include_root: Annotated[bool, typer.Option(help="score root words (never right)")] = False,
        include_punct: Annotated[bool, typer.Option(help="score punctuation in 'all'")] = True,
        device: Device = "cpu", quiet: Quiet = False) -> None:
    """UAS of every attention head of a model against a treebank: best heads per relation."""
    from goldstone.observables.head_uas import score_treebank

    try:
        result = score_treebank(model, treebank, max_sentences, max_length, batch_size, include_root,
                                include_punct, device, quiet)
    except GoldstoneError as err:
        _fail(err)
    from goldstone.core.atomic import write_parquet

    write_parquet(out, result.to_frame())
    table = Table("relation", "words", "best UAS", "layer", "head", "dir", "held-out UAS", "best offset",
                  title=f"best heads of {model.name} on {treebank.name}")
    for i, name in enumerate(result.axis_labels()["relation"]):
        if int(result.count[i]) == 0:
            continue
        table.add_row(name, f"{int(result.count[i])}", f"{float(result.best_accuracy[i]):.3f}",
                      f"{int(result.best_layer[i])}", f"{int(result.best_head[i])}",
                      ("A", "A^T")[int(result.best_direction[i])], f"{float(result.heldout_accuracy[i]):.3f}",
                      f"{float(result.offset_accuracy[:, i].max()):.3f}")
    console.print(table)
    console.print(f"full table: {out}", highlight=False)


@app.command()
def nodes(model: Annotated[Path, typer.Argument(help="Hugging Face classification model folder (config.json, tokenizer)")],
          data: Annotated[Path, typer.Option(help="CSV or JSON Lines file of texts and labels (FewRel JSON with --task fewrel)")],
          task: Annotated[str, typer.Option(help="file or fewrel")] = "file",
          text_key: str = "text", label_key: str = "label",
          layer: Annotated[int, typer.Option(help="block to measure (-1: the last)")] = -1,
          site: Annotated[str, typer.Option(help="heads, attention or mlp")] = "heads",
          silence: Annotated[str, typer.Option(help="zero or mean")] = "zero",
          readout: Annotated[str, typer.Option(help="fixed or retrained")] = "fixed",
          finetune_steps: Annotated[int, typer.Option(help="fine-tune first (0: measure the model as it is)")] = 0,
          max_per_label: Annotated[int, typer.Option(help="examples kept per label (0: all)")] = 0,
          out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/single_node-<hash>)")] = None,
          seed: int = 0, device: Device = "cpu", quiet: Quiet = False) -> None:
    """What each head and node of YOUR classifier has learned, on your local data (the single_node experiment)."""
    from goldstone.core.run import execute

    overrides = {"model": str(model), "task": task, "data": str(data), "text_key": text_key, "label_key": label_key,
                 "layer": layer, "site": site, "silence": silence, "readout": readout,
                 "finetune_steps": finetune_steps, "max_per_label": max_per_label, "min_per_label": 1, "tokens": 0}
    try:
        result = execute("single_node", overrides, None, out, seed, device, False, quiet)
        report = result.report()
    except GoldstoneError as err:
        _fail(err)
    _print_headline(result.manifest["headline"])
    console.print(f"run folder: {result.folder}\nreport: {report}", highlight=False)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="demo folder")] = Path("goldstone-demo"),
         workers: int = 2, quiet: Quiet = False) -> None:
    """The main job on embedded defaults: the order-parameter transition and deep equivariant vs
    generic training, in one HTML report (a few minutes on 2 cores)."""
    from goldstone.experiments.demo import run_demo

    try:
        path = run_demo(out, workers, quiet)
    except GoldstoneError as err:
        _fail(err)
    console.print(f"report: {path.resolve()}", highlight=False)


if __name__ == "__main__":
    app()

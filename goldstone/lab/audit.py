"""`goldstone audit`: every finding that applies, on your own model or training run, with a
timeline of what changed when.

A target is a model and its checkpoints: `audit(model, checkpoints=[...], probe=batch)` in Python,
or a folder: a Hugging Face model folder (one checkpoint), a Trainer ``output_dir`` (its
``checkpoint-*`` folders), a Goldstone run folder (its ``checkpoints/``, with the model in
``model/``), or "minilm". The plan says which observables apply and why the others do not; each
checkpoint, in step order, is measured on its own and its rows written atomically to
``checkpoints/step_*.parquet`` (with the Gram matrices of its representations), so a killed audit
resumes where it stopped and checkpoints holding the same weights are measured once. Then the
CKA between successive checkpoints, the transition timeline (`goldstone.analysis.timeline`) and a
self-contained HTML report. A goldstone run's own logged metrics at the checkpoints' steps join
the timeline as "run:<observable>".

What is measured, where it applies: weight statistics of every Linear/Conv matrix, and of its
change since the first checkpoint (always); the neuron census of every hidden layer (where the
model traces); the charges of every symmetry group `detect_symmetries` finds on the first
checkpoint (with a loss); loss and sharpness on the probe (with a loss); representation drift
(with a probe); previous-token, duplicate-token and induction scores of every head (attention
models, on repeated random tokens); the order parameter and the protected Jacobian (models with
``features``/``trunk``, as the equivariant MLPs).
"""

from __future__ import annotations

import dataclasses
import glob
import html
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from goldstone.analysis.model_symmetries import kind_loss, load_for_symmetries, probe_batches, read_sentences
from goldstone.analysis.timeline import describe, index_columns, salient, transitions
from goldstone.core.atomic import write_figure, write_json, write_parquet, write_safetensors, write_text
from goldstone.core.errors import GoldstoneError, RunFolderError
from goldstone.core.frames import holds, series
from goldstone.core.monitor import checkpoint_step, in_step_order, load_checkpoint, place_rows
from goldstone.core.observable import Batch, Observable, measure, model_device, run_batch
from goldstone.core.progress import Bar
from goldstone.core.weights import fit_weights, read_weights
from goldstone.lab.lock import claimed_folder, foreign_entries
from goldstone.lab.report import html_table, render
from goldstone.lab.workers import run_tasks
from goldstone.observables.attention_patterns import AttentionPatterns, repeated_tokens
from goldstone.observables.head_uas import HeadUAS
from goldstone.observables.jacobian import ProtectedJacobian
from goldstone.observables.loss_curvature import LossCurvature
from goldstone.observables.representation_alignment import RepresentationAlignment
from goldstone.observables.neuron_census import NeuronCensus
from goldstone.observables.noether_charges import NoetherCharges
from goldstone.observables.order_parameter import OrderParameter
from goldstone.observables.representation_drift import RepresentationDrift, drift_from_grams
from goldstone.observables.symmetry_detection import detect_symmetries
from goldstone.observables.unit_performance import HeadSpecialisation
from goldstone.observables.weight_statistics import WeightStatistics
from goldstone.plotting import audit_timeline, curves

TIMELINE_LINES = 40
"""Transitions the report lists in words."""

MARKER = "audit.json"
"""The file that marks a folder as an audit's (`--out` refuses a folder holding anything else)."""

FINDINGS = {
    "weight_statistics": "Weight matrices (norms, ranks, entanglement)",
    "neuron_census": "Parameter symmetry: neuron census",
    "noether_charges": "Noether charges of the symmetry groups",
    "loss_curvature": "Loss and sharpness on the probe",
    "representation_drift": "Representation drift (CKA)",
    "attention_patterns": "Attention heads: previous-token, duplicate-token, induction",
    "head_uas": "Sudden drops: the best head's UAS per relation",
    "head_specialisation": "Single-node symmetry breaking: what each head predicts alone",
    "order_parameter": "Goldstone modes: order parameter",
    "protected_jacobian": "Goldstone modes: protected Jacobian direction",
}


@dataclasses.dataclass
class Target:
    """What an audit measures: a model, its checkpoints, and (for Hugging Face models) its tokenizer
    and kind (classifier, masked_lm or encoder)."""
    model: nn.Module
    checkpoints: list[Path]
    name: str
    tokenizer: Any = None
    kind: str | None = None
    logged: pd.DataFrame | None = None
    """What a goldstone run logged itself (its metrics.parquet), joined to the timeline."""


def _checkpoint_folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("checkpoint-*") if p.is_dir()), key=lambda p: checkpoint_step(p) or 0)


def matching(pattern: str | Path) -> list[Path]:
    """The files or folders a glob `pattern` matches (the audit puts them in step order); one error if none."""
    found = [Path(p) for p in sorted(glob.glob(str(pattern)))]
    if not found:
        raise GoldstoneError(f"checkpoints {str(pattern)!r} matches no file or folder")
    return found


def resolve_target(target: str | Path, checkpoints: str | None = None) -> Target:
    """A folder or "minilm" as a `Target` (see the module docstring); `checkpoints` is a glob that
    replaces the checkpoints the folder implies."""
    from goldstone.models.pretrained import minilm_path

    folder = minilm_path() if str(target) == "minilm" else Path(target)
    if not folder.is_dir():
        raise GoldstoneError(f"{folder}: no such folder (give a model folder, a Trainer output_dir, a goldstone run "
                             "folder or 'minilm')")
    trainer = _checkpoint_folders(folder)
    if trainer:
        model_folder, found = trainer[-1], trainer
    elif (folder / "checkpoints").is_dir() and (folder / "config.json").is_file():
        if not (folder / "model" / "config.json").is_file():
            raise GoldstoneError(f"{folder}: a goldstone run without a Hugging Face model folder (model/); audit it in "
                                 "Python: goldstone.audit(model, checkpoints=[...])")
        model_folder = folder / "model"
        found = [p for p in (folder / "checkpoints").glob("step_*") if p.is_dir()]
    elif (folder / "config.json").is_file():
        model_folder, found = folder, [folder]
    else:
        raise GoldstoneError(f"{folder}: holds no model (config.json), no checkpoint-* folders and no goldstone run")
    if checkpoints is not None:
        found = matching(checkpoints)
    tokenizer_folder = next((f for f in (model_folder, folder / "tokenizer", folder)
                             if (f / "tokenizer.json").is_file() or (f / "vocab.txt").is_file()), model_folder)
    model, tokenizer, kind = load_for_symmetries(model_folder, tokenizer_folder)
    logged = pd.read_parquet(folder / "metrics.parquet") if model_folder == folder / "model" and \
        (folder / "metrics.parquet").is_file() else None
    return Target(model, found, folder.name if str(target) != "minilm" else "minilm", tokenizer, kind, logged)


@dataclasses.dataclass
class Plan:
    """The observables an audit runs, each with its own batches (None: no forward pass), and the
    findings that do not apply with the reason."""
    runs: list[tuple[Observable, Any]]
    skipped: dict[str, str]
    loss: str


def _text_probe(target: Target, sentences: list[str], size: int) -> list[tuple[dict, torch.Tensor | None]]:
    chosen = (sentences * (size // len(sentences) + 1))[:size]
    return probe_batches(target.tokenizer, target.kind, chosen, batch_size=16, count=(size + 15) // 16,
                         num_labels=getattr(target.model.config, "num_labels", 2))


def _heads(model: nn.Module) -> int | None:
    """The number of attention heads a Hugging Face model's config gives (None: not one)."""
    return getattr(getattr(model, "config", None), "num_attention_heads", None)


def _require_attention(target: Target, what: str) -> None:
    if target.tokenizer is None or not _heads(target.model):
        raise GoldstoneError(f"{what} needs a Hugging Face attention model with its tokenizer")


TREEBANK_SENTENCES = 256
"""Sentences of a treebank the audit scores head UAS on."""


def _treebank(target: Target, treebank: str | Path | None) -> tuple[list, list, list[str]] | None:
    """(sentences, batches for `HeadUAS`, relation vocabulary) of the first `TREEBANK_SENTENCES` of
    a CoNLL-U file, or None without one."""
    if treebank is None:
        return None
    _require_attention(target, f"--treebank {treebank}: head UAS")
    from goldstone.data.treebank import encode_sentences, read_conllu

    sentences = read_conllu(treebank, TREEBANK_SENTENCES)
    batches, relations, _ = encode_sentences(sentences, target.tokenizer, 128, 32, by_length=True)
    feed = [({"input_ids": b.input_ids, "attention_mask": b.attention_mask}, b) for b in batches]
    return sentences, feed, relations


LABELLED_PER_LABEL = 50
"""Examples kept per label of `--data` (the readout's train set and the heads' test set together)."""


def _labelled(target: Target, data: str | Path | None, text_key: str, label_key: str) -> HeadSpecialisation | None:
    """`HeadSpecialisation` on a labelled text file (70 % to fit the readout, 30 % to score the heads)."""
    if data is None:
        return None
    _require_attention(target, f"--data {data}: head specialisation")
    from goldstone.data.text_tasks import encode_batches, load_task

    dataset = load_task("file", str(data), text_key, label_key, max_per_label=LABELLED_PER_LABEL, min_per_label=2)
    train, test = dataset.split(0.3, 0)
    return HeadSpecialisation(encode_batches(train, target.tokenizer, 32, 128),
                              encode_batches(test, target.tokenizer, 32, 128), dataset.label_names)


def plan(target: Target, probe: Batch | list | None, loss_fn: Callable | None, reference: dict[str, torch.Tensor],
         loss_name: str, layers: Sequence[str] | None = None) -> Plan:
    """Decide what applies to `target` (see the module docstring); `layers` names the modules whose
    outputs the representation drift compares (default: the model's hook points)."""
    model = target.model
    runs: list[tuple[Observable, Any]] = [(WeightStatistics(reference=reference), None)]
    skipped: dict[str, str] = {}
    try:
        measure(model, [NeuronCensus()])
        runs.append((NeuronCensus(), None))
    except (GoldstoneError, RuntimeError, TypeError, ValueError) as err:
        skipped["neuron_census"] = f"no hidden layer the census can read ({str(err).splitlines()[0][:160]})"
    if loss_fn is not None and probe is not None:
        batches = probe if isinstance(probe, list) else [probe]
        was_training = model.training
        groups = detect_symmetries(model.train(), batches[:4], loss_fn)
        model.train(was_training)
        if groups:
            runs.append((NoetherCharges(groups), None))
        else:
            skipped["noether_charges"] = "detect_symmetries found no symmetry group ({})".format("; ".join(groups.notes))
        runs.append((LossCurvature(batches[0], loss_fn), None))
        runs.append((RepresentationAlignment(batches[0], loss_fn), None))
    else:
        why = "needs a loss and a probe batch (loss_fn= and probe= in Python, or a model with a known head)"
        skipped["noether_charges"] = skipped["loss_curvature"] = skipped["representation_alignment"] = why
    if probe is None:
        skipped["representation_drift"] = "needs a probe batch"
    elif hasattr(getattr(model, "config", None), "output_hidden_states"):
        runs.append((RepresentationDrift(), probe))  # a Hugging Face model's hidden states
    elif layers is not None:
        runs.append((RepresentationDrift(layers=list(layers)), probe))
    else:
        try:
            runs.append((RepresentationDrift(layers=_layers(model)), probe))
        except GoldstoneError:
            skipped["representation_drift"] = (f"{type(model).__name__} has no hook points: name the modules whose "
                                               "outputs to compare, goldstone.audit(..., layers=[module names])")
    if _heads(model):
        runs.append((AttentionPatterns(), repeated_tokens(model.config.vocab_size, length=32, batch=8)))
    else:
        skipped["attention_patterns"] = "not an attention model (no num_attention_heads in its config)"
    if hasattr(model, "features") and hasattr(model, "trunk") and hasattr(model, "k") and probe is not None:
        runs += [(OrderParameter(model.k), probe), (ProtectedJacobian(model.k), probe)]
    else:
        skipped["order_parameter"] = skipped["protected_jacobian"] = \
            "not an equivariant network (no features() / trunk() and block size k)"
    return Plan(runs, skipped, loss_name)


def _layers(model: nn.Module) -> list[str]:
    from goldstone.observables._layers import layer_names

    return layer_names(model, None)


def measure_checkpoint(model: nn.Module, runs: list[tuple[Observable, Any]], step: int,
                       on_observable: Callable[[str], None] = lambda name: None
                       ) -> tuple[pd.DataFrame, torch.Tensor | None, dict[str, float]]:
    """The tidy rows of every planned observable at one checkpoint, the Gram matrices of its
    representations (kept for the CKA between checkpoints), and the seconds each observable took;
    `on_observable(name)` is told which one is measured next."""
    frames, grams, seconds = [], None, {}
    for observable, batches in runs:
        on_observable(observable.name)
        observable.reset()
        start = time.perf_counter()
        (result,) = measure(model, [observable], batches, step=step)
        seconds[observable.name] = time.perf_counter() - start
        if isinstance(observable, RepresentationDrift):
            grams = observable.grams()[0]
            continue
        frames.append(place_rows(result.to_frame(), [step]))
        if isinstance(observable, NoetherCharges):
            frames.append(_charges_by_kind(result, step))
    return as_text_index(pd.concat(frames, ignore_index=True)), grams, seconds


def as_text_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Index columns holding names and numbers alike (a census layer "0 → 2", a head's layer 3)
    as text, so the frame is one table."""
    for column in frame.columns.difference(["step", "observable", "metric", "value"]):
        values = frame[column]
        if values.dtype == object or values.map(type).nunique() > 1:
            frame[column] = values.map(lambda v: v if pd.isna(v) or isinstance(v, str) else str(v))
    return frame


def _charges_by_kind(result, step: int) -> pd.DataFrame:
    """Mean |charge| / reference over the groups of each kind: rows of "noether_summary"."""
    relative = (result.charge[0].abs() / result.reference[0].clamp_min(1e-300)).numpy()
    kinds = pd.Series(relative).groupby(np.asarray(result.kinds)).mean()
    return pd.DataFrame({"step": step, "observable": "noether_summary", "metric": "relative_charge",
                         "kind": kinds.index, "value": kinds.to_numpy()})


@dataclasses.dataclass
class AuditResult:
    """An audit folder: `frame` (tidy rows of every checkpoint), `transitions` (one row per
    detected change), `checkpoints` (path, step, status) and `plan` (what applies, and why not)."""
    folder: Path
    frame: pd.DataFrame
    transitions: pd.DataFrame
    checkpoints: pd.DataFrame
    plan: pd.DataFrame
    loss: str = ""

    def report(self, path: str | Path | None = None) -> Path:
        """Write the audit's self-contained HTML report (``report.html`` in its folder, or `path`)."""
        path = Path(path) if path is not None else self.folder / "report.html"
        write_text(path, render(f"Goldstone audit: {self.folder.name}", report_sections(self)))
        return path


def _check_out(out: Path, identity: dict[str, Any]) -> None:
    """`out` must be empty, new, or hold this very audit (then it resumes)."""
    if (out / MARKER).is_file():
        stored = json.loads((out / MARKER).read_text())
        if {k: stored.get(k) for k in identity} != identity:
            raise RunFolderError(f"{out} holds an audit of {stored.get('target')!r} over other checkpoints; give "
                                 "another --out")
    elif out.exists() and foreign_entries(out):
        raise RunFolderError(f"{out} is not empty and holds no goldstone audit; refusing to write there")


def audit(model: nn.Module | str | Path, checkpoints: Sequence[str | Path] | None = None, probe: Batch | list | None = None,
          *, loss_fn: Callable | None = None, out: str | Path = "goldstone-audit", text: str | Path | None = None,
          treebank: str | Path | None = None, data: str | Path | None = None, text_key: str = "text",
          label_key: str = "label", probe_size: int = 64, layers: Sequence[str] | None = None, workers: int = 1,
          backend: str = "local", ray_address: str | None = None, quiet: bool = False) -> AuditResult:
    """Audit `model` over `checkpoints` (see the module docstring); `model` may be a folder or
    "minilm" (then `checkpoints` is a glob or None). Hugging Face targets get a probe of `probe_size`
    sentences of `text` (a file), else of `treebank` (a CoNLL-U file, whose trees also give every
    head's UAS), else a few built-in sentences, and the loss their head implies; `data` (CSV or JSON
    Lines of `text_key` and `label_key`) gives every head's specialisation; `layers` names the
    modules whose outputs the representation drift compares (default: the model's hook points;
    `checkpoints` may also be a glob for a model given as a module). With `workers` > 1
    or `backend="ray"` the checkpoints are measured in worker processes (one torch thread each) or
    Ray tasks, which need the model and the plan to pickle; the rows are those of a serial audit on
    one thread."""
    if workers < 1 or backend not in ("local", "ray"):
        raise GoldstoneError(f"audit: workers={workers}, backend={backend!r}; workers must be >= 1 and the backend "
                             "local or ray")
    out = Path(out)
    if isinstance(model, (str, Path)):
        target = resolve_target(model, checkpoints if isinstance(checkpoints, str) else None)
    else:
        found = matching(checkpoints) if isinstance(checkpoints, (str, Path)) else [Path(c) for c in checkpoints or []]
        target = Target(model, found, type(model).__name__)
    if not target.checkpoints:
        raise GoldstoneError("audit: no checkpoints to measure (give checkpoints=[...] or a folder that holds some)")
    loss_name = "your loss_fn" if loss_fn is not None else ""
    trees = _treebank(target, treebank)
    if target.tokenizer is not None:
        sentences = read_sentences(text) if text is not None or not trees else [t.text for t in trees[0]]
        probe = probe if probe is not None else _text_probe(target, sentences, probe_size)
        if loss_fn is None:
            loss_fn = kind_loss(target.model, target.kind)
            loss_name = loss_fn.description
    ordered = in_step_order(target.checkpoints)
    identity = {"target": target.name, "checkpoints": [str(path) for path, _ in ordered],
                **{key: None if value is None else str(value) for key, value in
                   (("text", text), ("treebank", treebank), ("data", data))}}
    labelled = _labelled(target, data, text_key, label_key)
    _check_out(out, identity)
    first = ordered[0][0]  # read, fitted and planned before anything is written, so a refusal leaves no folder
    try:
        reference = read_weights(first)
    except RunFolderError as err:
        raise GoldstoneError(f"the first checkpoint must be readable: {err}") from err
    fit_weights(target.model, reference, first)
    if probe is not None:
        _check_probe(target.model, probe)
    the_plan = plan(target, probe, loss_fn, reference, loss_name, layers)
    with claimed_folder(out):
        write_json(out / MARKER, identity)
        if trees:
            the_plan.runs.append((HeadUAS(trees[2]), trees[1]))
        else:
            the_plan.skipped["head_uas"] = "needs a treebank (--treebank FILE.conllu) and a Hugging Face attention model"
        if labelled is not None:
            the_plan.runs.append((labelled, None))
        else:
            the_plan.skipped["head_specialisation"] = ("needs labelled text (--data FILE --label-key KEY) and a Hugging "
                                                       "Face attention model")
        serial = workers == 1 and backend == "local"
        rows, seen, todo = [], {}, []
        title = "auditing checkpoints" if serial else "reading checkpoints"
        with Bar(title, len(ordered), "checkpoints", quiet) as bar:
            for rank, (path, step) in enumerate(ordered):
                bar.describe(f"{title}: step {step}")
                status, detail = load_checkpoint(target.model, path, seen, quiet)
                rows.append({"path": str(path), "step": step, "status": {"measured": "measured", "duplicate":
                             f"duplicate of {detail}", "skipped": f"skipped: {detail}"}[status]})
                if status == "measured" and not _files(out, step)["rows"].exists():
                    if serial:
                        _measure_into(out, target.model, the_plan.runs, step,
                                      lambda name: bar.describe(f"{title}: step {step}, {name}"))
                    else:
                        todo.append({"out": str(out), "path": str(path), "step": step})
                bar.update(rank + 1)
        if todo:
            _in_workers(out, target.model, the_plan.runs, todo, workers, backend, ray_address, quiet)
        frame = _gathered(out, rows, target.logged)
        table = transitions(timeline_rows(frame))
        checkpoints_table = pd.DataFrame(rows, columns=["path", "step", "status"])
        timings = pd.DataFrame([{"step": r["step"], "observable": k, "seconds": v} for r in rows
                                for k, v in r.get("seconds", {}).items()], columns=["step", "observable", "seconds"])
        write_parquet(out / "timings.parquet", timings, kind="audit_timings")
        plan_table = pd.DataFrame(
            [{"observable": o.name, "applies": True, "reason": ""} for o, _ in the_plan.runs]
            + [{"observable": k, "applies": False, "reason": v} for k, v in the_plan.skipped.items()])
        write_parquet(out / "frame.parquet", frame, kind="audit_frame")
        write_parquet(out / "transitions.parquet", table, kind="audit_transitions")
        write_parquet(out / "checkpoints.parquet", checkpoints_table, kind="audit_checkpoints")
        write_parquet(out / "plan.parquet", plan_table, kind="audit_plan")
        write_json(out / MARKER, {**identity, "loss": the_plan.loss})
        result = AuditResult(out, frame, table, checkpoints_table, plan_table, the_plan.loss)
        result.report()
    return result


def _check_probe(model: nn.Module, probe: Batch | list) -> None:
    """One forward pass on the probe's first batch, so that a probe the model cannot take is one
    line before anything is measured or written."""
    try:
        with torch.no_grad():
            run_batch(model, probe[0] if isinstance(probe, list) else probe, model_device(model))
    except (RuntimeError, TypeError, ValueError, IndexError) as err:
        raise GoldstoneError(f"audit: {type(model).__name__} cannot run on the probe: "
                             f"{(str(err).splitlines() or [type(err).__name__])[0]}") from err


def _files(out: Path, step: int) -> dict[str, Path]:
    """Where one checkpoint's rows, Gram matrices and timings are kept."""
    stem = out / "checkpoints" / f"step_{step:08d}"
    return {"rows": stem.with_suffix(".parquet"), "grams": stem.with_suffix(".safetensors"),
            "seconds": stem.with_suffix(".json")}


def _measure_into(out: Path, model: nn.Module, runs: list[tuple[Observable, Any]], step: int,
                  on_observable: Callable[[str], None] = lambda name: None) -> None:
    """Measure the checkpoint `model` holds and write its files, the rows last (they mark it done)."""
    frame, gram, seconds = measure_checkpoint(model, runs, step, on_observable)
    files = _files(out, step)
    if gram is not None:
        write_safetensors(files["grams"], {"grams": gram})
    write_json(files["seconds"], {"seconds": seconds})
    write_parquet(files["rows"], frame, kind="audit_checkpoint")


CONTEXT = "context.pt"
"""The model and the plan, pickled for worker processes."""
MEASURE_TASK = "goldstone.lab.audit:measure_task"
"""What a worker runs for each checkpoint."""
_CONTEXTS: dict[str, dict[str, Any]] = {}


def measure_task(out: str, path: str, step: int) -> None:
    """A worker's share: load the pickled model and plan once, then one checkpoint."""
    if out not in _CONTEXTS:
        _CONTEXTS[out] = torch.load(Path(out) / CONTEXT, weights_only=False)
    context = _CONTEXTS[out]
    fit_weights(context["model"], read_weights(path), path)
    _measure_into(Path(out), context["model"], context["runs"], step)


def _in_workers(out: Path, model: nn.Module, runs: list[tuple[Observable, Any]], todo: list[dict[str, Any]],
                workers: int, backend: str, address: str | None, quiet: bool) -> None:
    import pickle

    try:
        torch.save({"model": model, "runs": runs}, out / CONTEXT)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise GoldstoneError(f"audit: workers need the model, the probe and loss_fn to pickle ({err}); run it with "
                             "workers=1") from None
    with Bar(f"auditing {len(todo)} checkpoints on {workers} workers", len(todo), "checkpoints", quiet) as bar:
        finished: list[int] = []

        def done(i: int) -> None:
            finished.append(i)
            bar.update(len(finished))

        run_tasks(todo, MEASURE_TASK, workers, backend, address, out / "workers.log", done)
    (out / CONTEXT).unlink()


def timeline_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The series the timeline searches: not the per-group Noether charges (their summary per kind
    stands for them), every head's UAS (the best head's per relation) or every node's specialisation
    (their means), and
    changes since the first checkpoint only after it (zero there by definition)."""
    first = frame.step.min()
    keep = (frame.observable != "noether_charges") & ~(frame.metric.str.startswith("delta_") & (frame.step == first))
    keep &= ~frame.observable.str.endswith("head_uas") | frame.metric.isin(["best_accuracy", "heldout_accuracy"])
    keep &= ~frame.metric.isin(["node_accuracy", "node_labels"])
    return frame[keep].dropna(axis=1, how="all")


def _gathered(out: Path, rows: list[dict[str, Any]], logged: pd.DataFrame | None) -> pd.DataFrame:
    """Every measured checkpoint's rows, the CKA between checkpoints, and what the run logged
    itself at those steps (observables named "run:<observable>"); each row of `rows` gets the
    seconds its observables took."""
    from safetensors.torch import load_file

    frames, grams = [], {}
    for row in rows:
        if row["status"] != "measured":
            continue
        files = _files(out, row["step"])
        frames.append(pd.read_parquet(files["rows"]))
        row["seconds"] = json.loads(files["seconds"].read_text())["seconds"]
        if files["grams"].exists():
            grams[row["step"]] = load_file(str(files["grams"]))["grams"]
    if logged is not None:
        steps = {r["step"] for r in rows if r["status"] == "measured"}
        own = logged[logged.step.isin(steps)].assign(observable=lambda f: "run:" + f.observable)
        frames.append(own.dropna(axis=1, how="all"))
    if grams:
        steps = sorted(grams)
        drift = drift_from_grams(torch.stack([grams[s] for s in steps])).to_frame()
        drift["step"] = np.asarray(steps)[drift.step.to_numpy()]
        frames.append(drift)
    frame = as_text_index(pd.concat(frames, ignore_index=True))
    return frame.sort_values("step", kind="stable", ignore_index=True)


# -------------------------------------------------------------------------------- report


def _figure_html(path: Path, caption: str) -> str:
    import base64

    data = base64.b64encode(path.read_bytes()).decode()
    return f"<figure><img src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}</figcaption></figure>"


def _lines_figure(frame: pd.DataFrame, observable: str, metrics: list[str], index: str | None, path: Path,
                  ylabels: dict[str, str]) -> Path | None:
    """One panel per metric (`goldstone.plotting.curves`): the metric along steps, one line per
    index entry; with a single checkpoint, the metric of every index entry in the model's order."""
    from matplotlib.figure import Figure

    single = frame.step.nunique() == 1
    present = [m for m in metrics if holds(frame, observable, m) and not (single and m.startswith("delta_"))]
    if not present:
        return None
    fig = Figure(figsize=(4.2 * len(present), 3.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    legend = bool(index) and not single and frame[index].nunique() <= 12
    for ax, metric in zip(axes, present):
        if single and index:
            rows = series(frame, observable, metric)
            curves(rows.assign(position=np.arange(len(rows))), "position", metric, observable=observable, panels=[],
                   labels={**ylabels, "position": f"{index} (in the model's order)"}, legend=False, ax=ax,
                   ls="none", marker="o", ms=3)
        else:
            curves(frame, "step", metric, index, observable=observable, panels=[],
                   labels={**ylabels, "step": "training step"}, legend=legend and ax is axes[-1], ax=ax, lw=0.8,
                   marker="." if frame.step.nunique() < 30 else None, ms=None)
    write_figure(path, fig)
    return path


YLABELS = {"entanglement": "centre-cut entanglement (nats)", "delta_entanglement": "entanglement of W - W_0 (nats)",
           "delta_norm": "|W - W_0|_F", "norm": "|W|_F", "relative_charge": "mean |charge| / |theta|^2 of the groups",
           "cka_previous": "CKA with the previous checkpoint", "cka_first": "CKA with the first checkpoint",
           "sharpness": "top Hessian eigenvalue", "loss": "loss on the probe", "dead": "dead neurons",
           "independent": "independent neurons", "c": "order parameter $c^l$",
           "best_accuracy": "UAS of the best head", "labels_per_unit": "labels a head recognises",
           "accuracy": "accuracy of the head alone"}
"""Axis labels of the report's figures."""


def report_sections(result: AuditResult) -> list[str]:
    """The audit report: summary and timeline first, then one section per finding."""
    frame, table, folder = result.frame, result.transitions, result.folder
    measured = result.checkpoints[result.checkpoints.status == "measured"]
    figures = folder / "figures"
    out = ["<h2>Summary</h2>",
           f"<p>{len(measured)} of {len(result.checkpoints)} checkpoints measured, steps "
           f"{', '.join(f'{s:g}' for s in measured.step)}.</p>",
           html_table(result.checkpoints),
           "<h3>What was measured, and what does not apply</h3>", html_table(result.plan),
           f"<p>Loss (for the symmetries, the charges' groups and the sharpness): {html.escape(result.loss or 'none')}.</p>",
           "<h2>Timeline</h2>"]
    if table.empty:
        out.append("<p>No series changes by more than its own noise allows (at least 5 checkpoints are needed).</p>")
    else:
        index = index_columns(table)
        out.append(f"<p>{len(table)} transitions in all (<code>transitions.parquet</code>); the "
                   f"{min(len(table), TIMELINE_LINES)} largest as shares of their series' range, in step order:</p>")
        out.append("<ul>" + "".join(f"<li>{html.escape(describe(row, index))} ({row.share:.0%} of its range)</li>"
                                    for _, row in salient(table, TIMELINE_LINES).iterrows()) + "</ul>")
        write_figure(figures / "timeline.png", audit_timeline(table, steps=frame.step.to_numpy(float)))
        out.append(_figure_html(figures / "timeline.png", "The largest transitions, earliest at the top."))
    panels = {
        "weight_statistics": (["norm", "stable_rank", "entanglement", "delta_norm"], "parameter"),
        "neuron_census": (["dead", "independent", "balance"], "layer"),
        "loss_curvature": (["loss", "sharpness"], None),
        "representation_drift": (["cka_previous", "cka_first"], "layer"),
        "attention_patterns": (["previous_token", "duplicate_token", "induction"], None),
        "order_parameter": (["c"], "layer"),
        "head_uas": (["best_accuracy"], "relation"),
        "head_specialisation": (["accuracy", "labels_per_unit"], "head"),
    }
    for observable, title in FINDINGS.items():
        present = observable in set(frame.observable)
        out.append(f"<h2>{html.escape(title)}</h2>")
        if not present:
            reason = dict(zip(result.plan.observable, result.plan.reason)).get(observable, "not measured")
            out.append(f"<p>Not measured: {html.escape(reason or 'not measured')}.</p>")
            continue
        rows = frame[frame.observable == observable]
        if observable == "noether_charges":
            rows = frame[frame.observable == "noether_summary"]
            metrics, index = ["relative_charge"], "kind"
        elif observable == "attention_patterns":
            rows = rows.groupby(["step", "observable", "metric", "layer"], as_index=False).value.max()
            metrics, index = panels[observable][0], "layer"
        else:
            metrics, index = panels.get(observable, (sorted(rows.metric.unique())[:3], None))
        figure = _lines_figure(rows, observable if observable != "noether_charges" else "noether_summary", metrics,
                               index, figures / f"{observable}.png", YLABELS)
        if figure is not None:
            caption = f"{title} at every measured checkpoint" + (" (the best head of each layer)"
                                                                  if observable == "attention_patterns" else "")
            out.append(_figure_html(figure, caption))
    return out


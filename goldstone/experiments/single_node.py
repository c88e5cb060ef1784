"""What each attention head, node subset and single node has learned, before and after fine-tuning.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter): fine-tune a BERT on
relation classification; each head then recognises its own limited subset of labels (symmetry breaking among
heads), each single node a few labels in clusters; a subset of n nodes of a head predicts fewer labels than the
head, with accuracy per label falling then rising as n grows. At each stage (step -1: the same architecture at
random initialisation; step 0: the pre-trained model; then log-spaced fine-tuning steps) a readout is fitted on
the training split's nodes at one site of one block and kept fixed; the test split gives every head's and node's
label x output matrix (`goldstone.observables.unit_performance`), the heads' specialisation, and, at the
pre-trained and the final stage, the crossover A(n) with its convex-hull bound. With `tokens` > 0, the
pre-trained model's units are also scored on masked-token prediction (tokens per unit).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from goldstone.analysis.crossover import CrossoverResult, crossover
from goldstone.analysis.specialisation import specialisation
from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.frames import series
from goldstone.core.memory import transformer_activations
from goldstone.core.observable import measure
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.data import batch_indices
from goldstone.data.masked_tokens import masked_token_batches
from goldstone.data.text_tasks import ENTITY_MARKERS, TASKS, TextDataset, encode_batches, load_task
from goldstone.models import adapters
from goldstone.models.pretrained import load_classifier
from goldstone.training.loop import make_optimizer, train_loop
from goldstone.observables.unit_performance import (
    POOLS,
    READOUTS,
    SILENCE,
    UnitActivations,
    UnitGroups,
    UnitPerformanceResult,
    fit_readout,
    fit_unit_readouts,
    unit_performance,
)

INIT_STEP = -1  # metrics of the randomly initialised model are logged at this step
MARKERS = re.compile(r"\s*\[/?E[12]\]\s*")  # entity markers, removed from the texts of the masked-token task


@dataclasses.dataclass
class SingleNodeConfig:
    model: str = param("minilm", "'minilm', a Hugging Face model folder, or a finished mlm_syntax run folder")
    task: str = param("ewt_relation", "labelled texts", choices=TASKS)
    data: str = param("", "the task's file: FewRel JSON (task fewrel), CSV or JSONL (task file)")
    text_key: str = param("text", "task file: the text column or key")
    label_key: str = param("label", "task file: the label column or key")
    treebank: str = param("", "folder with en_ewt-ud-train.conllu (default: $GOLDSTONE_UD_EWT or ../shared)")
    max_per_label: int = param(40, "examples kept per label (0: all, for fewrel and file)", ge=0)
    min_per_label: int = param(20, "labels with fewer examples are dropped", ge=1)
    test_fraction: float = param(0.3, "share of each label held out for scoring the units", gt=0, le=0.9)
    max_length: int = param(64, "tokens per text", ge=8)
    batch_size: int = param(32, "texts per batch (fine-tuning and measurement)", ge=1)
    finetune_steps: int = param(100, "fine-tuning steps (0: measure the model as it is)", ge=0)
    lr: float = param(1e-4, "AdamW learning rate (linear warm-up over 10 % of the steps)", gt=0)
    weight_decay: float = param(0.01, "AdamW weight decay, on weights of dim >= 2 only (not biases, LayerNorm)", ge=0)
    checkpoints: int = param(2, "measurements along fine-tuning, log-spaced, the last at the end", ge=1)
    layer: int = param(-1, "block whose nodes are measured (-1: the last)")
    site: str = param("heads", "nodes: head outputs before the output projection, attention or MLP output",
                      choices=adapters.UNIT_SITES)
    pool: str = param("cls", "position read per text: first token (what the classifier reads) or the mean",
                      choices=tuple(p for p in POOLS if p != "masked"))
    silence: str = param("zero", "silenced nodes are set to zero or to their training mean", choices=SILENCE)
    readout: str = param("fixed", "one readout fitted on all nodes, or one retrained per unit (another quantity)",
                         choices=READOUTS)
    threshold: float = param(0.3, "threshold on the normalised label x output matrix", gt=0, le=1)
    subsets: int = param(4, "random node subsets per head and size for the crossover", ge=1)
    tokens: int = param(30, "most frequent tokens scored on masked-token prediction (0: skip)", ge=0)
    keep_checkpoints: int = param(1, "checkpoints kept (0 keeps all)", ge=0)

    def validate(self) -> None:
        if self.task in ("fewrel", "file") and not self.data:
            raise ConfigError(f"task {self.task!r} needs key 'data' (a local file)")

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): the activations of a MiniLM-sized encoder (6 layers,
        width 384, 12 heads) on one batch; the model's own size is a fixed cost."""
        return {"activations (keys batch_size, max_length)":
                transformer_activations(self.batch_size, self.max_length, 384, 6, 12)}


def _stage_steps(total: int, count: int) -> list[int]:
    """`count` log-spaced fine-tuning steps ending at `total`."""
    if total == 0:
        return []
    return sorted({int(round(s)) for s in np.geomspace(max(1, total / 10 ** 1.5), total, count)} | {total})


class _Measurement:
    """Everything one stage measures, on fixed train/test batches."""

    def __init__(self, ctx: RunContext, model, train: list, test: list, labels: list[str]):
        cfg: SingleNodeConfig = ctx.config
        self.ctx, self.cfg, self.labels = ctx, cfg, labels
        self.train, self.test = train, test
        layers = adapters.num_layers(model)
        self.layer = cfg.layer % layers if -layers <= cfg.layer < layers else None
        if self.layer is None:
            raise ConfigError(f"key 'layer'={cfg.layer} is out of range: the model has {layers} blocks")
        self.heads, self.head_dim = adapters.num_heads(model), adapters.head_dim(model)
        units = adapters.num_units(model, cfg.site)
        self.groups = {"heads": UnitGroups.heads(units // self.head_dim, self.head_dim), "nodes": UnitGroups.nodes(units)}
        if cfg.site != "heads":  # after a projection, consecutive d_head nodes are chunks, not heads
            self.groups["heads"].kind = "chunk"

    def collect(self, model, batches: list, pool: str) -> tuple[torch.Tensor, torch.Tensor]:
        observable = UnitActivations(self.layer, self.cfg.site, pool)
        model.to(self.ctx.device)
        measure(model, [observable], [({k: v.to(self.ctx.device) for k, v in x.items()}, y.to(self.ctx.device))
                                      for x, y in batches])
        return observable.collected()

    def units(self, train: tuple, test: tuple, labels: list[str]) -> tuple[dict[str, UnitPerformanceResult], object]:
        readout = fit_readout(*train, len(labels))
        results = {}
        for kind, groups in self.groups.items():
            own = fit_unit_readouts(*train, groups, len(labels)) if self.cfg.readout == "retrained" else None
            results[kind] = unit_performance(*test, readout, groups, self.cfg.silence, self.cfg.threshold, labels,
                                             unit_readout=own)
        return results, readout

    def stage(self, model, step: int, name: str, with_crossover: bool) -> dict[str, UnitPerformanceResult]:
        ctx = self.ctx
        train, test = self.collect(model, self.train, self.cfg.pool), self.collect(model, self.test, self.cfg.pool)
        results, readout = self.units(train, test, self.labels)
        ctx.log(step, "readout", results["heads"].full_accuracy, "accuracy")
        for kind, result in results.items():
            result.save(ctx.folder / "arrays" / f"{name}_{kind}.safetensors")
            ctx.log(step, kind, result.accuracy.mean(), "accuracy")
            ctx.log(step, kind, result.labels_per_unit.double().mean(), "labels_per_unit")
            ctx.log(step, kind, result.predicted_labels.double().mean(), "predicted_labels")
            ctx.log(step, kind, result.noise.double().mean(), "noise")
            ctx.log(step, kind, result.snr.nanmedian(), "snr_median")
            for metric, value in dataclasses.asdict(specialisation(result.recognised)).items():
                ctx.log(step, f"{kind}_specialisation", value, metric)
        if with_crossover and self.cfg.site == "heads":
            result = crossover(*test, readout, self.heads, self.head_dim, count=self.cfg.subsets,
                               silence=self.cfg.silence, seed=ctx.seed)
            result.save(ctx.folder / "arrays" / f"{name}_crossover.safetensors")
            ctx.log_results(step, [result])
        return results


def _tokens(ctx: RunContext, model, tokenizer, texts: list[str], measurement: _Measurement, step: int, name: str):
    """Tokens per unit: the units scored on predicting the `tokens` most frequent masked tokens."""
    cfg: SingleNodeConfig = ctx.config
    plain = list(dict.fromkeys(MARKERS.sub(" ", text).strip() for text in texts))
    batches, names = masked_token_batches(plain, tokenizer, cfg.tokens, cfg.max_length, cfg.batch_size, ctx.seed)
    if len(batches) < 2:
        raise ConfigError(f"key 'tokens': {len(plain)} distinct texts make fewer than two batches of {cfg.batch_size}")
    middle = len(batches) // 2
    train = measurement.collect(model, batches[:middle], "masked")
    test = measurement.collect(model, batches[middle:], "masked")
    results, _ = measurement.units(train, test, names)
    for kind, result in results.items():
        result.save(ctx.folder / "arrays" / f"{name}_tokens_{kind}.safetensors")
        ctx.log(step, f"tokens_{kind}", result.accuracy.mean(), "accuracy")
        ctx.log(step, f"tokens_{kind}", result.labels_per_unit.double().mean(), "tokens_per_unit")
    return results["heads"]


@experiment("single_node", SingleNodeConfig, "what each head, node subset and node of a transformer has learned",
            extras=("hf",))
def single_node(ctx: RunContext) -> None:
    cfg: SingleNodeConfig = ctx.config
    limits = {"max_per_label": cfg.max_per_label, "min_per_label": cfg.min_per_label}
    dataset = load_task(cfg.task, cfg.data, cfg.text_key, cfg.label_key, cfg.treebank, seed=ctx.seed, **limits)
    train_set, test_set = dataset.split(cfg.test_fraction, ctx.seed)
    model, tokenizer = load_classifier(cfg.model, dataset.num_labels, seed=ctx.seed, keep_whole=ENTITY_MARKERS)
    train = encode_batches(train_set, tokenizer, cfg.batch_size, cfg.max_length)
    test = encode_batches(test_set, tokenizer, cfg.batch_size, cfg.max_length)
    measurement = _Measurement(ctx, model, train, test, dataset.label_names)
    stages = _stage_steps(cfg.finetune_steps, cfg.checkpoints)

    optimizer = make_optimizer(model, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.to(ctx.device)

    def measure_stage(step: int) -> None:
        if step > 0:
            final = step == cfg.finetune_steps
            measurement.stage(model, step, "finetuned" if final else f"step{step}", with_crossover=final)
            return
        ctx.log(0, "data", len(train_set), "train_examples")
        ctx.log(0, "data", len(test_set), "test_examples")
        initial, _ = load_classifier(cfg.model, dataset.num_labels, random_init=True, seed=ctx.seed,
                                     keep_whole=ENTITY_MARKERS)
        measurement.stage(initial, INIT_STEP, "init", with_crossover=False)
        if cfg.tokens:
            _tokens(ctx, initial, tokenizer, dataset.texts, measurement, INIT_STEP, "init")
        del initial
        measurement.stage(model, 0, "pretrained", with_crossover=True)
        if cfg.tokens:
            _tokens(ctx, model, tokenizer, dataset.texts, measurement, 0, "pretrained")

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(train_set), cfg.batch_size, step, ctx.seed)
        part = train_set.subset(idx.numpy())
        (inputs, labels), = encode_batches(part, tokenizer, len(part), cfg.max_length)
        loss = model(**{k: v.to(ctx.device) for k, v in inputs.items()}, labels=labels.to(ctx.device)).loss
        ctx.log_tensor(step + 1, "finetune", loss, "loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.finetune_steps, loss_fn, warmup=max(1, cfg.finetune_steps // 10),
               measurements=[({0, *stages}, measure_stage)], checkpoint=stages, description="single_node: fine-tuning")
    summarise(ctx, cfg, dataset)


def _load(ctx: RunContext, name: str) -> UnitPerformanceResult:
    return UnitPerformanceResult.load(ctx.folder / "arrays" / f"{name}.safetensors")


def summarise(ctx: RunContext, cfg: SingleNodeConfig, dataset: TextDataset) -> None:
    """Expertise heat maps, cluster-size histograms, the crossover with its bound, symmetry breaking along steps."""
    final = "finetuned" if cfg.finetune_steps else "pretrained"
    stages = list(dict.fromkeys(("init", "pretrained", final)))  # every stage here was measured before summarising
    heads = {s: _load(ctx, f"{s}_heads") for s in stages}
    nodes = {s: _load(ctx, f"{s}_nodes") for s in stages}
    unit = "head" if cfg.site == "heads" else "chunk"
    # the model as given is "pretrained" only if it is fine-tuned here; measured as it is, it may be fine-tuned already
    shown = {"init": "random init", "pretrained": "before fine-tuning" if cfg.finetune_steps else "as given",
             "finetuned": "fine-tuned"}
    _expertise_figure(ctx, {shown[s]: r for s, r in heads.items()}, unit,
                      f"{unit} x label accuracy (fixed readout, other {unit}s silenced)", "expertise")
    if cfg.tokens:
        tokens = {shown[s]: _load(ctx, f"{s}_tokens_heads") for s in ("init", "pretrained")}
        _expertise_figure(ctx, tokens, unit, f"{unit} x token accuracy on masked-token prediction",
                          "token_expertise")
    _cluster_figure(ctx, {shown[s]: r for s, r in nodes.items()})
    crossovers = {s: CrossoverResult.load(ctx.folder / "arrays" / f"{s}_crossover.safetensors")
                  for s in ("pretrained", final) if (ctx.folder / "arrays" / f"{s}_crossover.safetensors").exists()}
    if crossovers:
        _crossover_figure(ctx, crossovers, len(dataset.label_names))
    _symmetry_figure(ctx)
    rows = []
    for s in stages:
        spec = specialisation(heads[s].recognised)
        rows.append({"stage": s, "readout accuracy": heads[s].full_accuracy,
                     f"{unit} accuracy": float(heads[s].accuracy.mean()),
                     "node accuracy": float(nodes[s].accuracy.mean()),
                     f"labels per {unit}": float(heads[s].labels_per_unit.double().mean()),
                     "labels per node": float(nodes[s].labels_per_unit.double().mean()),
                     f"{unit} label-set overlap": spec.overlap, "coverage entropy": spec.coverage_entropy,
                     "node SNR (median)": float(nodes[s].snr.nanmedian())})
    ctx.table("stages", pd.DataFrame(rows), f"Per stage, on the test split: accuracy of the readout on all nodes, "
              f"mean accuracy of a single {unit} and node through it, labels recognised, and the {unit}s' symmetry "
              f"breaking ({len(dataset.label_names)} labels, chance {1 / len(dataset.label_names):.3f}).")
    last = rows[-1]
    ctx.headline("readout_accuracy", last["readout accuracy"])
    ctx.headline(f"{unit}_accuracy", last[f"{unit} accuracy"])
    ctx.headline("node_accuracy", last["node accuracy"])
    ctx.headline(f"labels_per_{unit}", last[f"labels per {unit}"])
    ctx.headline(f"{unit}_overlap", last[f"{unit} label-set overlap"])


def _expertise_figure(ctx: RunContext, results: dict[str, UnitPerformanceResult], unit: str, title: str,
                      name: str) -> None:
    fig = Figure(figsize=(4.5 * len(results), 3.6))
    axes = fig.subplots(1, len(results), squeeze=False, sharey=True)
    for ax, (stage, result) in zip(axes[0], results.items()):
        image = ax.imshow(result.label_accuracy.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set(title=f"{stage} (readout acc {result.full_accuracy:.2f})", xlabel="label")
        ax.set_xticks(range(len(result.labels)), result.labels, rotation=90,
                      fontsize=5 if len(result.labels) > 12 else 8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # units are numbered 0, 1, ...
    axes[0, 0].set_ylabel(unit)
    fig.colorbar(image, ax=axes[0].tolist(), label="accuracy per label")
    fig.suptitle(title, fontsize=10)
    ctx.figure(name, fig, f"{title}: the accuracy of each unit alone on each label, per stage "
                          f"({', '.join(results)}).")


def _cluster_figure(ctx: RunContext, nodes: dict[str, UnitPerformanceResult]) -> None:
    from goldstone.observables.label_clusters import label_clusters

    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2)
    for stage, result in nodes.items():
        sizes = label_clusters(result.label_output, result.settings.get("threshold", 0.3)).sizes().numpy()
        top = max(int(sizes.max()) if len(sizes) else 1, 1)
        axes[0].hist(sizes, bins=np.arange(0.5, top + 1.5), histtype="step", lw=1.5, label=stage)
        axes[1].hist(result.labels_per_unit.numpy(), bins=np.arange(-0.5, len(result.labels) + 1.5),
                     histtype="step", lw=1.5, label=stage)
    axes[0].set(xlabel="cluster size (labels)", ylabel="clusters", title="single nodes: cluster sizes")
    axes[1].set(xlabel="labels recognised", ylabel="nodes", title="single nodes: labels per node")
    axes[0].legend(fontsize=8)
    ctx.figure("node_clusters", fig, "Single nodes: histogram of label-cluster sizes and of labels recognised "
                                     "(diagonal of the thresholded label x output matrix), per stage.")


def _crossover_figure(ctx: RunContext, results: dict[str, CrossoverResult], num_labels: int) -> None:
    fig = Figure(figsize=(9.5, 3.6))
    axes = fig.subplots(1, 2)
    for i, (stage, result) in enumerate(results.items()):
        n = result.size.numpy()
        a = result.accuracy_per_label.numpy()
        k = result.predicted_labels.numpy()
        axes[0].plot(n, np.nanmean(a, 1), "o-", color=f"C{i}", label=f"{stage}: A(n)")
        axes[0].fill_between(n, *np.nanpercentile(a, [10, 90], axis=1), color=f"C{i}", alpha=0.2)
        axes[0].plot(n, np.mean(1 / np.maximum(k, 1), 1), "--", color=f"C{i}", label=f"{stage}: 1/K(n)")
        axes[0].plot(n[-1], np.nanmean(a[-1]), "*", ms=12, color=f"C{i}")
        axes[1].plot(n, k.mean(1), "o-", color=f"C{i}", label=f"{stage}: K(n) predicted")
        axes[1].plot(n, result.bound.numpy().mean(1), "s:", color=f"C{i}", label=f"{stage}: hull bound")
    axes[0].set(xscale="log", xlabel="nodes n of a head", ylabel="accuracy per predicted label",
                title="crossover (star: full head; band: 10-90 % of subsets)")
    axes[1].axhline(num_labels, color="grey", lw=0.8)
    axes[1].set(xscale="log", xlabel="nodes n of a head", ylabel="labels", title="labels predicted vs convex-hull bound")
    for ax in axes:
        ax.legend(fontsize=7)
    ctx.figure("crossover", fig, "Random n-node subsets of each head through the fixed readout: accuracy per "
                                 "predicted label A(n) against 1/K(n), and K(n) against its convex-hull bound.")


def _symmetry_figure(ctx: RunContext) -> None:
    m = ctx.metrics
    rows = series(m, "heads_specialisation")
    if rows.step.nunique() < 2:
        return
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, metric in enumerate(("specialisation", "overlap", "coverage_entropy", "distinct_sets")):
        values = series(rows, "heads_specialisation", metric)
        trained = values[values.step >= 0]
        ax.plot(trained.step.clip(lower=0.5), trained.value, "o-", color=f"C{i}", label=metric)
        init = values[values.step == INIT_STEP].value
        if len(init):
            ax.axhline(float(init.iloc[0]), color=f"C{i}", ls=":", lw=1)
    ax.set(xscale="log", xlabel="fine-tuning step (0 plotted at 0.5)", ylabel="value (0 to 1)",
           title="symmetry breaking among heads (dotted: random init)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))  # beside the axes: covers no point
    ctx.figure("symmetry_breaking", fig, "How specialised and distinct the heads' label sets are along fine-tuning; "
                                         "dotted lines: the same architecture at random initialisation.")

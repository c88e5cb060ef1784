"""Masked-LM pre-training of a small BERT from scratch on UD English EWT, watching syntax emerge.

"Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in MLMs"
(Chen et al., ICLR 2024): the MLM loss drops steeply while the best head's UAS spikes (structure
onset), and grammatical capability rises after it. At log-spaced checkpoints this logs the MLM
loss (train and dev), head UAS on EWT dev (best head, held-out best head), and minimal-pair
accuracy (agreement pairs generated from EWT dev, scored by pseudo-log-likelihood). `variant`
applies the syntactic-attention regulariser: SAS- (lambda > 0), SAS+ (lambda < 0), or transient
SAS- released at `release_step`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from goldstone.core.atomic import atomic_dir
from goldstone.core.config import param, resolve_config
from goldstone.core.errors import ConfigError, GoldstoneError
from goldstone.core.frames import series
from goldstone.core.memory import FLOAT32, ROW, training_state, transformer_activations
from goldstone.core.observable import measure, model_device
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.data import batch_indices
from goldstone.data.treebank import EncodedBatch, encode_sentences, read_conllu, treebank_dir
from goldstone.data.wordpiece import cached_wordpiece
from goldstone.observables.head_uas import HeadUAS
from goldstone.data.masking import mask_tokens
from goldstone.data.synthetic_language import AGREEMENT_RELATIONS
from goldstone.training.loop import make_optimizer, train_loop
from goldstone.training.syntactic_regulariser import SyntacticRegulariser

VARIANTS = ("baseline", "sas-", "sas+", "transient")
POSITIONS = 128  # position embeddings: minimal pairs are scored whole, beyond the training window


CORPUS_DEFAULTS = {
    "ewt": dict(layers=4, lr=5e-4, batch_size=32, steps=2000, dropout=0.1, eval_every=0, pairs_every=1),
    "synthetic": dict(layers=3, lr=1e-3, batch_size=64, steps=3000, dropout=0.0, eval_every=50, pairs_every=4),
    "text": dict(layers=4, lr=5e-4, batch_size=32, steps=2000, dropout=0.1, eval_every=0, pairs_every=1),
}
"""Keys left at None take their corpus's value: the EWT setup of the paper's small-scale runs, and
the synthetic setup found by the sweep in docs/syntax.md (the research pilot's model)."""


@dataclasses.dataclass
class MLMSyntaxConfig:
    corpus: str = param("ewt", "training text: UD English EWT, the synthetic agreement language "
                        "(goldstone.data.synthetic_language), or your own text file (`text_file`; trees, dev loss and "
                        "minimal pairs from the treebank's dev set)", choices=tuple(CORPUS_DEFAULTS))
    text_file: str = param("", "UTF-8 text, one sentence (or short paragraph) per line; lines longer than max_length "
                           "tokens are cut", when={"corpus": ("text",)})
    variant: str = param("baseline", "regulariser: none, SAS- (lambda), SAS+ (-lambda), transient SAS-",
                         label="regulariser", choices=VARIANTS)
    lam: float = param(1e-3, "regulariser strength |lambda| (a sum over arcs, layers and heads)", ge=0)
    form: str = param("uniform", "regulariser over layers and heads: sum (uniform) or max", choices=("uniform", "max"))
    release_step: int = param(500, "transient variant: lambda is 0 from this step on", ge=1)
    treebank: str = param("", "folder with en_ewt-ud-{train,dev}.conllu (default: $GOLDSTONE_UD_EWT or ../shared)")
    max_train_sentences: int = param(0, "train on the first N sentences (0: all 12,544)", ge=0,
                                     when={"corpus": ("ewt",)})
    vocab_size: int = param(4000, "WordPiece vocabulary", ge=100, when={"corpus": ("ewt",)})
    sentences: int = param(50_000, "synthetic training sentences", ge=100, when={"corpus": ("synthetic",)})
    classes: int = param(8, "agreement classes", ge=1, when={"corpus": ("synthetic",)})
    nouns: int = param(48, "noun lemmas (each with a fixed class)", ge=0, when={"corpus": ("synthetic",)})
    adjective_p: float = param(0.6, "probability of each further adjective (sets the Det-N distance)",
                               when={"corpus": ("synthetic",)})
    max_adjectives: int = param(4, "adjectives per noun phrase at most", when={"corpus": ("synthetic",)})
    pp_p: float = param(0.3, "probability of a prepositional phrase after a noun", when={"corpus": ("synthetic",)})
    relative_p: float = param(0.25, "probability of a relative clause after a noun", when={"corpus": ("synthetic",)})
    depth: int = param(3, "noun-phrase nesting levels (1: none)", when={"corpus": ("synthetic",)})
    agreement: float = param(1.0, "share of agreeing words that take their controller's class (the rest: noise)",
                             when={"corpus": ("synthetic",)})
    local_cue: bool = param(False, "adjectives agree too (a local cue to the class)",
                            label="adjectives agree (local cue)", when={"corpus": ("synthetic",)})
    max_length: int = param(48, "tokens per sentence (longer ones are cut; their lost arcs are counted)", ge=8)
    hidden: int = param(64, "hidden size", ge=8)
    layers: int | None = param(None, "transformer blocks (default: 4 on EWT, 3 on synthetic)",
                               label="transformer blocks", ge=1)
    heads: int = param(4, "attention heads", ge=1)
    dropout: float | None = param(None, "dropout of BERT's hidden states and attention (default: 0.1 on EWT, 0 on "
                                  "synthetic)", ge=0, le=0.9)
    steps: int | None = param(None, "optimiser steps (default: 2000 on EWT, 3000 on synthetic)", ge=10)
    batch_size: int | None = param(None, "sentences per step (default: 32 on EWT, 64 on synthetic)", ge=1)
    lr: float | None = param(None, "AdamW peak learning rate, linear warm-up over 5 % of the steps, then constant "
                             "(default: 5e-4 on EWT, 1e-3 on synthetic)", label="learning rate", gt=0)
    weight_decay: float = param(0.01, "AdamW weight decay, on weights of dim >= 2 only (not biases, LayerNorm)", ge=0)
    checkpoints: int = param(16, "evaluations, log-spaced from step 10 to the end (when eval_every is 0)", ge=2)
    transition_from: int | None = param(None, "first step searched for the loss drop and the UAS rise (default: 4 x "
                                        "the warm-up on synthetic, after its fall to the unigram plateau; else 1)",
                                        ge=1)
    eval_every: int | None = param(None, "evaluate every N steps instead (0: log-spaced; default: 0 on EWT, 50 on "
                                   "synthetic, fine enough to resolve a drop)", ge=0)
    eval_sentences: int = param(256, "dev sentences (of the treebank, or generated) for loss and head UAS", ge=8)
    minimal_pairs: int = param(100, "minimal pairs per phenomenon (0: skip)", ge=0)
    pairs_every: int | None = param(None, "score the minimal pairs at every Nth evaluation and the last (default: 4 "
                                    "on synthetic, every 200 steps, since scoring costs more than the rest of an "
                                    "evaluation; 1 elsewhere)", ge=1)
    blimp: str = param("", "BLiMP JSONL file, or folder of them, scored instead of pairs generated from EWT dev",
                       when={"corpus": ("ewt", "text")})
    keep_checkpoints: int = param(1, "checkpoints kept (0 keeps all)", ge=0)

    def __post_init__(self) -> None:
        for key, value in CORPUS_DEFAULTS[self.corpus].items():
            if getattr(self, key) is None:
                setattr(self, key, value)

    def grammar(self):
        from goldstone.data.synthetic_language import Grammar

        return Grammar(nouns=self.nouns, classes=self.classes, adjective_p=self.adjective_p,
                       max_adjectives=self.max_adjectives, pp_p=self.pp_p, relative_p=self.relative_p,
                       depth=self.depth, agreement=self.agreement, local_cue=self.local_cue,
                       max_words=min(30, self.max_length - 2))

    def validate(self) -> None:
        if self.corpus == "synthetic":
            grammar = self.grammar()
            if grammar.max_words < grammar.min_words:
                raise ConfigError(f"key 'max_length': {self.max_length} tokens leave room for {grammar.max_words} "
                                  f"words ([CLS] and [SEP] take 2), but synthetic sentences have at least "
                                  f"{grammar.min_words}: max_length must be at least {grammar.min_words + 2}")
            grammar.validate()
        if self.corpus == "text":
            if not self.text_file:
                raise ConfigError("key 'text_file': corpus=text needs a text file (one sentence per line)")
            if not Path(self.text_file).is_file():
                raise ConfigError(f"key 'text_file': {self.text_file} is not a file")
            if self.variant != "baseline":
                raise ConfigError(f"key 'variant': {self.variant} regularises attention toward gold trees, which "
                                  "corpus=text does not have")
        if self.hidden % self.heads:
            raise ConfigError(f"key 'hidden'={self.hidden} is not divisible by key 'heads'={self.heads}")

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): the encoder (vocabulary embeddings and 12 hidden^2
        per block) with AdamW's state, its activations on a batch, the dev sentences' attention maps
        for head UAS, and the generated corpus (about a logged row's size per token while it is built)."""
        corpus = self.sentences if self.corpus == "synthetic" else 0
        return {"the encoder with AdamW's state (keys vocab_size, hidden, layers)":
                training_state(self.vocab_size * self.hidden + 12 * self.layers * self.hidden ** 2),
                "activations (keys batch_size, max_length, hidden, layers, heads)":
                transformer_activations(self.batch_size, self.max_length, self.hidden, self.layers, self.heads),
                "attention maps for head UAS (keys eval_sentences, max_length, layers, heads)":
                self.eval_sentences * self.layers * self.heads * self.max_length ** 2 * FLOAT32,
                "the synthetic corpus (keys sentences, max_length)": corpus * self.max_length * ROW}

    def regulariser(self) -> SyntacticRegulariser | None:
        signs = {"baseline": 0.0, "sas-": 1.0, "sas+": -1.0, "transient": 1.0}
        if signs[self.variant] == 0.0 or self.lam == 0.0:
            return None
        release = self.release_step if self.variant == "transient" else None
        return SyntacticRegulariser(signs[self.variant] * self.lam, self.form, release_step=release)


def checkpoint_steps(total: int, count: int) -> list[int]:
    """`count` log-spaced steps from 10 to `total` (duplicates merged)."""
    return sorted({int(round(s)) for s in np.geomspace(10, total, count)})


def _folder(cfg: MLMSyntaxConfig) -> Path:
    folder = Path(cfg.treebank) if cfg.treebank else treebank_dir()
    if folder is None or not (folder / "en_ewt-ud-train.conllu").exists():
        raise GoldstoneError("UD English EWT not found: set key 'treebank' or $GOLDSTONE_UD_EWT to the folder "
                             "holding en_ewt-ud-train.conllu and en_ewt-ud-dev.conllu")
    return folder


def _tokenizer(ctx: RunContext, texts: list[str]):
    """The corpus's WordPiece tokenizer (trained once, cached), copied into the run folder;
    a resumed run reloads its own copy."""
    from transformers import PreTrainedTokenizerFast

    folder = ctx.folder / "tokenizer"
    if not folder.exists():
        with atomic_dir(folder) as tmp:
            cached_wordpiece(texts, ctx.config.vocab_size).save_pretrained(str(tmp))
    return PreTrainedTokenizerFast.from_pretrained(str(folder))


def _model(cfg: MLMSyntaxConfig, vocab_size: int):
    import transformers

    config = transformers.BertConfig(vocab_size=vocab_size, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                                     num_attention_heads=cfg.heads, intermediate_size=4 * cfg.hidden,
                                     max_position_embeddings=max(cfg.max_length, POSITIONS),
                                     hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    model = transformers.BertForMaskedLM(config)
    model.set_attn_implementation("eager")
    return model


def masked_lm_loss(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                   output_attentions: bool = False, reduction: str = "mean"):
    """Cross-entropy of a `BertForMaskedLM` at the masked positions only: the vocabulary
    projection runs on the ~15 % of tokens that are predicted, not on every token."""
    out = model.bert(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions)
    chosen = labels != -100
    logits = model.cls(out.last_hidden_state[chosen])
    return torch.nn.functional.cross_entropy(logits, labels[chosen], reduction=reduction), out.attentions


def _mlm_loss(model, data: EncodedBatch, tokenizer, seed: int) -> float:
    """Mean MLM loss on `data` with one fixed masking."""
    special = data.word_index < 0
    inputs, labels = mask_tokens(data.input_ids, special, tokenizer.mask_token_id, len(tokenizer), seed, 0)
    device = model_device(model)
    with torch.no_grad():
        total = sum(masked_lm_loss(model, *(t[i:i + 64].to(device) for t in (inputs, data.attention_mask, labels)),
                                   reduction="sum")[0].item() for i in range(0, len(inputs), 64))
    return total / float((labels != -100).sum())


LABELS = {"loss_drop_size": "loss drop across the detected window (nats; 0: none)",
          "uas_change": "best-head UAS gained across its detected rise (0: none)",
          "loss_drop_step": "loss-drop onset (step)", "uas_onset_step": "structure onset (step)",
          "final_best_uas": "final best-head UAS", "best_offset_uas": "best offset baseline UAS"}


def transition_detector(detector, cfg: MLMSyntaxConfig):
    """`detector` (find_drop or find_rise) as this run's curves need it. With evaluations every
    `eval_every` steps, rates are measured per step (`axis="linear"`): per log-step, any late jump
    between two close checkpoints would pose as the steepest change. The search starts at
    `transition_from`, by default on the synthetic corpus after the warm-up's fall to the unigram
    plateau (4 x the warm-up), which would otherwise be the steepest decline. A change already under
    way at that first step is the tail of an earlier one, not an onset after a plateau: None then,
    and when fewer than 4 checkpoints remain."""
    start = cfg.transition_from or (4 * max(1, cfg.steps // 20) if cfg.corpus == "synthetic" else 1)
    axis = "linear" if cfg.eval_every else "log"

    def detect(steps, values):
        steps, values = np.asarray(steps), np.asarray(values, dtype=float)
        kept = steps >= start
        if kept.sum() < 4:
            return None
        transition = detector(steps[kept], values[kept], axis=axis)
        return transition if transition is not None and transition.start > steps[kept][0] else None
    return detect


def onset_summary(folder: Path) -> list:
    """Sweep report section: per point, the loss-drop and structure onsets averaged over seeds (in
    log-step) with 90 % bootstrap bands (`onset_bands`), their lag with its band, and a figure of the
    seeds' curves with the bands shaded."""
    from goldstone.analysis.onsets import find_drop, find_rise, onset_bands
    from goldstone.core.atomic import write_figure
    from goldstone.lab.views import DONE, Run, Sweep

    sweep = Sweep(folder)
    points: dict[str, list[Run]] = {}
    for point, run_folder in sweep.point_folders():
        if (run_folder / DONE).exists():
            points.setdefault(", ".join(f"{k}={v}" for k, v in point["values"].items()) or "default", []).append(
                Run(run_folder))
    if not points:
        return []
    rows = []
    fig = Figure(figsize=(4.2 * len(points), 3.2), constrained_layout=True)
    axes = fig.subplots(1, len(points), squeeze=False)
    for ax, (name, runs) in zip(axes[0], points.items()):
        cfg = resolve_config(MLMSyntaxConfig, runs[0].config)
        uas_metric = "agreement_uas" if cfg.corpus == "synthetic" else "best_uas"
        curves = {}
        for observable, metric in (("mlm", "dev_loss"), ("syntax", uas_metric)):
            table = pd.concat([series(r.metrics, observable, metric).set_index("step").value.rename(i)
                               for i, r in enumerate(runs)], axis=1).dropna()
            curves[metric] = table
        steps = curves["dev_loss"].index.to_numpy()
        if len(steps) < 4 or len(curves[uas_metric]) < 4:
            continue  # too few checkpoints for a transition
        drop = onset_bands(steps, curves["dev_loss"].to_numpy().T, transition_detector(find_drop, cfg))
        rise = onset_bands(curves[uas_metric].index.to_numpy(), curves[uas_metric].to_numpy().T,
                           transition_detector(find_rise, cfg))
        lags = (rise["onsets"] - drop["onsets"])
        lags = lags[~np.isnan(lags)]
        lag_band = (np.nan, np.nan)
        if len(lags) > 1:
            means = lags[np.random.default_rng(0).integers(0, len(lags), (1000, len(lags)))].mean(1)
            lag_band = tuple(np.quantile(means, [0.05, 0.95]))
        rows.append({"point": name, "seeds": len(runs), "loss drops detected": drop["n_detected"],
                     "loss-drop onset": drop["onset"], "band low": drop["band"][0], "band high": drop["band"][1],
                     "UAS rises detected": rise["n_detected"], "structure onset": rise["onset"],
                     "UAS band low": rise["band"][0], "UAS band high": rise["band"][1],
                     "lag (steps)": lags.mean() if len(lags) else np.nan, "lag low": lag_band[0],
                     "lag high": lag_band[1]})
        right = ax.twinx()
        for axis, metric, colour, result in ((ax, "dev_loss", "C0", drop), (right, uas_metric, "C3", rise)):
            table = curves[metric]
            axis.plot(table.index, table.to_numpy(), color=colour, lw=0.6, alpha=0.5)
            axis.plot(table.index, table.mean(axis=1), color=colour, lw=1.8)
            if result["n_detected"]:
                axis.axvline(result["onset"], color=colour, ls="--", lw=1)
            if not np.isnan(result["band"][0]):
                axis.axvspan(*result["band"], color=colour, alpha=0.15)
        ax.set(xlabel="step", ylabel="dev MLM loss (nats, blue)", title=name)
        right.set_ylabel("best-head UAS, " + ("agreement arcs" if uas_metric == "agreement_uas" else "all words")
                         + " (red)")
        ax.title.set_fontsize(8)
    path = folder / "figures" / "onsets.png"
    write_figure(path, fig)
    return ["Onsets over seeds", pd.DataFrame(rows),
            (path, "Dev MLM loss (blue) and best-head UAS (red) of every seed (thin) and their mean (thick); dashed: "
                   "the mean onset over seeds (in log-step) of the loss drop and of the UAS rise; shaded: 90 % "
                   "bootstrap bands over seeds.")]


@experiment("mlm_syntax", MLMSyntaxConfig, "pre-train a small BERT on EWT or a synthetic agreement language; loss, "
            "head UAS, minimal pairs; SAS+/-", curve=("syntax", "best_uas"), extras=("hf",),
            sweep_summary=onset_summary, labels=LABELS, metric="loss_drop_size")
def train(ctx: RunContext) -> None:
    cfg: MLMSyntaxConfig = ctx.config
    train_sents, dev_sents, tokenizer, pairs = _corpus(ctx, cfg)
    relations = sorted({r.split(":")[0] for s in train_sents + dev_sents for r in s.relations})
    (train_data,), _, dropped = encode_sentences(train_sents, tokenizer, cfg.max_length, len(train_sents), relations)
    (dev_data,), _, _ = encode_sentences(dev_sents, tokenizer, cfg.max_length, len(dev_sents), relations)
    dev_batches, _, _ = encode_sentences(dev_sents, tokenizer, cfg.max_length, 32, relations, by_length=True)
    probe_train = train_data.rows(slice(cfg.eval_sentences))
    bases = [r.split(":")[0] for r in AGREEMENT_RELATIONS]  # the vocabulary holds base relations (acl:relcl -> acl)
    agreement = [relations.index(r) for r in bases if r in relations] if cfg.corpus == "synthetic" else None

    model = _model(cfg, len(tokenizer)).to(ctx.device)
    optimizer = make_optimizer(model, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    regulariser = cfg.regulariser()
    evaluations = ({0, *range(cfg.eval_every, cfg.steps + 1, cfg.eval_every), cfg.steps} if cfg.eval_every
                   else {0, *checkpoint_steps(cfg.steps, cfg.checkpoints)})
    special = train_data.word_index < 0
    pair_steps = {*sorted(evaluations)[::cfg.pairs_every], cfg.steps}

    def evaluate(step: int) -> None:
        if step == 0:
            ctx.log(0, "data", dropped, "dropped_arcs")
        model.eval()
        ctx.log(step, "mlm", _mlm_loss(model, probe_train, tokenizer, ctx.seed), "train_loss")
        ctx.log(step, "mlm", _mlm_loss(model, dev_data, tokenizer, ctx.seed), "dev_loss")
        feed = [({"input_ids": b.input_ids, "attention_mask": b.attention_mask}, b) for b in dev_batches]
        observables = [HeadUAS(relations)] + ([pairs] if pairs and step in pair_steps else [])
        results = measure(model, observables, feed)
        ctx.log_results(step, results)
        uas = results[0]
        ctx.log(step, "syntax", uas.best_accuracy[-1], "best_uas")
        ctx.log(step, "syntax", uas.heldout_accuracy[-1], "heldout_uas")
        ctx.log(step, "syntax", uas.offset_accuracy[:, -1].max(), "best_offset")
        if agreement is not None:
            best, offset = agreement_uas(uas, agreement)
            ctx.log(step, "syntax", best, "agreement_uas")
            ctx.log(step, "syntax", offset, "agreement_offset")
        model.train()

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(train_sents), cfg.batch_size, step, ctx.seed)
        inputs, labels = mask_tokens(train_data.input_ids[idx], special[idx], tokenizer.mask_token_id,
                                     len(tokenizer), ctx.seed, step + 1)
        mlm, attentions = masked_lm_loss(model, inputs.to(ctx.device), train_data.attention_mask[idx].to(ctx.device),
                                         labels.to(ctx.device), output_attentions=regulariser is not None)
        loss = mlm
        if regulariser is not None:
            penalty = regulariser(attentions, train_data.word_index[idx].to(ctx.device),
                                  train_data.heads[idx].to(ctx.device), step)
            loss = loss + penalty
            ctx.log_tensor(step + 1, "regulariser", penalty, "penalty")
        ctx.log_tensor(step + 1, "mlm", mlm, "batch_loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, warmup=max(1, cfg.steps // 20),
               measurements=[(evaluations, evaluate)], checkpoint=evaluations)
    if not (ctx.folder / "model").exists():
        with atomic_dir(ctx.folder / "model") as tmp:
            model.save_pretrained(str(tmp))  # the trained small BERT, for other studies (e.g. single_node)
    summarise(ctx, cfg)


def agreement_uas(uas, relations: list[int]) -> tuple[float, float]:
    """(best head, best offset) UAS on the agreement arcs: per relation the best head and direction
    (one head cannot be right on every relation type at once) or the best fixed offset, averaged over
    the relations weighted by their arc counts."""
    index = torch.tensor(relations)
    weight = uas.count[index] / uas.count[index].sum()
    best = float((uas.best_accuracy[index] * weight).sum())
    offset = float((uas.offset_accuracy[:, index].amax(0) * weight).sum())
    return best, offset


def _corpus(ctx: RunContext, cfg: MLMSyntaxConfig):
    """(train sentences, dev sentences, tokenizer, minimal-pair observable or None) of the corpus. The
    synthetic language is the same for every seed (train: generator seed 0, dev: 1); its dev set is
    written to the run folder as dev.conllu."""
    if cfg.corpus == "synthetic":
        from goldstone.data.synthetic_language import generate, minimal_pairs, word_level_tokenizer, write_conllu
        from goldstone.observables.pseudo_likelihood import MinimalPairAccuracy

        grammar = cfg.grammar()
        train_sents, dev_sents = generate(grammar, cfg.sentences, seed=0), generate(grammar, cfg.eval_sentences, 1)
        if not (ctx.folder / "dev.conllu").exists():
            write_conllu(dev_sents, ctx.folder / "dev.conllu")
        tokenizer = word_level_tokenizer(grammar)
        if not (ctx.folder / "tokenizer").exists():
            with atomic_dir(ctx.folder / "tokenizer") as tmp:
                tokenizer.save_pretrained(str(tmp))  # beside model/, for other studies (e.g. single_node)
        pairs = MinimalPairAccuracy(minimal_pairs(grammar, cfg.minimal_pairs), tokenizer) if cfg.minimal_pairs \
            else None
        return train_sents, dev_sents, tokenizer, pairs
    folder = _folder(cfg)
    train_sents = (read_text_lines(cfg.text_file) if cfg.corpus == "text"
                   else read_conllu(folder / "en_ewt-ud-train.conllu", cfg.max_train_sentences or None))
    dev_sents = read_conllu(folder / "en_ewt-ud-dev.conllu", cfg.eval_sentences)
    tokenizer = _tokenizer(ctx, [" ".join(s.words) for s in train_sents])
    return train_sents, dev_sents, tokenizer, _minimal_pair_observable(folder, tokenizer, cfg.minimal_pairs,
                                                                       cfg.blimp)


def read_text_lines(path: str | Path) -> list:
    """A user's corpus as tree-less sentences (every word attached to the root, relation "_"): the
    MLM trains on them; trees come from the treebank's dev set only."""
    from goldstone.data.text_file import read_text
    from goldstone.data.treebank import Sentence

    words = [line.split() for line in read_text(path).splitlines() if line.strip()]
    if not words:
        raise ConfigError(f"key 'text_file': {path} holds no text")
    return [Sentence(w, np.zeros(len(w), dtype=np.int64), ["_"] * len(w), ["X"] * len(w), i + 1, " ".join(w), None)
            for i, w in enumerate(words)]


def _minimal_pair_observable(folder: Path, tokenizer, per_phenomenon: int, blimp: str):
    """Agreement pairs generated from EWT dev, or the user's BLiMP files; at most
    `per_phenomenon` pairs of each phenomenon."""
    if per_phenomenon == 0:
        return None
    from goldstone.data.minimal_pairs import generate_pairs, read_blimp_jsonl
    from goldstone.observables.pseudo_likelihood import MinimalPairAccuracy

    if not blimp:
        return MinimalPairAccuracy(generate_pairs(folder / "en_ewt-ud-dev.conllu", per_phenomenon), tokenizer)
    source = Path(blimp)
    files = sorted(source.glob("*.jsonl")) if source.is_dir() else [source]
    if not files:
        raise ConfigError(f"key 'blimp': no .jsonl files in {source}")
    seen: Counter[str] = Counter()
    kept = []
    for pair in (pair for f in files for pair in read_blimp_jsonl(f)):
        seen[pair.phenomenon] += 1
        if seen[pair.phenomenon] <= per_phenomenon:
            kept.append(pair)
    return MinimalPairAccuracy(kept, tokenizer)


def summarise(ctx: RunContext, cfg: MLMSyntaxConfig) -> None:
    """Headline numbers, detected onsets and the three-panel figure of the paper. On the synthetic
    corpus the UAS is that of the agreement arcs (`agreement_uas`), and transitions are sought after
    the warm-up's fall to the unigram plateau (from step 4 x warm-up on), which would otherwise pose
    as the steepest decline."""
    from goldstone.analysis.onsets import find_drop, find_rise

    m = ctx.metrics
    def curve(observable: str, metric: str):
        rows = series(m, observable, metric)
        return rows.step.to_numpy(), rows.value.to_numpy()

    synthetic = cfg.corpus == "synthetic"
    uas_metric = "agreement_uas" if synthetic else "best_uas"
    panels = [("mlm", "dev_loss", "dev MLM loss (nats)", find_drop, "loss_drop_step", "loss_drop_size"),
              ("syntax", uas_metric, "best-head UAS, agreement arcs" if synthetic else "best-head UAS (all words)",
               find_rise, "uas_onset_step", "uas_change")]
    if cfg.minimal_pairs:
        panels.append(("minimal_pairs", "accuracy_all", "minimal-pair accuracy", find_rise,
                       "minimal_pairs_onset_step", "minimal_pairs_change"))
    fig = Figure(figsize=(4.2 * len(panels), 3.3), constrained_layout=True)
    axes = fig.subplots(1, len(panels))
    for ax, (observable, metric, label, detector, headline, size_headline) in zip(axes, panels):
        steps, values = curve(observable, metric)
        ax.plot(np.maximum(steps, 1), values, "o-", ms=3)
        transition = transition_detector(detector, cfg)(steps, values)
        if transition is not None:
            ax.axvspan(transition.start, transition.end, color="C1", alpha=0.2)
            ax.axvline(transition.onset, color="C1", ls="--", label=f"onset ~ step {transition.onset:.0f}")
            ax.legend(fontsize=8)
        ctx.headline(headline, transition.onset if transition is not None else float("nan"))
        change = 0.0  # the size of the transition: the curve's change across its window (0 when none)
        if transition is not None:
            change = abs(float(values[steps == transition.end][0] - values[steps == transition.start][0]))
        ctx.headline(size_headline, change)
        ax.set(xscale="linear" if cfg.eval_every else "log", xlabel="step", ylabel=label)  # the evaluation grid's scale
    uas_steps, uas = curve("syntax", uas_metric)
    _, offset = curve("syntax", "agreement_offset" if synthetic else "best_offset")
    axes[1].plot(np.maximum(uas_steps, 1), offset, ":", color="grey", label="best offset baseline")
    axes[1].legend(fontsize=8)
    text = "synthetic agreement language" if synthetic else "EWT"
    fig.suptitle(f"{cfg.variant}: BERT {cfg.layers}x{cfg.heads}, hidden {cfg.hidden}, {cfg.steps} steps on {text}")
    ctx.figure("mlm_syntax", fig, "MLM loss, best-head UAS (grey: best fixed-offset baseline) and minimal-pair "
                                  "accuracy against step; shaded: detected transitions.")
    ctx.headline("final_dev_loss", curve("mlm", "dev_loss")[1][-1])
    ctx.headline("final_best_uas", uas[-1])
    ctx.headline("final_heldout_uas", curve("syntax", "heldout_uas")[1][-1])
    ctx.headline("best_offset_uas", offset[-1])
    if cfg.minimal_pairs:
        ctx.headline("final_minimal_pair_accuracy", curve("minimal_pairs", "accuracy_all")[1][-1])

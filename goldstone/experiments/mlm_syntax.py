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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from goldstone.core.atomic import atomic_dir
from goldstone.core.config import param
from goldstone.core.errors import ConfigError, GoldstoneError
from goldstone.core.observable import measure
from goldstone.core.registry import experiment
from goldstone.core.run import RunContext
from goldstone.data import batch_indices
from goldstone.data.treebank import EncodedBatch, encode_sentences, read_conllu, treebank_dir
from goldstone.data.wordpiece import cached_wordpiece
from goldstone.observables.head_uas import HeadUAS
from goldstone.data.masking import mask_tokens
from goldstone.training.loop import make_optimizer, train_loop
from goldstone.training.syntactic_regulariser import SyntacticRegulariser

VARIANTS = ("baseline", "sas-", "sas+", "transient")
POSITIONS = 128  # position embeddings: minimal pairs are scored whole, beyond the training window


@dataclasses.dataclass
class MLMSyntaxConfig:
    variant: str = param("baseline", "regulariser: none, SAS- (lambda), SAS+ (-lambda), transient SAS-",
                         choices=VARIANTS)
    lam: float = param(1e-3, "regulariser strength |lambda| (a sum over arcs, layers and heads)", ge=0)
    form: str = param("uniform", "regulariser over layers and heads: sum (uniform) or max", choices=("uniform", "max"))
    release_step: int = param(500, "transient variant: lambda is 0 from this step on", ge=1)
    treebank: str = param("", "folder with en_ewt-ud-{train,dev}.conllu (default: $GOLDSTONE_UD_EWT or ../shared)")
    max_train_sentences: int = param(0, "train on the first N sentences (0: all 12,544)", ge=0)
    vocab_size: int = param(4000, "WordPiece vocabulary", ge=100)
    max_length: int = param(48, "tokens per sentence (longer ones are cut; their lost arcs are counted)", ge=8)
    hidden: int = param(64, "hidden size", ge=8)
    layers: int = param(4, "transformer blocks", ge=1)
    heads: int = param(4, "attention heads", ge=1)
    steps: int = param(2000, "optimiser steps", ge=10)
    batch_size: int = param(32, "sentences per step", ge=1)
    lr: float = param(5e-4, "AdamW peak learning rate (linear warm-up over 5 % of the steps)", gt=0)
    weight_decay: float = param(0.01, "AdamW weight decay, on weights of dim >= 2 only (not biases, LayerNorm)", ge=0)
    checkpoints: int = param(16, "evaluations, log-spaced from step 10 to the end", ge=2)
    eval_sentences: int = param(256, "EWT dev sentences for loss and head UAS", ge=8)
    minimal_pairs: int = param(100, "minimal pairs per phenomenon (0: skip)", ge=0)
    blimp: str = param("", "BLiMP JSONL file, or folder of them, scored instead of pairs generated from EWT dev")
    keep_checkpoints: int = param(1, "checkpoints kept (0 keeps all)", ge=0)

    def validate(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"key 'hidden'={self.hidden} is not divisible by key 'heads'={self.heads}")

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
                                     max_position_embeddings=max(cfg.max_length, POSITIONS))
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
    with torch.no_grad():
        total = sum(masked_lm_loss(model, inputs[i:i + 64], data.attention_mask[i:i + 64], labels[i:i + 64],
                                   reduction="sum")[0] for i in range(0, len(inputs), 64))
    return float(total / (labels != -100).sum())


@experiment("mlm_syntax", MLMSyntaxConfig, "pre-train a small BERT on EWT; loss, head UAS, minimal pairs; SAS+/-",
            curve=("syntax", "best_uas"), extras=("hf",))
def train(ctx: RunContext) -> None:
    cfg: MLMSyntaxConfig = ctx.config
    folder = _folder(cfg)
    train_sents = read_conllu(folder / "en_ewt-ud-train.conllu", cfg.max_train_sentences or None)
    dev_sents = read_conllu(folder / "en_ewt-ud-dev.conllu", cfg.eval_sentences)
    tokenizer = _tokenizer(ctx, [" ".join(s.words) for s in train_sents])
    (train_data,), relations, dropped = encode_sentences(train_sents, tokenizer, cfg.max_length, len(train_sents))
    (dev_data,), _, _ = encode_sentences(dev_sents, tokenizer, cfg.max_length, len(dev_sents), relations)
    dev_batches, _, _ = encode_sentences(dev_sents, tokenizer, cfg.max_length, 32, relations, by_length=True)
    probe_train = train_data.rows(slice(cfg.eval_sentences))
    pairs = _minimal_pair_observable(folder, tokenizer, cfg.minimal_pairs, cfg.blimp)

    model = _model(cfg, len(tokenizer)).to(ctx.device)
    optimizer = make_optimizer(model, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    regulariser = cfg.regulariser()
    evaluations = {0, *checkpoint_steps(cfg.steps, cfg.checkpoints)}
    special = train_data.word_index < 0

    def evaluate(step: int) -> None:
        if step == 0:
            ctx.log(0, "data", dropped, "dropped_arcs")
        model.eval()
        ctx.log(step, "mlm", _mlm_loss(model, probe_train, tokenizer, ctx.seed), "train_loss")
        ctx.log(step, "mlm", _mlm_loss(model, dev_data, tokenizer, ctx.seed), "dev_loss")
        feed = [({"input_ids": b.input_ids, "attention_mask": b.attention_mask}, b) for b in dev_batches]
        observables = [HeadUAS(relations)] + ([pairs] if pairs else [])
        results = measure(model, observables, feed)
        ctx.log_results(step, results)
        uas = results[0]
        ctx.log(step, "syntax", uas.best_accuracy[-1], "best_uas")
        ctx.log(step, "syntax", uas.heldout_accuracy[-1], "heldout_uas")
        ctx.log(step, "syntax", uas.offset_accuracy[:, -1].max(), "best_offset")
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
            ctx.log(step + 1, "regulariser", penalty.item(), "penalty")
        ctx.log(step + 1, "mlm", mlm.item(), "batch_loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, warmup=max(1, cfg.steps // 20),
               measurements=[(evaluations, evaluate)], checkpoint=evaluations)
    if not (ctx.folder / "model").exists():
        with atomic_dir(ctx.folder / "model") as tmp:
            model.save_pretrained(str(tmp))  # the trained small BERT, for other studies (e.g. single_node)
    summarise(ctx, cfg)


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
    """Headline numbers, detected onsets and the three-panel figure of the paper."""
    from goldstone.analysis.onsets import find_drop, find_rise

    m = ctx.metrics
    def curve(observable: str, metric: str):
        rows = m[(m.observable == observable) & (m.metric == metric)]
        return rows.step.to_numpy(), rows.value.to_numpy()

    panels = [("mlm", "dev_loss", "dev MLM loss", find_drop), ("syntax", "best_uas", "best-head UAS (all)", find_rise)]
    if cfg.minimal_pairs:
        panels.append(("minimal_pairs", "accuracy_all", "minimal-pair accuracy", find_rise))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3))
    for ax, (observable, metric, label, detector) in zip(axes, panels):
        steps, values = curve(observable, metric)
        ax.plot(np.maximum(steps, 1), values, "o-", ms=3)
        positive = steps > 0
        transition = detector(steps[positive], values[positive]) if positive.sum() >= 4 else None
        if transition is not None:
            ax.axvspan(transition.start, transition.end, color="C1", alpha=0.2)
            ax.axvline(transition.onset, color="C1", ls="--", label=f"onset ~ step {transition.onset:.0f}")
            ax.legend(fontsize=8)
            ctx.headline(f"{metric}_onset_step", transition.onset)
        ax.set(xscale="log", xlabel="step", ylabel=label)
    uas_steps, uas = curve("syntax", "best_uas")
    _, offset = curve("syntax", "best_offset")
    axes[1].plot(np.maximum(uas_steps, 1), offset, ":", color="grey", label="best offset baseline")
    fig.suptitle(f"{cfg.variant}: BERT {cfg.layers}x{cfg.heads}, hidden {cfg.hidden}, {cfg.steps} steps on EWT")
    ctx.figure("mlm_syntax", fig, "MLM loss, best-head UAS (grey: best fixed-offset baseline) and minimal-pair "
                                  "accuracy against step; shaded: detected transitions.")
    ctx.headline("final_dev_loss", curve("mlm", "dev_loss")[1][-1])
    ctx.headline("final_best_uas", uas[-1])
    ctx.headline("final_heldout_uas", curve("syntax", "heldout_uas")[1][-1])
    ctx.headline("best_offset_uas", offset[-1])
    if cfg.minimal_pairs:
        ctx.headline("final_minimal_pair_accuracy", curve("minimal_pairs", "accuracy_all")[1][-1])

"""Internal entanglement of fine-tuning updates: LoRA against full fine-tuning of MiniLM.

"Artificial Entanglement in the Fine-Tuning of Large Language Models" (Chen et al., 2026): the
entanglement profile of a LoRA update Delta W = (alpha / r) B A of W_Q and W_V follows a volume law
with a notch at the row|column cut, the "entanglement valley", whose floor the rank caps at ln r;
full fine-tuning has no cap. This fine-tunes MiniLM (6 layers, 384 = 3 x 2^7, sites 3,2,..,2 per
side) on an offline EWT classification task, with LoRA on query and value (peft) or fully, and
profiles every layer's Delta W_Q and Delta W_V along training (`goldstone.theory.entanglement`; the
LoRA update from its factors, the full update as W - W_0 in float64). Valley observables: the centre
entropy S_c, its ratio to ln r, the depth Page_c - S_c, and the local dip
(S(c - 1) + S(c + 1)) / 2 - S_c. At the end, the attention matrices of the fine-tuned and of the
pre-trained model on fixed text are profiled too (external entanglement; arrays
`attention_profiles`), so runs can be compared for the paper's "no-hair" claim.
"""

from __future__ import annotations

import dataclasses
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from goldstone.analysis.attention_entanglement import attention_profiles, text_chunks
from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.extras import optional_import
from goldstone.core.registry import experiment
from goldstone.core.run import RunContext
from goldstone.data.classification import batch_indices
from goldstone.data.text_tasks import encode_batches, load_task
from goldstone.models.pretrained import load_classifier
from goldstone.theory.entanglement import (entanglement_profile, lora_profile, low_rank_curve, page_curve,
                                           prime_factors)
from goldstone.training.loop import train_loop

ROLES = ("query", "value")


@dataclasses.dataclass
class LoraEntanglementConfig:
    method: str = param("lora", "lora (peft, on query and value) or full fine-tuning", choices=("lora", "full"))
    rank: int = param(8, "LoRA rank r", ge=1, le=384, when={"method": ("lora",)})
    alpha: float = param(16.0, "LoRA alpha (scaling alpha / r)", gt=0, when={"method": ("lora",)})
    task: str = param("ewt_genre", "offline EWT task", choices=("ewt_genre", "ewt_relation"))
    treebank: str = param("", "folder with en_ewt-ud-train.conllu (default: $GOLDSTONE_UD_EWT or ../shared/data)")
    lr: float = param(1e-3, "AdamW learning rate (full fine-tuning: about 5e-5)", gt=0, le=1)
    steps: int = param(150, "fine-tuning steps", ge=1)
    batch_size: int = param(16, "texts per step", ge=1)
    max_length: int = param(64, "tokens per text", ge=8)
    profile_every: int = param(50, "steps between profiles", ge=1)

    def validate(self) -> None:
        if self.method == "lora" and self.rank > 384:
            raise ConfigError("key 'rank': at most 384 (MiniLM's width)")


def _updates(model, method: str, reference: dict[str, torch.Tensor]) -> dict[tuple[int, str], tuple]:
    """Per (layer, role): the LoRA factors (B scaled, A) or the dense update W - W_0."""
    out = {}
    for name, module in model.named_modules():
        parts = name.split(".")
        if parts[-1] not in ROLES or "layer" not in parts:
            continue
        layer = int(parts[parts.index("layer") + 1])
        if method == "lora":
            if not hasattr(module, "lora_A"):
                continue
            scale = module.scaling["default"]
            out[(layer, parts[-1])] = (module.lora_B["default"].weight.detach() * scale,
                                       module.lora_A["default"].weight.detach())
        else:
            out[(layer, parts[-1])] = (module.weight.detach().double() - reference[name],)
    return out


def profiles(model, method: str, reference: dict[str, torch.Tensor]) -> dict[tuple[int, str], torch.Tensor]:
    return {key: (lora_profile(*value) if len(value) == 2 else entanglement_profile(value[0]))
            for key, value in _updates(model, method, reference).items()}


LABELS = {"method": "method", "rank": "LoRA rank r", "lr": "learning rate", "centre_query": "S_c of ΔW_Q (nats)",
          "centre_value": "S_c of ΔW_V (nats)", "depth_query": "valley depth Page_c − S_c, ΔW_Q",
          "test_accuracy": "test accuracy"}


@experiment("lora_entanglement", LoraEntanglementConfig, "entanglement profiles of MiniLM's fine-tuning updates: "
            "LoRA valley vs full fine-tuning", extras=("hf",), curve=("finetune", "loss"), labels=LABELS,
            metric="centre_query")
def train(ctx: RunContext) -> None:
    cfg: LoraEntanglementConfig = ctx.config
    dataset = load_task(cfg.task, treebank=cfg.treebank, seed=ctx.seed)
    train_set, test_set = dataset.split(0.2, ctx.seed)
    model, tokenizer = load_classifier("minilm", dataset.num_labels, seed=ctx.seed)
    reference = {n: m.weight.detach().double().clone() for n, m in model.named_modules()
                 if n.split(".")[-1] in ROLES}
    if cfg.method == "lora":
        peft = optional_import("peft", "hf", "LoRA fine-tuning")
        torch.manual_seed(ctx.seed)
        model = peft.get_peft_model(model, peft.LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=0.0,
                                                           target_modules=list(ROLES), modules_to_save=["classifier"]))
        reference = {f"base_model.model.{n}": w for n, w in reference.items()}
    model.to(ctx.device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    test = encode_batches(test_set, tokenizer, 64, cfg.max_length)

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(train_set), cfg.batch_size, step, ctx.seed)
        (inputs, labels), = encode_batches(train_set.subset(idx.numpy()), tokenizer, cfg.batch_size, cfg.max_length)
        loss = model(**{k: v.to(ctx.device) for k, v in inputs.items()}, labels=labels.to(ctx.device)).loss
        ctx.log(step + 1, "finetune", loss.item(), "loss")
        return loss

    def measure(step: int) -> None:
        if step == 0:
            return  # the update is zero: its entropy is undefined
        for (layer, role), profile in profiles(model, cfg.method, reference).items():
            for k, value in enumerate(profile.tolist(), start=1):
                ctx.log(step, f"profile_{role}", value, "entropy", layer=layer, cut=k)
        model.eval()
        with torch.no_grad():
            right = sum(int((model(**{k: v.to(ctx.device) for k, v in inputs.items()}).logits.argmax(-1).cpu()
                             == labels).sum()) for inputs, labels in test)
        model.train()
        ctx.log(step, "test", right / len(test_set), "accuracy")

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.steps,
               measurements=[(lambda s: s % cfg.profile_every == 0 or s == cfg.steps, measure)],
               description=f"{cfg.method}{f' r = {cfg.rank}' if cfg.method == 'lora' else ''} on {cfg.task}")
    external(ctx, model, tokenizer, test_set.texts, dataset.num_labels)
    summarise(ctx, cfg)


def external(ctx: RunContext, model, tokenizer, texts: list[str], labels: int) -> None:
    """Attention-matrix profiles (8 chunks of 128 test-set tokens, every layer and head) of the
    fine-tuned model and of the pre-trained one, saved as arrays (layers x heads x cuts, mean over
    chunks) for the no-hair comparison between runs."""
    chunks = text_chunks(tokenizer, texts, 128, 8)
    model.eval()
    final = attention_profiles(model, chunks).mean(1)
    base, _ = load_classifier("minilm", labels, seed=ctx.seed)
    start = attention_profiles(base.to(ctx.device).eval(), chunks).mean(1)
    ctx.save_arrays("attention_profiles", {"final": final, "pretrained": start})
    ctx.headline("attention_change", float((final - start).abs().mean()))
    ctx.headline("attention_centre", float(final[..., final.shape[-1] // 2].mean()))


def summarise(ctx: RunContext, cfg: LoraEntanglementConfig) -> None:
    m = ctx.metrics
    dims = prime_factors(384) * 2
    centre = len(prime_factors(384))
    page = page_curve(dims)
    x = [math.log2(math.prod(dims[:k])) for k in range(1, len(dims))]
    final = m.step.max()
    ctx.headline("test_accuracy", float(m[m.observable == "test"].value.iloc[-1]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True, sharey=True)
    for ax, role in zip(axes, ROLES):
        rows = m[(m.observable == f"profile_{role}") & (m.step == final)]
        table = rows.pivot(index="layer", columns="cut", values="value")
        for layer, values in table.iterrows():
            ax.plot(x, values.to_numpy(), color=plt.cm.viridis(int(layer) / 5), lw=0.8, alpha=0.8,
                    label=f"layer {int(layer)}")
        mean = table.mean(0).to_numpy()
        ax.plot(x, mean, "o-", color="C3", lw=1.8, ms=3, label="mean over layers")
        ax.plot(x, page.numpy(), "k--", lw=1, label="Page (random state)")
        if cfg.method == "lora":
            ax.plot(x, low_rank_curve(cfg.rank, prime_factors(384), prime_factors(384)).numpy(), ":", color="grey",
                    lw=1.2, label=f"random rank-{cfg.rank} null")
            ax.axhline(math.log(cfg.rank), color="grey", lw=0.6, ls="-.", label="ln r (the floor's cap)")
        ax.axvline(x[centre - 1], color="grey", lw=0.5)
        ax.set(xlabel="log2 of the left dimension (cut)", ylabel="entanglement entropy (nats)",
               title=f"ΔW_{role[0].upper()} after {final} steps")
        s_c = float(mean[centre - 1])
        ctx.headline(f"centre_{role}", s_c)
        ctx.headline(f"depth_{role}", float(page[centre - 1]) - s_c)
        ctx.headline(f"dip_{role}", float((mean[centre - 2] + mean[centre]) / 2) - s_c)
        if cfg.method == "lora":
            ctx.headline(f"floor_ratio_{role}", s_c / math.log(cfg.rank) if cfg.rank > 1 else float("nan"))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=7)
    what = f"LoRA r = {cfg.rank}, α = {cfg.alpha:g}" if cfg.method == "lora" else "full fine-tuning"
    fig.suptitle(f"MiniLM, {what}, lr {cfg.lr:g}, {cfg.task}")
    ctx.figure("profiles", fig, "Entanglement profiles of the fine-tuning updates ΔW_Q and ΔW_V per layer at the end "
               "of training, their mean, Page's curve for a random state" + (", the random rank-r null and ln r."
                                                                            if cfg.method == "lora" else "."))

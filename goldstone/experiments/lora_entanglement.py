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

import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from goldstone.analysis.attention_entanglement import attention_profiles, text_chunks
from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.extras import optional_import
from goldstone.core.frames import series
from goldstone.core.memory import training_state, transformer_activations
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.data.classification import batch_indices
from goldstone.data.text_tasks import encode_batches, load_task
from goldstone.models.mps_adapter import MPSLinear, add_mps_adapters, mps_parameter_count, rank_matching_lora
from goldstone.models.pretrained import load_classifier
from goldstone.analysis.area_law import area_law_bootstrap
from goldstone.observables.entanglement import (entanglement_profile, lora_profile, prime_factors,
                                                random_softmax_attention, valley_width)
from goldstone.theory.entanglement import low_rank_curve, page_curve
from goldstone.training.loop import train_loop

ROLES = ("query", "value")
SITES = prime_factors(384) * 2
CENTRE = len(prime_factors(384))


@dataclasses.dataclass
class LoraEntanglementConfig:
    method: str = param("lora", "lora (peft, on query and value), mps (MPS adaptation, same modules, as many "
                        "parameters as LoRA at `rank`) or full fine-tuning", label="method",
                        choices=("lora", "mps", "full"))
    rank: int = param(8, "LoRA rank r (mps: the LoRA rank whose parameter count it matches)", label="LoRA rank r",
                      ge=1, le=384, when={"method": ("lora", "mps")})
    alpha: float = param(16.0, "adapter alpha (scaling alpha / r)", gt=0, when={"method": ("lora", "mps")})
    chi: int = param(4, "MPS bond between the two input cores", ge=1, when={"method": ("mps",)})
    split: int = param(24, "MPS input split d1 (d_in = 384 = d1 x d2; 24 = 3 x 2^3 keeps the chi cut on a site cut)",
                       ge=1, when={"method": ("mps",)})
    task: str = param("ewt_genre", "offline EWT task", choices=("ewt_genre", "ewt_relation"))
    treebank: str = param("", "folder with en_ewt-ud-train.conllu (default: $GOLDSTONE_UD_EWT or ../shared/data)")
    lr: float = param(1e-3, "AdamW learning rate (full fine-tuning: about 5e-5)", label="learning rate", gt=0, le=1)
    steps: int = param(150, "fine-tuning steps", ge=1)
    batch_size: int = param(16, "texts per step", ge=1)
    max_length: int = param(64, "tokens per text", ge=8)
    profile_every: int = param(50, "steps between profiles", ge=1)

    def validate(self) -> None:
        if self.method == "mps" and 384 % self.split:
            raise ConfigError(f"key 'split': {self.split} does not divide MiniLM's width 384")

    @property
    def adapter_rank(self) -> int:
        """The bond r of the adapter: `rank` for LoRA, the parameter-matched one for MPS adaptation."""
        return rank_matching_lora(self.rank, 384, 384, self.chi, self.split) if self.method == "mps" else self.rank

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): the adapters of MiniLM's 12 query and value matrices
        with AdamW's state (full fine-tuning: a fixed cost), and the encoder's activations on one batch."""
        adapters = {"lora": 12 * 2 * 384 * self.rank, "full": 0,
                    "mps": 12 * mps_parameter_count(384, 384, self.adapter_rank, self.chi, self.split)}[self.method]
        return {"the adapters with AdamW's state (keys rank, chi, split)": training_state(adapters),
                "activations (keys batch_size, max_length)":
                transformer_activations(self.batch_size, self.max_length, 384, 6, 12)}


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
        elif method == "mps":
            if isinstance(module, MPSLinear):
                out[(layer, parts[-1])] = (module.up.detach() * module.scaling, module.down().detach())
        else:
            out[(layer, parts[-1])] = (module.weight.detach().double() - reference[name],)
    return out


def profiles(model, method: str, reference: dict[str, torch.Tensor]) -> dict[tuple[int, str], torch.Tensor]:
    return {key: (lora_profile(*value) if len(value) == 2 else entanglement_profile(value[0]))
            for key, value in _updates(model, method, reference).items()}


LABELS = {"centre_query": "S_c of ΔW_Q (nats)", "centre_value": "S_c of ΔW_V (nats)",
          "depth_query": "valley depth Page_c − S_c, ΔW_Q", "test_accuracy": "test accuracy"}


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
    elif cfg.method == "mps":
        torch.manual_seed(ctx.seed)
        add_mps_adapters(model, ROLES, cfg.adapter_rank, cfg.chi, cfg.alpha, cfg.split, trainable=("classifier",))
    ctx.headline("adapted_parameters", sum(p.numel() for n, p in model.named_parameters()
                                           if p.requires_grad and "classifier" not in n))
    model.to(ctx.device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    test = encode_batches(test_set, tokenizer, 64, cfg.max_length)

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(train_set), cfg.batch_size, step, ctx.seed)
        (inputs, labels), = encode_batches(train_set.subset(idx.numpy()), tokenizer, cfg.batch_size, cfg.max_length)
        loss = model(**{k: v.to(ctx.device) for k, v in inputs.items()}, labels=labels.to(ctx.device)).loss
        ctx.log_tensor(step + 1, "finetune", loss, "loss")
        return loss

    def measure(step: int) -> None:
        if step == 0:
            return  # the update is zero: its entropy is undefined
        measured = profiles(model, cfg.method, reference)
        for (layer, role), profile in measured.items():
            for k, value in enumerate(profile.tolist(), start=1):
                ctx.log(step, f"profile_{role}", value, "entropy", layer=layer, cut=k)
        for role in ROLES:
            mean = torch.stack([p for (_, r), p in measured.items() if r == role]).mean(0)
            ctx.log(step, f"valley_{role}", float(mean[CENTRE - 1]), "centre")
            ctx.log(step, f"valley_{role}", float(valley_width(mean, CENTRE, SITES)), "width")
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
    chunks) for the no-hair comparison between runs; the four area-law forms fitted to the mean over
    layers and heads, with bootstrap intervals over chunks; a figure against random softmax attention."""
    chunks = text_chunks(tokenizer, texts, 128, 8)
    model.eval()
    tuned = attention_profiles(model, chunks)
    base, _ = load_classifier("minilm", labels, seed=ctx.seed)
    pretrained = attention_profiles(base.to(ctx.device).eval(), chunks)
    final, start = tuned.mean(1), pretrained.mean(1)
    ctx.save_arrays("attention_profiles", {"final": final, "pretrained": start})
    ctx.headline("attention_change", float((final - start).abs().mean()))
    ctx.headline("attention_centre", float(final[..., final.shape[-1] // 2].mean()))
    fits = area_law_bootstrap(tuned.mean((0, 2)), seed=ctx.seed)  # one profile per chunk
    best = min(fits, key=lambda form: fits[form]["aic"])
    cc = fits["calabrese_cardy"]
    for form, fit in fits.items():
        ctx.headline(f"attention_aic_{form}", fit["aic"])
        ctx.headline(f"attention_wins_{form}", fit["wins"])
    ctx.headline("attention_c_eff", cc["slope"])
    ctx.headline("attention_c_eff_low", cc["slope_low"])
    ctx.headline("attention_c_eff_high", cc["slope_high"])

    n = final.shape[-1] + 1
    cut = torch.arange(1, n, dtype=torch.float64)
    fig = Figure(figsize=(7.5, 4), constrained_layout=True)
    ax = fig.subplots()
    for layer in range(len(final)):
        ax.plot(cut, final[layer].mean(0), color=colormaps["viridis"](layer / max(len(final) - 1, 1)), lw=0.8,
                label=f"layer {layer}, fine-tuned")
    ax.plot(cut, final.mean((0, 1)), "o-", color="C3", ms=3, lw=1.8, label="fine-tuned, mean over layers and heads")
    ax.plot(cut, start.mean((0, 1)), "s--", color="k", ms=3, lw=1, label="pre-trained, mean")
    curve = cc["s0"] + cc["slope"] / 6 * torch.log(2 * n / math.pi * torch.sin(math.pi * cut / n))
    ax.plot(cut, curve, ":", color="C3", lw=1.2,
            label=f"Calabrese–Cardy fit, c_eff {cc['slope']:.2f} [{cc['slope_low']:.2f}, {cc['slope_high']:.2f}]")
    for beta, style in ((1.0, "-."), (0.5, (0, (1, 3)))):
        null = entanglement_profile(random_softmax_attention(2 ** (n // 2), beta=beta))
        ax.plot(cut, null.mean(0), ls=style, color="grey", lw=1.2, label=f"random softmax attention, β = {beta:g}")
    ax.set(xlabel="cut l (query qubits, then key qubits)", ylabel="entanglement entropy (nats)",
           title=f"Attention matrices on 8 chunks of 128 test tokens: best fit {best.replace('_', ' ')} "
                 f"(AIC, {fits[best]['wins']:.0%} of resamples)")
    fig.legend(fontsize=6.5, loc="outside right center")
    ctx.figure("attention", fig, "External entanglement: per-layer attention profiles (mean over heads and chunks) "
               "of the fine-tuned model, the pre-trained mean, the Calabrese–Cardy fit with its 95% bootstrap "
               "interval over chunks, and random softmax attention (Gaussian Q, K; d_h = 32) as the unstructured "
               "baseline.")


def summarise(ctx: RunContext, cfg: LoraEntanglementConfig) -> None:
    m = ctx.metrics
    page = page_curve(SITES)
    lefts = [math.prod(SITES[:k]) for k in range(1, len(SITES))]  # the left dimension of every cut
    x = [math.log2(left) for left in lefts]
    final = m.step.max()
    r = cfg.adapter_rank
    ctx.headline("test_accuracy", float(series(m, "test", "accuracy").value.iloc[-1]))
    fig = Figure(figsize=(11, 3.8), constrained_layout=True)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, role in zip(axes, ROLES):
        rows = series(m, f"profile_{role}", step=final)
        table = rows.pivot(index="layer", columns="cut", values="value")
        for layer, values in table.iterrows():
            ax.plot(x, values.to_numpy(), color=colormaps["viridis"](int(layer) / 5), lw=0.8, alpha=0.8,
                    label=f"layer {int(layer)}")
        mean = table.mean(axis=0).to_numpy()
        ax.plot(x, mean, "o-", color="C3", lw=1.8, ms=3, label="mean over layers")
        ax.plot(x, page.numpy(), "k--", lw=1, label="Page (random state)")
        if cfg.method != "full":
            ax.plot(x, low_rank_curve(r, prime_factors(384), prime_factors(384)).numpy(), ":", color="grey",
                    lw=1.2, label=f"random rank-{r} null")
            ax.axhline(math.log(r), color="grey", lw=0.6, ls="-.", label="ln r (the floor's cap)")
        if cfg.method == "mps" and 384 * cfg.split in lefts:  # the cut between the two input cores
            chi_cut = lefts.index(384 * cfg.split)
            ax.plot([x[chi_cut]], [math.log(cfg.chi)], "v", color="C1", ms=7, label=f"ln χ cap (χ = {cfg.chi})")
        ax.axvline(x[CENTRE - 1], color="grey", lw=0.5)
        ax.set(xlabel="log2 of the left dimension (cut)", ylabel="entanglement entropy (nats)",
               title=f"ΔW_{role[0].upper()} after {final} steps")
        s_c = float(mean[CENTRE - 1])
        ctx.headline(f"centre_{role}", s_c)
        ctx.headline(f"depth_{role}", float(page[CENTRE - 1]) - s_c)
        ctx.headline(f"dip_{role}", float((mean[CENTRE - 2] + mean[CENTRE]) / 2) - s_c)
        ctx.headline(f"width_{role}", float(valley_width(torch.tensor(mean), CENTRE, SITES)))
        if cfg.method != "full":
            ctx.headline(f"floor_ratio_{role}", s_c / math.log(r) if r > 1 else float("nan"))
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=7)
    what = {"lora": f"LoRA r = {r}, α = {cfg.alpha:g}", "full": "full fine-tuning",
            "mps": f"MPS adaptation r = {r}, χ = {cfg.chi}, α = {cfg.alpha:g}"}[cfg.method]
    fig.suptitle(f"MiniLM, {what}, lr {cfg.lr:g}, {cfg.task}")
    ctx.figure("profiles", fig, "Entanglement profiles of the fine-tuning updates ΔW_Q and ΔW_V per layer at the end "
               "of training, their mean, Page's curve for a random state" + (", the random rank-r null and ln r."
                                                                            if cfg.method != "full" else "."))
    valley_along_training(ctx, what)


def valley_along_training(ctx: RunContext, what: str) -> None:
    m = ctx.metrics
    fig = Figure(figsize=(9, 3.2), constrained_layout=True)
    axes = fig.subplots(1, 2)
    for role, colour in zip(ROLES, ("C0", "C1")):
        for ax, field, label in zip(axes, ("centre", "width"), ("centre entropy S_c (nats)", "valley width (qubits)")):
            rows = series(m, f"valley_{role}", field)
            ax.plot(rows.step, rows.value, "o-", color=colour, ms=3, label=f"ΔW_{role[0].upper()}")
            ax.set(xlabel="fine-tuning step", ylabel=label)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"The valley along training ({what}; means over layers)")
    ctx.figure("valley", fig, "Centre entropy and valley width (distance between the profile's maxima either side "
               "of the row|column cut) of the mean profile over layers, at every profile step.")

"""Noether charges of a ReLU MLP (with or without BatchNorm) trained by SGD, against theory.

"Symmetry and Broken Conservation Laws in Deep Learning Dynamics" (Kunin et al., ICLR 2021) and
"Noether's Learning Dynamics: Role of Symmetry Breaking in Neural Networks" (Tanaka & Kunin,
NeurIPS 2021). The run detects the model's symmetry groups (`detect_symmetries`), records every
group's charge at every step (`NoetherCharges`), and draws them next to the exact discrete
recursions, Kunin et al.'s continuous forms and the gradient-flow constant; the phase portrait of
the scale charges; and NLD's radius, effective learning rate and equilibrium angular step.
Sweeping lr and weight_decay gives the error maps of the continuous forms.
"""

from __future__ import annotations

import dataclasses
import textwrap

import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import nn

from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.frames import series
from goldstone.core.memory import FLOAT64
from goldstone.core.observable import Probe
from goldstone.lab.registry import Theory, experiment
from goldstone.lab.run import RunContext
from goldstone.models.relu_mlp_config import (SGDTrainingConfig, batch, batch_loss, evaluate, model_for,
                                               prepared_data)
from goldstone.observables.noether_charges import NoetherCharges, NoetherChargesResult
from goldstone.observables.symmetry_detection import Symmetries, detect_symmetries
from goldstone.theory.noether import recursions
from goldstone.training.loop import train_loop

OPTIMIZERS = ("sgd", "adam", "adamw")
KIND_LABELS = {"translation": "translation: s = ⟨θ_A, 1⟩", "scale": "scale: q / q(0), q = |θ_A|²",
               "rescale": "rescale: c = |θ_A1|² − |θ_A2|²"}


@dataclasses.dataclass
class NoetherConfig(SGDTrainingConfig):
    optimizer: str = param("sgd", "sgd has the closed forms; adam / adamw show the drift only", choices=OPTIMIZERS)
    dampening: float = param(0.0, "SGD momentum dampening delta", ge=0, le=0.999)
    nesterov: bool = param(False, "Nesterov momentum (no closed form here: the theory is marked not applicable)")
    detect_batches: int = param(4, "training batches the symmetry check runs on", ge=1)

    def validate(self) -> None:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ConfigError("key 'nesterov': Nesterov momentum needs momentum > 0 and dampening = 0")

    def memory(self) -> dict[str, int]:
        """The network's terms and the charges: about 80 float64 per group and step (the measured
        charges, the exact and continuous predictions and the sums they need; measured) over about one
        group per hidden unit."""
        groups = self.depth * (self.width + 1) + 1
        return {**super().memory(), "charges of every group at every step (keys steps, width, depth)":
                80 * (self.steps + 1) * groups * FLOAT64}


def symmetry_table(symmetries: Symmetries, model: nn.Module) -> pd.DataFrame:
    """One row per family (accepted or rejected): kind, name, parameters, groups, entries per group, quality."""
    shapes = {n: p.shape for n, p in model.named_parameters()}
    rows = []
    for family in symmetries.families():
        quality = max(g.quality for g in symmetries if g.family is family)
        rows.append({"group": family.name, "kind": family.kind, "parameters": ", ".join(family.parameters),
                     "groups": family.count, "size": family.group_size(shapes), "quality": quality,
                     "accepted": True, "note": family.note})
    for candidate in symmetries.rejected:
        family = candidate.family
        rows.append({"group": family.name, "kind": family.kind, "parameters": ", ".join(family.parameters),
                     "groups": family.count, "size": family.group_size(shapes), "quality": candidate.violation,
                     "accepted": False, "note": "rejected: the check failed"})
    return pd.DataFrame(rows)


def make_sgd(model: nn.Module, cfg: NoetherConfig) -> torch.optim.Optimizer:
    """One parameter group, so that every symmetry group has one lr, weight decay and momentum."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, dampening=cfg.dampening,
                               nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    optimizer = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return optimizer(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


LABELS = {"test_accuracy": "test accuracy", "exact_error_scale": "exact recursion, max relative error (scale)",
          "continuous_error_scale": "continuous form, max relative error (scale)",
          "continuous_error_rescale": "continuous form, max relative error (rescale)",
          "continuous_error_translation": "continuous form, max relative error (translation)",
          "angular_step_ratio": "angular step / √(2ηλ/(1+β))"}


def discretisation_gap(lr, params: dict) -> object:
    """n eta^2 lambda^2: the gap between (1 - eta lambda)^(2n) and e^(-2 eta lambda n), the
    continuous forms' relative error without momentum."""
    steps = float(params.get("steps", NoetherConfig.steps))
    return steps * (lr * float(params.get("weight_decay", NoetherConfig.weight_decay))) ** 2


@experiment("noether", NoetherConfig, "Noether charges of detected symmetry groups along SGD, against exact and "
            "continuous theory", labels=LABELS, metric="continuous_error_scale",
            theory=Theory("lr", "theory n η² λ²", discretisation_gap,
                          lambda p: f"n η² λ², λ = {p.get('weight_decay', NoetherConfig.weight_decay)}", same_axis=True))
def train(ctx: RunContext) -> None:
    cfg: NoetherConfig = ctx.config
    data = prepared_data(cfg, ctx.device)
    model = model_for(cfg, data, ctx.seed, ctx.device)
    symmetries = detect_symmetries(model, [batch(cfg, data, -1 - i, ctx.seed) for i in range(cfg.detect_batches)],
                                   F.cross_entropy)
    ctx.table("symmetries", symmetry_table(symmetries, model), "Symmetry groups found by detect_symmetries (proposed "
              f"by {symmetries.method}, then checked): quality is the largest violation measured (|⟨g, X_A⟩| / "
              "(|g_A| |X_A|), or the relative loss change under a finite transformation). " + " ".join(symmetries.notes))
    charges = NoetherCharges(symmetries)
    optimizer = make_sgd(model, cfg)

    loss_fn = batch_loss(cfg, data, model, ctx.seed, ctx.log_tensor)

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.checkpoint_every,
               measurements=[(lambda s: s % cfg.eval_every == 0 or s == cfg.steps,
                              lambda s: ctx.log(s, "test", evaluate(model, data), "accuracy"))],
               after_backward=lambda step: charges.update(Probe(model, step=step, optimizer=optimizer)),
               extra_state={"charges": charges}, description=f"noether: {cfg.optimizer}, {cfg.dataset}")
    optimizer.zero_grad(set_to_none=True)  # the last step's gradients are stale here (and absent after a resume)
    charges.update(Probe(model, step=cfg.steps, optimizer=optimizer))
    result = charges.compute()
    ctx.save_arrays("noether_charges", {k: v for k, v in result.metrics().items() if torch.is_tensor(v)})
    summarise(ctx, cfg, model, result)


TOLERANCES = {("exact", "translation"): (1e-10, 1e-4), ("exact", "rescale"): (1e-10, 1e-4),
              ("exact", "scale"): (1e-8, 1e-5)}
"""Exact recursions (float64, float32), from the research notes; scale with BatchNorm eps <= 1e-8."""


def tolerance(cfg: NoetherConfig, prediction: str, kind: str) -> float:
    """The stated tolerance of a prediction (research notes, section 5.3)."""
    if prediction == "exact":
        if kind == "scale" and cfg.bn_eps > 1e-8:
            return 0.02
        return TOLERANCES[(prediction, kind)][0 if cfg.dtype == "float64" else 1]
    if cfg.momentum > 0:
        return 0.02
    n_eta2_lambda2 = cfg.steps * (cfg.lr * cfg.weight_decay) ** 2
    return max(2 * n_eta2_lambda2, 2e-3) + (0.02 if kind == "scale" and cfg.bn_eps > 1e-8 else 0)


def summarise(ctx: RunContext, cfg: NoetherConfig, model: nn.Module, result: NoetherChargesResult) -> None:
    m = ctx.metrics
    accuracy = series(m, "test", "accuracy")
    ctx.headline("test_accuracy", accuracy.value.iloc[-1])
    kinds = [k for k in ("translation", "scale", "rescale") if k in result.kinds]
    applicable = [t.startswith("exact") for t in result.theory]
    rows = []
    for kind in kinds:
        columns = [i for i, (k, ok) in enumerate(zip(result.kinds, applicable)) if k == kind and ok]
        for prediction in ("exact", "continuous"):
            if not columns:
                continue
            error = result.relative_error(prediction)[:-1, columns]
            worst = float(error.max())
            ctx.headline(f"{prediction}_error_{kind}", worst)
            limit = tolerance(cfg, prediction, kind)
            rows.append({"kind": kind, "prediction": prediction, "groups": len(columns), "max_error": worst,
                         "median_error": float(error.median()), "tolerance": limit, "within": worst <= limit})
    if rows:
        ctx.table("theory_check", pd.DataFrame(rows), "Largest and median relative error of each prediction over "
                  "all steps and groups (relative to |θ_A|² over both sides for q and c, Σ|θ_A| for s), against "
                  "the tolerance the research notes state for it.")
    else:
        ctx.headline("theory_applicable", 0.0)
    eps_ratio = [float(mod.eps / mod.running_var.min()) for mod in model.modules() if isinstance(mod, nn.BatchNorm1d)]
    if eps_ratio:
        ctx.headline("bn_eps_over_variance", max(eps_ratio))
    charges_figure(ctx, cfg, result, kinds)
    if "scale" in kinds and cfg.optimizer == "sgd" and all(applicable):
        portrait_figure(ctx, cfg, result)
        nld_figure(ctx, cfg, result)


def _shown(result: NoetherChargesResult, kind: str, count: int = 5) -> list[int]:
    """Up to `count` groups of `kind` whose charge moved most (relative to its reference)."""
    columns = [i for i, k in enumerate(result.kinds) if k == kind]
    moved = ((result.charge[:, columns] - result.charge[0, columns]).abs().amax(0)
             / result.reference[0, columns].clamp_min(1e-300))
    return [columns[i] for i in moved.argsort(descending=True)[:count].tolist()]


def charges_figure(ctx: RunContext, cfg: NoetherConfig, result: NoetherChargesResult, kinds: list[str]) -> None:
    fig = Figure(figsize=(4.2 * len(kinds), 6), constrained_layout=True)
    axes = fig.subplots(2, len(kinds), squeeze=False, sharex=True)
    steps = torch.arange(result.charge.shape[0])
    for column, kind in enumerate(kinds):
        top, bottom = axes[0, column], axes[1, column]
        shown = _shown(result, kind)
        scale = result.charge[0, shown] if kind == "scale" else torch.ones(len(shown), dtype=torch.float64)
        for i, group in enumerate(shown):
            colour = f"C{i}"
            top.plot(steps, result.charge[:, group] / scale[i], color=colour, lw=1.2)
            top.plot(steps, result.exact[:, group] / scale[i], color="k", ls="--", lw=0.8)
            top.plot(steps, result.continuous[:, group] / scale[i], color="grey", ls=":", lw=1.2)
            top.axhline(float(result.charge[0, group] / scale[i]), color=colour, lw=0.5, alpha=0.5)
        top.set(title=KIND_LABELS[kind], ylabel="charge" if kind != "scale" else "q / q(0)")
        columns = [i for i, k in enumerate(result.kinds) if k == kind]
        if torch.isnan(result.exact[:, columns]).all():  # no closed form: the drift from the start instead
            drift = ((result.charge[1:, columns] - result.charge[0, columns]).abs()
                     / result.reference[1:, columns].clamp_min(1e-300)).amax(1)
            bottom.plot(steps[1:], drift, color="C3", lw=0.9, label="drift |charge − charge(0)|, max over groups")
            bottom.set_title(textwrap.fill(result.theory[columns[0]], 60), fontsize=7)
        for prediction in ("exact", "continuous") if not torch.isnan(result.exact[:, columns]).all() else ():
            error = result.relative_error(prediction)[1:-1, columns].amax(1)
            bottom.plot(steps[1:-1], error, lw=0.9,
                        color="k" if prediction == "exact" else "grey", label=f"{prediction}, max over groups")
        bottom.set(xlabel="training step", ylabel="relative error (to |θ_A|², Σ|θ_A|)", yscale="log")
        bottom.legend(fontsize=7)
    handles = [Line2D([], [], color="C0", lw=1.2, label="measured (one colour per group)"),
               Line2D([], [], color="k", ls="--", lw=0.8, label="exact discrete recursion"),
               Line2D([], [], color="grey", ls=":", lw=1.2, label="Kunin et al., continuous form"),
               Line2D([], [], color="C0", lw=0.5, alpha=0.5, label="gradient flow (conserved)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8)
    momentum = f"β = {cfg.momentum:g}, " if cfg.optimizer == "sgd" else ""
    fig.suptitle(f"Noether charges, {cfg.optimizer.upper()} η = {cfg.lr:g}, {momentum}λ = "
                 f"{cfg.weight_decay:g}, {cfg.dataset}, {'BN' if cfg.batch_norm else 'no BN'} MLP, {cfg.dtype}")
    ctx.figure("charges", fig, "Measured charges of the groups that moved most (colour), the exact discrete "
               "recursion driven by the measured update energies (black dashed), Kunin et al.'s continuous form "
               "(grey dotted) and the gradient-flow constant (thin); below, the largest relative error over all "
               "groups per step.")


def portrait_figure(ctx: RunContext, cfg: NoetherConfig, result: NoetherChargesResult) -> None:
    """Kunin et al.'s phase portrait: q against dq/dt = (q_{k+1} - q_k) / eta, next to the
    centripetal (-2 lambda q) plus centrifugal (eta |g|^2) velocity of the continuous form."""
    fig = Figure(figsize=(5.5, 4), constrained_layout=True)
    ax = fig.subplots()
    q, lr = result.charge, result.lr[:-1]
    velocity = (q[1:] - q[:-1]) / lr
    if cfg.momentum > 0:  # the exact recursion's velocity -2 p_{k+1} + eta V_{k+1}
        theory = -2 * result.noether_charge_exact[:-1] + lr * result.energy[:-1]
        label = "exact recursion: −2p + ηV"
    else:
        theory = -2 * result.weight_decay[:-1] * q[:-1] + lr * result.gradient_energy[:-1]
        label = "continuous: −2λq + η|g_A|²"
    steps = torch.arange(len(velocity))
    for i, group in enumerate(_shown(result, "scale", 3)):
        points = ax.scatter(q[:-1, group], velocity[:, group], c=steps, s=3, cmap="viridis", alpha=0.7)
        ax.plot(q[:-1, group], theory[:, group], color="k", lw=0.6, label=label if i == 0 else None)
    fig.colorbar(points, ax=ax, label="training step")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="q = |θ_A|²", ylabel="dq/dt = (q_{k+1} − q_k) / η", title="phase portrait of scale charges")
    ax.legend(fontsize=7)
    ctx.figure("phase_portrait", fig, "Phase portrait of three scale groups: measured velocity (dots, coloured by "
               "step) against theory (black: −2λq + η|g_A|² without momentum, the exact recursion with it); the balance of weight decay (centripetal) and "
               "discretisation (centrifugal) sets where the velocity crosses zero.")


def nld_figure(ctx: RunContext, cfg: NoetherConfig, result: NoetherChargesResult) -> None:
    columns = [i for i, k in enumerate(result.kinds) if k == "scale"]
    q = result.charge[:, columns]
    n = q.shape[0] - 1
    lr, wd, beta = (x[:-1, columns[0]] for x in (result.lr, result.weight_decay, result.momentum))
    g2 = result.gradient_energy[:-1, columns]
    d2 = g2 + 2 * wd[:, None] * result.constraint[:-1, columns] + wd[:, None] ** 2 * q[:-1]
    coherence = ((1 - beta[:, None]) ** 2 * result.energy[:-1, columns] / d2) if float(beta.max()) > 0 else 1.0
    raw = recursions.nld_radius4(q[0], g2, q, lr, wd, beta).sqrt()
    corrected = recursions.nld_radius4(q[0], g2, q, lr, wd, beta, coherence).sqrt()
    steps = torch.arange(n + 1)
    fig = Figure(figsize=(13, 3.6), constrained_layout=True)
    a1, a2, a3 = fig.subplots(1, 3)
    norm = q[0]
    a1.plot(steps, (q / norm).median(1).values, color="C0", lw=1.5, label="measured r² = |θ_A|²")
    a1.plot(steps, (raw / norm).median(1).values, "k--", lw=1, label="NLD Eq. 17 (κ = 1)")
    a1.plot(steps, (corrected / norm).median(1).values, color="C3", ls=":", lw=1.5, label="Eq. 17 with measured κ")
    a1.set(xlabel="training step", ylabel="r² / r²(0), median over groups", yscale="log", title="radius")
    a1.legend(fontsize=7)
    a2.plot(steps[:-1], (lr[:, None] / q[:-1]).median(1).values, color="C0")
    a2.set(xlabel="training step", ylabel="η / r² (median over groups)", yscale="log",
           title="effective learning rate of the direction")
    angle = recursions.angular_step(q[:-1], result.noether_charge[:-1, columns], result.energy[:-1, columns],
                                    lr[:, None])
    window = max(n // 50, 1)
    smooth = torch.nn.functional.avg_pool1d(angle.median(1).values[None, None], window, window)[0, 0]
    a3.plot(torch.arange(len(smooth)) * window + window / 2, smooth, color="C0", label="measured (median)")
    if cfg.weight_decay > 0:
        target = recursions.equilibrium_angular_step(cfg.lr, cfg.weight_decay, cfg.momentum)
        a3.axhline(target, color="k", ls="--", label="equilibrium √(2ηλ/(1+β))")
        late = angle[int(0.8 * n):].median(1).values.mean()
        ctx.headline("angular_step_ratio", float(late) / target)
    a3.set(xlabel="training step", ylabel="angle per step (rad)", yscale="log", title="angular update")
    a3.legend(fontsize=7)
    fig.suptitle("Noether's Learning Dynamics: BatchNorm + SGD as an adaptive optimiser")
    ctx.figure("nld", fig, "Scale groups under Noether's Learning Dynamics: the radius against Eq. 17 as printed "
               "(κ = 1) and with the measured gradient coherence κ = (1−β)²|v|²/|d|²; the effective learning rate "
               "η/r²; the angle turned per step against the equilibrium √(2ηλ/(1+β)) (Wan et al.).")


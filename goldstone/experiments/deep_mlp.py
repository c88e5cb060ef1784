"""Train a deep equivariant (or generic) MLP without skips or norms.

"Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information Propagation": in the
broken phase (sigma_W > 1) U(1)/O(k) networks of 100 layers train, generic ones do not.
Logs train loss, test accuracy, the order parameter c^l and the protected-Jacobian ratio along
training, and the Jacobian spectrum at the end.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.core.device import DTYPES, resolve_dtype
from goldstone.core.errors import ConfigError
from goldstone.core.frames import series
from goldstone.core.memory import FLOAT64, MOST_EXAMPLES, training_state
from goldstone.core.monitor import Monitor
from goldstone.core.observable import measure
from goldstone.lab.registry import Theory, experiment
from goldstone.lab.run import RunContext
from goldstone.data import batch_indices, load_dataset
from goldstone.data.classification import DATASETS, IDX_DATASETS, check_source
from goldstone.models import DeepMLP
from goldstone.models.deep_mlp import GENERIC_SCALES, generic_gain
from goldstone.models.group_config import GROUP_LABELS, GroupConfig, block_size
from goldstone.observables import JacobianSpectrum, OrderParameter, ProtectedJacobian
from goldstone.theory import SIGMA_W_CRITICAL, fixed_point
from goldstone.training.loop import make_optimizer, train_loop


@dataclasses.dataclass
class DeepMLPConfig(GroupConfig):
    depth: int = param(100, "number L of equivariant blocks", label="depth L (layers)", ge=1)
    sigma_w: float = param(1.2, f"weight scale sigma_W (critical value {SIGMA_W_CRITICAL:g})", label="weight scale σ_W",
                           critical=SIGMA_W_CRITICAL, ge=1e-3, le=100)
    generic_scale: str = param("matched", "generic weights' std: matched = sigma_W/sqrt(N) (the equivariant "
                               "layers' gain); authors = sigma_W*sqrt(k/N) (the O(k) layer's std, the authors' "
                               "baseline)", label="generic weight scale", choices=GENERIC_SCALES,
                               when={"group": ("generic",)})
    dataset: str = param("digits", "data set", label="data", choices=DATASETS)
    data_dir: str = param("", "folder with the IDX files (default: the system package's folder, then "
                          "$GOLDSTONE_DATA/<dataset>; nothing is downloaded)", when={"dataset": IDX_DATASETS})
    steps: int = param(360, "optimiser steps", label="training steps", ge=1)
    batch_size: int = param(128, "batch size", ge=1)
    lr: float = param(1e-3, "Adam learning rate", gt=0, le=10)
    eval_every: int = param(40, "steps between test evaluations", ge=1)
    observe_every: int = param(40, "steps between observable measurements", ge=1)
    probe_size: int = param(16, "test inputs the observables see", ge=2)
    checkpoint_every: int = param(60, "steps between checkpoints", ge=1)
    keep_checkpoints: int = param(1, "checkpoints kept (0 keeps all)", ge=0)
    dtype: str = param("float32", "precision of the model and data (also --dtype)", choices=tuple(DTYPES))

    def validate(self) -> None:
        check_source(self.dataset, self.data_dir)
        super().validate()

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): L N^2 weights with Adam's state, four (batch, N)
        activations per block, the probe's float64 trunk states, and the final Jacobian spectrum of 8
        probe inputs (reverse mode over N output directions through L blocks: about 3 x 8 N^2 L floats,
        measured)."""
        itemsize = DTYPES[self.dtype].itemsize
        return {"weights and Adam's state (keys width, depth)": training_state(self.depth * self.width ** 2, itemsize),
                "activations (keys batch_size, width, depth)":
                4 * min(self.batch_size, MOST_EXAMPLES) * self.width * self.depth * itemsize,
                "the probe's states (keys probe_size, width, depth)": 4 * self.probe_size * self.width * self.depth * FLOAT64,
                "the Jacobian spectrum (keys width, depth)": 3 * 8 * self.width ** 2 * self.depth * FLOAT64}


def evaluate(model: DeepMLP, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    return F.cross_entropy(logits, y).item(), (logits.argmax(-1) == y).double().mean().item()


def _block(params: dict) -> int:
    return block_size(params.get("group", DeepMLPConfig.group), int(params.get("k", DeepMLPConfig.k)))


def c_star_curve(sigma_w, params: dict) -> object:
    """Mean-field c*(sigma_W) of a line or panel: block size 2 for U(1), else key k; the generic
    baseline in the authors' scaling has gain sqrt(k) sigma_W (see `generic_gain`)."""
    k = _block(params)
    if params.get("group") == "generic":
        sigma_w = generic_gain(sigma_w, k, params.get("generic_scale", "matched"))
    return fixed_point(sigma_w, k)


def c_star_name(params: dict) -> str:
    authors = params.get("group") == "generic" and params.get("generic_scale") == "authors"
    return f"c*, k = {_block(params)}" + (f", gain √{_block(params)}·σ_W" if authors else "")


LABELS = {"final_test_accuracy": "final test accuracy", "final_train_loss": "final train loss (cross-entropy, nats)",
          "protected_jacobian_max_deviation": "protected-Jacobian max |ratio - 1|", **GROUP_LABELS,
          "generic_scale=matched": "generic, std σ_W/√N", "generic_scale=authors": "generic, std σ_W√(k/N) (authors')"}
NOTES = ("Weight scales: U(1) and O(k) layers draw weights of std sigma_W/sqrt(N) and sigma_W*sqrt(k/N), both "
         "of gain sigma_W (critical at 1). The generic baseline's weight std is sigma_W/sqrt(N) here (key "
         "generic_scale = matched, the same gain and the same mean-field c*), while the authors' O(k) comparison "
         "uses sigma_W*sqrt(k/N) for theirs (generic_scale = authors, gain sqrt(k)*sigma_W: at sigma_W = 1 it "
         "already sits in the broken phase).")


@experiment("deep_mlp", DeepMLPConfig, "train a deep U(1)/O(k)/generic MLP; order parameter and protected Jacobian",
            curve=("test", "accuracy"), theory=Theory("sigma_w", "mean-field order parameter c*", c_star_curve,
                                                      c_star_name), labels=LABELS, notes=NOTES)
def train(ctx: RunContext) -> None:
    cfg: DeepMLPConfig = ctx.config
    dtype = resolve_dtype(cfg.dtype)
    data = load_dataset(cfg.dataset, cfg.data_dir or None).to(ctx.device, dtype)
    model = DeepMLP(data.num_features, data.num_classes, cfg.group, cfg.k, cfg.width, cfg.depth, cfg.sigma_w,
                    cfg.generic_scale).to(ctx.device, dtype)
    optimizer = make_optimizer(model, "adam", lr=cfg.lr)
    for key, value, have in (("batch_size", cfg.batch_size, len(data.x_train)), ("probe_size", cfg.probe_size,
                                                                                   len(data.x_test))):
        if value > have:
            raise ConfigError(f"key {key!r}={value} is more than the {have} examples {cfg.dataset} has for it")
    probe = data.x_test[:cfg.probe_size]
    monitor = Monitor(model, [OrderParameter(cfg.block), ProtectedJacobian(cfg.block)], probe, cfg.observe_every,
                      sink=ctx.log_frame)

    def log_eval(step: int) -> None:
        loss, acc = evaluate(model, data.x_test, data.y_test)
        ctx.log(step, "test", loss, "loss")
        ctx.log(step, "test", acc, "accuracy")

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(data.x_train), cfg.batch_size, step, ctx.seed).to(ctx.device)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        ctx.log_tensor(step + 1, "train", loss, "loss")
        return loss

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.checkpoint_every,
               measurements=[(lambda s: s % cfg.eval_every == 0 or s == cfg.steps, log_eval), (1, monitor)])

    spectrum = measure(model, [JacobianSpectrum()], probe[:8])[0]
    ctx.log_results(cfg.steps, [spectrum])
    ctx.save_arrays("jacobian_spectrum", {"singular_values": spectrum.singular_values})
    summarise(ctx, cfg)


def summarise(ctx: RunContext, cfg: DeepMLPConfig) -> None:
    """Headline numbers and figures, all derived from the logged metrics."""
    m = ctx.metrics
    acc = series(m, "test", "accuracy")
    train_loss = series(m, "train", "loss")
    ctx.headline("final_test_accuracy", acc.value.iloc[-1])
    ctx.headline("final_train_loss", train_loss.value.iloc[-1])
    ratio = series(m, "protected_jacobian", "max_deviation")
    ctx.headline("protected_jacobian_max_deviation", ratio.value.iloc[-1])

    fig = Figure(figsize=(9, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(train_loss.step, train_loss.value, lw=0.8, label="train")
    test_loss = series(m, "test", "loss")
    ax1.plot(test_loss.step, test_loss.value, "o-", ms=3, label="test")
    ax1.set(xlabel="training step", ylabel="cross-entropy (nats)", yscale="log")
    ax1.legend()
    ax2.plot(acc.step, acc.value, "o-", ms=3)
    ax2.axhline(1 / 10, color="grey", ls=":", label="chance")
    ax2.set(xlabel="training step", ylabel="test accuracy", ylim=(0, 1))
    ax2.legend()
    fig.suptitle(f"{LABELS['group=' + cfg.group].format(k=cfg.block)}, L = {cfg.depth}, N = {cfg.width}, "
                 f"σ_W = {cfg.sigma_w}, {cfg.dataset}")
    ctx.figure("training", fig, f"Training of the {cfg.depth}-layer {cfg.group} MLP on {cfg.dataset}: "
                                f"final test accuracy {acc.value.iloc[-1]:.3f}.")

    c = series(m, "order_parameter", "c")
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for step in sorted({c.step.min(), c.step.max()}):
        rows = c[c.step == step]
        ax.plot(rows.layer, rows.value, label=f"step {step}")
    c_star = float(fixed_point(cfg.sigma_w, cfg.block))
    if c_star > 0:  # the symmetric phase's c* = 0 has no place on a log axis
        ax.axhline(c_star, color="k", ls="--", label=f"mean-field $c^*$ = {c_star:.3f}")
    else:
        ax.text(0.98, 0.95, f"mean-field $c^*$ = 0 (σ_W = {cfg.sigma_w} ≤ 1)", transform=ax.transAxes, ha="right",
                va="top", fontsize=8)
    ax.set(xlabel="layer l", ylabel="order parameter $c^l$ (mean squared block norm)", yscale="log",
           title=f"{LABELS['group=' + cfg.group].format(k=cfg.block)}, σ_W = {cfg.sigma_w}, L = {cfg.depth}")
    ax.legend()
    ctx.figure("order_parameter", fig, "Order parameter per layer at the start and end of training, "
                                       "with the infinite-width fixed point c* of the random network.")

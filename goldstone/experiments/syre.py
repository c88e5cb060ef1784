"""The symmetric-init trap and its escape by syre.

"Remove Symmetries to Control Model Expressivity" (Ziyin, Xu, Chuang, 2025), Prop. 3: gradient
descent started at a symmetric state stays in it, so a network whose neurons start identical
trains exactly like a one-neuron network (its outgoing weight the sum of theirs), up to round-off.
Setup of the research notes (E3): teacher y = sum_k a_k tanh(1.5 w_k^T x), three orthonormal w_k,
a = (2, 1.5, 1), x in R^10, 1000 examples; student: 32 tanh units without biases, all initialised
identical; full-batch GD, float64, weight decay gamma toward 0 (`method=vanilla`) or toward a random
anchor theta_0 ~ N(0, anchor_scale^2) (`method=syre`, `goldstone.training.syre.Syre`). Theory: the
loss of the vanilla run is the loss of the one-neuron network trained the same way.

With `init=standard` (w_i ~ N(0, 1/10), a_i ~ N(0, 1/width): the notes' E4) the same student shows
the model-complexity hierarchy of parameter symmetry: swept over the weight decay, vanilla GD goes
from every unit independent, through the teacher's 3 (the others dead), to 1 (the rest merged into
identical copies). A unit is dead when |v_i| < 0.1 max_j |v_j| (v_i = (w_i, a_i)); the live ones are
grouped as identical up to sign (tanh is odd) at the census' threshold 0.1.
"""

from __future__ import annotations

import dataclasses

import torch
from matplotlib.figure import Figure

from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.frames import series
from goldstone.core.memory import FLOAT32, ROW
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.training.loop import train_loop
from goldstone.training.syre import Syre

AMPLITUDES = (2.0, 1.5, 1.0)
GAIN = 1.5


@dataclasses.dataclass
class SyreConfig:
    method: str = param("syre", "vanilla: weight decay toward 0; syre: toward a fixed random anchor; syre_ar: the "
                        "same through a random diagonal metric D (advanced removal)", label="method",
                        choices=("vanilla", "syre", "syre_ar"))
    anchor_scale: float = param(0.0032, "syre's anchor std sigma_0 (0.01 x the init std of the notes)",
                                label="anchor σ_0", gt=0, le=10, when={"method": ("syre", "syre_ar")})
    metric_ratio: float = param(0.1, "syre_ar: D_ii ~ U(1 - d, 1 + d) with d = this x sigma_0 (dion's default)",
                                gt=0, le=100, when={"method": ("syre_ar",)})
    width: int = param(32, "student tanh units", ge=1)
    init: str = param("identical", "every unit at the same (w_0, a_0) (the symmetric trap), or standard: "
                      "w_i ~ N(0, 1/10), a_i ~ N(0, 1/width) (the complexity hierarchy)", label="initialisation",
                      choices=("identical", "standard"))
    weight_decay: float = param(1e-4, "gamma of gamma/2 |theta - theta_0|^2", label="weight decay γ", ge=0, le=1)
    lr: float = param(0.05, "learning rate (full-batch GD)", gt=0, le=10)
    steps: int = param(5000, "GD steps", ge=1)
    examples: int = param(1000, "training examples", ge=10)

    def validate(self) -> None:
        if self.method == "syre_ar" and self.metric_ratio * self.anchor_scale >= 1:
            raise ConfigError(f"keys 'metric_ratio' x 'anchor_scale' = {self.metric_ratio * self.anchor_scale:g}: "
                              "syre_ar's metric D_ii ~ U(1 - d, 1 + d) needs d < 1")

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): four (examples, width) activations, the loss
        logged at every step."""
        return {"activations (keys examples, width)": 4 * self.examples * self.width * FLOAT32,
                "logged rows (key steps)": self.steps * ROW}


class TanhStudent(torch.nn.Module):
    """f(x) = sum_i a_i tanh(w_i . x): every unit starts at the same (w_0, a_0), or (`identical=False`)
    at w_i ~ N(0, 1/dim), a_i ~ N(0, 1/width)."""

    def __init__(self, dim: int, width: int, generator: torch.Generator, identical: bool = True):
        super().__init__()
        if identical:
            w = (torch.randn(dim, generator=generator, dtype=torch.float64) / dim ** 0.5).repeat(width, 1)
            a = torch.full((width,), 0.5 / width, dtype=torch.float64)
        else:
            w = torch.randn(width, dim, generator=generator, dtype=torch.float64) / dim ** 0.5
            a = torch.randn(width, generator=generator, dtype=torch.float64) / width ** 0.5
        self.w, self.a = torch.nn.Parameter(w), torch.nn.Parameter(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.w.T) @ self.a


def teacher_data(examples: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    directions, _ = torch.linalg.qr(torch.randn(10, 3, generator=generator, dtype=torch.float64))
    x = torch.randn(examples, 10, generator=generator, dtype=torch.float64)
    y = torch.tanh(GAIN * x @ directions) @ torch.tensor(AMPLITUDES, dtype=torch.float64)
    return x, y


def spread(model: TanhStudent) -> float:
    """|W - mean row|_F: 0 exactly at the symmetric state (all units identical)."""
    return float((model.w.detach() - model.w.detach().mean(0)).norm())


def one_neuron_losses(cfg: SyreConfig, x: torch.Tensor, y: torch.Tensor, generator_seed: int) -> list[float]:
    """Theory (Prop. 3): the loss curve of the one-unit network f = A tanh(w . x) that N identical
    units (w_i = w, a_i = A / N) reduce to. Their GD step, in its variables: w <- w - eta g_w / N,
    A <- A - eta N g_A, then the same decoupled decay toward 0 as the vanilla run."""
    generator = torch.Generator().manual_seed(generator_seed)
    teacher_data(cfg.examples, generator)  # the same draws as the student's run, so the same w_0
    single = TanhStudent(10, 1, generator)
    losses = []
    for _ in range(cfg.steps + 1):
        loss = 0.5 * (single(x) - y).pow(2).mean()
        losses.append(float(loss.detach()))
        grad_w, grad_a = torch.autograd.grad(loss, [single.w, single.a])
        with torch.no_grad():
            single.w -= cfg.lr * grad_w / cfg.width
            single.a -= cfg.lr * grad_a * cfg.width
            for p in (single.w, single.a):
                p -= cfg.lr * cfg.weight_decay * p
    return losses


LABELS = {"final_loss": "final training loss", "independent": "independent neurons (live, up to sign)",
          "dead": "dead neurons",
          "one_unit_gap": "max relative gap to the one-unit network's loss"}


@experiment("syre", SyreConfig, "symmetric-init trap: identical neurons stay identical under GD; syre escapes",
            curve=("train", "loss"), labels=LABELS, metric="final_loss")
def train(ctx: RunContext) -> None:
    cfg: SyreConfig = ctx.config
    generator = torch.Generator().manual_seed(ctx.seed)
    x, y = teacher_data(cfg.examples, generator)
    model = TanhStudent(10, cfg.width, generator, identical=cfg.init == "identical")
    sgd = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    metric_spread = cfg.metric_ratio * cfg.anchor_scale if cfg.method == "syre_ar" else 0.0
    optimizer = Syre(sgd, cfg.anchor_scale if cfg.method != "vanilla" else 0.0, cfg.weight_decay, ctx.seed,
                     metric_spread)

    def loss_fn(step: int) -> torch.Tensor:
        loss = 0.5 * (model(x) - y).pow(2).mean()
        ctx.log_tensor(step, "train", loss, "loss")
        return loss

    def observe(step: int) -> None:
        ctx.log(step, "student", spread(model), "spread")

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, measurements=[(max(cfg.steps // 100, 1), observe)],
               checkpoint=cfg.steps, description=f"{cfg.method}, {cfg.width} tanh units ({cfg.init} init)")
    from goldstone.observables.neuron_census import identical_groups

    with torch.no_grad():
        final = float(0.5 * (model(x) - y).pow(2).mean())
        vectors = torch.cat([model.w, model.a[:, None]], 1)
    norms = vectors.norm(dim=1)
    live = norms >= 0.1 * norms.max()
    ctx.headline("final_loss", final)
    ctx.headline("dead", float((~live).sum()))
    ctx.headline("independent", float(identical_groups(vectors[live], 0.1, odd=True).unique().numel()))
    ctx.headline("spread", spread(model))
    if cfg.init == "standard":  # Prop. 3's one-unit reduction holds for identical units only
        figure(ctx, cfg, None)
        return
    theory = one_neuron_losses(cfg, x, y, ctx.seed)
    m = ctx.metrics
    loss = series(m, "train", "loss")
    gap = max(abs(value - theory[step]) / theory[step] for step, value in zip(loss.step, loss.value))
    ctx.headline("one_unit_gap", gap)
    figure(ctx, cfg, theory)


def figure(ctx: RunContext, cfg: SyreConfig, theory: list[float] | None) -> None:
    m = ctx.metrics
    loss = series(m, "train", "loss")
    fig = Figure(figsize=(10, 3.6), constrained_layout=True)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(loss.step, loss.value, color="C0", lw=1.5, label=f"{cfg.method}, {cfg.width} units")
    if theory is not None:
        ax1.plot(range(len(theory)), theory, "k--", lw=1, label="theory: the one-unit network (Prop. 3)")
    ax1.set(xlabel="GD step", ylabel="training loss ½⟨(f − y)²⟩", yscale="log", title="loss")
    ax1.legend(fontsize=7)
    spreads = series(m, "student", "spread")
    ax2.plot(spreads.step, spreads.value.clip(lower=1e-18), "o-", ms=2)
    ax2.set(xlabel="GD step", ylabel="|W − mean row|_F", yscale="log", title="distance from the symmetric state")
    fig.suptitle(f"{cfg.width} {'identical' if cfg.init == 'identical' else 'randomly initialised'} tanh units, "
                 f"γ = {cfg.weight_decay:g}: " + ("vanilla weight decay" if cfg.method == "vanilla" else
                                                  f"{cfg.method.replace('_', '-')}, anchor σ_0 = {cfg.anchor_scale:g}"))
    ctx.figure("syre", fig, "Training loss against the one-unit network the symmetric student reduces to, and the "
               "units' distance from their mean (0 at the symmetric state).")

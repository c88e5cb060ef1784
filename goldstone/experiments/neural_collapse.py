"""Neural collapse along training: NC1-NC4 of an MLP's penultimate features on digits or MNIST-1D.

"Prevalence of Neural Collapse during the Terminal Phase of Deep Learning Training" (Papyan, Han,
Donoho, 2020): past zero training error the last-layer features of each class collapse to their
mean (NC1), the means form a simplex equiangular tight frame (NC2), the classifier aligns with
them (NC3) and classifies by the nearest mean (NC4); in the parameter-symmetry picture of Ziyin et
al. (2025) a restored class-level symmetry. The research notes' CPU setup: a ReLU MLP of width 256
and depth 4, SGD with momentum 0.9, batch 128, lr 0.05, weight decay 5e-4, MSE on one-hot targets
(squared error summed over the K outputs, averaged over the batch; cross-entropy collapses only
weakly at this scale). Metrics on the whole training set.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from goldstone.core.config import param
from goldstone.core.frames import series
from goldstone.core.memory import FLOAT32, MOST_EXAMPLES, training_state
from goldstone.lab.registry import experiment
from goldstone.lab.run import RunContext
from goldstone.data.classification import batch_indices, load_dataset
from goldstone.observables.neural_collapse import CENTRES, neural_collapse
from goldstone.training.loop import train_loop

METRICS = ("nc1", "nc1_cdnv", "equinorm_means", "max_angle_means", "nc3", "nc4")


@dataclasses.dataclass
class CollapseConfig:
    dataset: str = param("digits", "data set", choices=("digits", "mnist1d"))
    loss: str = param("mse", "mse on one-hot targets, or cross_entropy", label="loss", choices=("mse", "cross_entropy"))
    width: int = param(256, "hidden units per layer", ge=1)
    depth: int = param(4, "hidden layers", ge=1, le=16)
    lr: float = param(0.05, "SGD learning rate", gt=0, le=10)
    momentum: float = param(0.9, "SGD momentum", ge=0, le=0.999)
    weight_decay: float = param(5e-4, "weight decay", label="weight decay", ge=0, le=1)
    batch_size: int = param(128, "batch size", ge=1)
    steps: int = param(2400, "SGD steps (digits: 12 per epoch)", ge=1)
    measure_every: int = param(200, "steps between NC measurements on the training set", ge=1)
    centre: str = param("class_means", "NC centre: the mean of the class means (Papyan et al.) or the "
                        "sample-weighted mean (tding1/Neural-Collapse); they differ for imbalanced classes",
                        choices=CENTRES)

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): depth x width^2 weights with SGD's momentum, four
        (batch, width) activations per layer, every layer's features of the (at most 5,000) training
        examples for the NC measures."""
        return {"weights and momentum (keys width, depth)": training_state(self.depth * self.width ** 2, FLOAT32, 1),
                "activations (keys batch_size, width, depth)":
                4 * min(self.batch_size, MOST_EXAMPLES) * self.width * self.depth * FLOAT32,
                "features for the NC measures (keys width, depth)": 2 * 5000 * self.width * self.depth * FLOAT32}


class CollapseMLP(nn.Module):
    def __init__(self, features: int, width: int, depth: int, classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(features if i == 0 else width, width), nn.ReLU()]
        self.features, self.classifier = nn.Sequential(*layers), nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


LABELS = {"nc1": "NC1 = Tr(Σ_W Σ_B⁺)/K", "nc3": "NC3 (self-duality)", "nc4": "NC4 (mismatch with nearest class mean)",
          "train_error": "training error"}


@experiment("neural_collapse", CollapseConfig, "neural collapse NC1-NC4 of an MLP's last-layer features along "
            "training", curve=("collapse", "nc1"), labels=LABELS, metric="nc1")
def train(ctx: RunContext) -> None:
    cfg: CollapseConfig = ctx.config
    data = load_dataset(cfg.dataset).to(ctx.device, torch.float32)
    torch.manual_seed(ctx.seed)
    model = CollapseMLP(data.num_features, cfg.width, cfg.depth, data.num_classes).to(ctx.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    targets = F.one_hot(data.y_train, data.num_classes).float()

    def loss_fn(step: int) -> torch.Tensor:
        idx = batch_indices(len(data.x_train), cfg.batch_size, step, ctx.seed).to(ctx.device)
        out = model(data.x_train[idx])
        loss = ((out - targets[idx]).pow(2).sum(1).mean() if cfg.loss == "mse"
                else F.cross_entropy(out, data.y_train[idx]))
        ctx.log_tensor(step + 1, "train", loss, "loss")
        return loss

    def measure(step: int) -> None:
        model.eval()
        with torch.no_grad():
            features = model.features(data.x_train)
            logits = model.classifier(features)
            test = (model(data.x_test).argmax(1) == data.y_test).double().mean().item()
        model.train()
        values = neural_collapse(features, data.y_train, model.classifier.weight, model.classifier.bias, cfg.centre)
        for name in METRICS:
            ctx.log(step, "collapse", float(getattr(values, name)), name)
        ctx.log(step, "collapse", (logits.argmax(1) != data.y_train).double().mean().item(), "train_error")
        ctx.log(step, "test", test, "accuracy")

    train_loop(ctx, model, optimizer, cfg.steps, loss_fn, checkpoint=cfg.steps,
               measurements=[(lambda s: s % cfg.measure_every == 0 or s == cfg.steps, measure)],
               description=f"neural collapse, {cfg.dataset}, {cfg.loss}")
    summarise(ctx, cfg)


def summarise(ctx: RunContext, cfg: CollapseConfig) -> None:
    m = ctx.metrics
    collapse = series(m, "collapse").pivot(index="step", columns="metric", values="value").sort_index()
    for name in METRICS + ("train_error",):
        ctx.headline(name, float(collapse[name].iloc[-1]))
    ctx.headline("test_accuracy", float(series(m, "test", "accuracy").value.iloc[-1]))
    zero = collapse.index[collapse.train_error == 0]
    fig = Figure(figsize=(15, 3.4), constrained_layout=True)
    axes = fig.subplots(1, 4)
    panels = [("nc1", "NC1 = Tr(Σ_W Σ_B⁺)/K"), ("equinorm_means", "NC2: std/mean of |μ_c − μ_G|"),
              ("max_angle_means", "NC2: mean |cos + 1/(K−1)|"), ("nc3", "NC3: |W/|W| − M/|M||²")]
    for ax, (name, title) in zip(axes, panels):
        ax.plot(collapse.index, collapse[name].clip(lower=1e-12), "o-", ms=3)
        if len(zero):
            ax.axvline(zero[0], color="grey", ls=":", lw=1, label="training error first 0")
            ax.legend(fontsize=7)
        ax.set(xlabel="SGD step", ylabel=title, yscale="log", title=title.split(":")[0])
    fig.suptitle(f"neural collapse, {cfg.dataset}, {cfg.loss}, width {cfg.width} x {cfg.depth}, "
                 f"weight decay {cfg.weight_decay:g}")
    ctx.figure("neural_collapse", fig, "NC1-NC3 of the last-layer features on the training set along training; "
               "dotted: the first measurement with zero training error (the terminal phase starts there).")

"""What each attention head, node subset and single node has learned.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter), measured as in the
same lab's "Advanced deep architecture pruning using single filter performance". The nodes h (U of them) of one
site of one block (`goldstone.models.adapters.UNIT_SITES`) are read at one position per example (`pool`). A
linear readout z = W h + b is fitted once on all nodes jointly and then kept fixed (`fit_readout`). A unit u (a
node, a subset of a head's nodes, or a head) alone gives the fields

    z_u(i) = W[:, u] h_u(i) + b                          silence "zero" (the others set to 0)
    z_u(i) = W[:, u] h_u(i) + W[:, ~u] mu[~u] + b        silence "mean" (the others at their training mean mu)

so all units' fields come from one forward pass per batch, by linearity at the readout. Per unit: the label x
output matrix V_u[a, k] = sum over inputs i of true label a of z_{u,k}(i) - z0_k, where z0 is the field
with every node silenced (b, or b + W mu): the constant that all units share would otherwise dominate V and make
all units look alike. With V come the unit's recognised labels, clusters,
noise and SNR (`goldstone.observables.label_clusters`), and the prediction argmax_k z_u(i): accuracy per label,
the confusion matrix, and K(u), the number of distinct labels predicted. `readout="retrained"` fits one readout
per unit on its own nodes instead: a different quantity (how linearly decodable the labels are from the unit).
With `pool="masked"` the labels are the masked tokens of a masked LM (`goldstone.data.masked_tokens`): accuracy
per token, the token confusion matrix and tokens per unit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from goldstone.observables.label_clusters import THRESHOLD, label_clusters
from goldstone.core.errors import GoldstoneError
from goldstone.core.observable import Observable, Probe, measure
from goldstone.core.result import Result, dims, meta
from goldstone.models import adapters
from goldstone.models.adapters import site_hook

POOLS = ("cls", "mean", "masked")
SILENCE = ("zero", "mean")
READOUTS = ("fixed", "retrained")


@dataclasses.dataclass
class UnitGroups:
    """Units as equal-sized sets of node indices: `index` (G, n) into the site's nodes, one name per unit."""
    index: torch.Tensor
    names: list[str]
    kind: str

    @classmethod
    def custom(cls, index: Sequence[Sequence[int]] | torch.Tensor, units: int, names: Sequence[str] | None = None,
               kind: str = "subset") -> UnitGroups:
        """Units given as node-index lists, checked against the site's `units` nodes."""
        index = torch.as_tensor(index, dtype=torch.long)
        if index.ndim != 2 or index.shape[1] == 0:
            raise GoldstoneError(f"unit index must be (units, nodes per unit), got shape {tuple(index.shape)}")
        bad = index[(index < 0) | (index >= units)]
        if len(bad):
            raise GoldstoneError(f"node index {int(bad[0])} out of range: the site has {units} nodes (0..{units - 1})")
        names = list(names) if names is not None else ["+".join(map(str, row.tolist())) for row in index]
        return cls(index, names, kind)

    @classmethod
    def nodes(cls, units: int) -> UnitGroups:
        """Every single node."""
        return cls(torch.arange(units).unsqueeze(1), [f"n{i}" for i in range(units)], "node")

    @classmethod
    def heads(cls, heads: int, head_dim: int) -> UnitGroups:
        """Every attention head: nodes h * d .. h * d + d - 1 of the "heads" site."""
        return cls(torch.arange(heads * head_dim).view(heads, head_dim), [f"h{h}" for h in range(heads)], "head")

    @classmethod
    def head_subsets(cls, heads: int, head_dim: int, size: int, count: int, generator: torch.Generator) -> UnitGroups:
        """`count` random subsets of `size` nodes inside each head (all heads' subsets drawn at once)."""
        if not 1 <= size <= head_dim:
            raise GoldstoneError(f"subset size {size} is not between 1 and the head size {head_dim}")
        order = torch.rand(heads, count, head_dim, generator=generator).argsort(-1)[..., :size].sort(-1).values
        index = (order + head_dim * torch.arange(heads).view(-1, 1, 1)).flatten(0, 1)
        names = [f"h{h}/{size}#{r}" for h in range(heads) for r in range(count)]
        return cls(index, names, f"subset{size}")

    def __len__(self) -> int:
        return len(self.names)


@dataclasses.dataclass
class Readout:
    """Linear readout z = h @ weight.T + bias over U nodes, K outputs; `mean` (U,) are the training means of the
    nodes (for mean silencing)."""
    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor

    @property
    def num_outputs(self) -> int:
        return self.weight.shape[0]


def _fit_linear(x: torch.Tensor, labels: torch.Tensor, num_labels: int, l2: float, iterations: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regressions on standardised features, one per unit, fitted jointly (their losses
    are independent): x (N, G, n) -> weight (G, K, n), bias (G, K) for the raw features. L-BFGS, float64."""
    x = x.double()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-8)
    z = (x - mean) / std
    weight = torch.zeros(x.shape[1], num_labels, x.shape[2], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(x.shape[1], num_labels, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12)
    target = labels.unsqueeze(1).expand(-1, x.shape[1])

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = torch.einsum("ign,gkn->igk", z, weight) + bias
        loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum") / len(x)
        loss = loss + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    raw = weight.detach() / std.unsqueeze(1)
    return raw, bias.detach() - torch.einsum("gkn,gn->gk", raw, mean)


def fit_readout(activations: torch.Tensor, labels: torch.Tensor, num_labels: int, l2: float = 1e-3,
                iterations: int = 300) -> Readout:
    """The fixed readout: a multinomial logistic regression on all nodes jointly (N, U) -> K labels,
    L2-penalised (`l2` on the standardised weights)."""
    _check_labels(labels, num_labels)
    weight, bias = _fit_linear(activations.unsqueeze(1), labels, num_labels, l2, iterations)
    return Readout(weight[0].float(), bias[0].float(), activations.double().mean(0).float())


def _check_labels(labels: torch.Tensor, num_labels: int) -> None:
    if len(labels) == 0:
        raise GoldstoneError("no examples: the activations are empty")
    if int(labels.max()) >= num_labels or int(labels.min()) < 0:
        raise GoldstoneError(f"label {int(labels.max())} out of range: the readout has {num_labels} outputs")


def unit_fields(activations: torch.Tensor, readout: Readout, groups: UnitGroups, silence: str = "zero"
                ) -> torch.Tensor:
    """z_u(i) for every unit u of `groups`: (N, G, K), each unit alone with the other nodes silenced."""
    w = readout.weight[:, groups.index].to(activations)  # (K, G, n)
    return torch.einsum("ign,kgn->igk", activations[:, groups.index], w) + unit_bias(readout, groups, silence).to(w)


def unit_bias(readout: Readout, groups: UnitGroups, silence: str = "zero") -> torch.Tensor:
    """(G, K): the part of each unit's fields that does not depend on its own nodes: b, plus W[:, ~u] mu[~u]
    under mean silencing."""
    if silence not in SILENCE:
        raise GoldstoneError(f"unknown silence {silence!r} (choose from {', '.join(SILENCE)})")
    bias = readout.bias.expand(len(groups), -1)
    if silence == "zero":
        return bias
    w = readout.weight[:, groups.index]
    return bias + readout.weight @ readout.mean - torch.einsum("kgn,gn->gk", w, readout.mean[groups.index])


@dataclasses.dataclass
class UnitPerformanceResult(Result):
    """Per unit (G) and label (K): see the module docstring for each definition."""
    observable = "unit_performance"
    accuracy: torch.Tensor = dims("unit")
    label_accuracy: torch.Tensor = dims("unit", "label")
    confusion: torch.Tensor = dims("unit", "label", "output")
    label_output: torch.Tensor = dims("unit", "label", "output")
    recognised: torch.Tensor = dims("unit", "label")
    cluster: torch.Tensor = dims("unit", "label")
    labels_per_unit: torch.Tensor = dims("unit")
    predicted_labels: torch.Tensor = dims("unit")
    noise: torch.Tensor = dims("unit")
    snr: torch.Tensor = dims("unit")
    count: torch.Tensor = dims("label")
    full_accuracy: float = 0.0
    units: list = meta()
    labels: list = meta()
    settings: dict = meta(dict)

    def axis_labels(self) -> dict[str, list[str]]:
        return {"unit": self.units, "label": self.labels, "output": self.labels}

    def predicted(self) -> torch.Tensor:
        """(G, K) bool: the labels each unit predicts at least once."""
        return self.confusion.sum(1) > 0


def unit_performance(activations: torch.Tensor, labels: torch.Tensor, readout: Readout, groups: UnitGroups,
                     silence: str = "zero", threshold: float = THRESHOLD, label_names: Sequence[str] | None = None,
                     unit_readout: tuple[torch.Tensor, torch.Tensor] | None = None, chunk: int = 512
                     ) -> UnitPerformanceResult:
    """Score every unit of `groups` on (activations (N, U), labels (N,)). With `unit_readout` = (weight (G, K, n),
    bias (G, K)) from `fit_unit_readouts`, each unit is scored through its own retrained readout instead."""
    k = readout.num_outputs
    _check_labels(labels, k)
    g = len(groups)
    matrix = torch.zeros(g, k, k, dtype=torch.float64)
    confusion = torch.zeros(g * k * k, dtype=torch.float64)
    offsets = torch.arange(g).mul(k * k).unsqueeze(0)
    if unit_readout is None:
        silent = readout.bias + (readout.weight @ readout.mean if silence == "mean" else 0)
        baseline = silent.double().expand(len(groups), -1)
    else:
        weight, baseline = unit_readout
    for start in range(0, len(labels), chunk):
        x, y = activations[start:start + chunk], labels[start:start + chunk]
        if unit_readout is None:
            fields = unit_fields(x, readout, groups, silence).double()
        else:
            fields = torch.einsum("ign,gkn->igk", x[:, groups.index].double(), weight) + baseline  # unit alone
        matrix += torch.einsum("ia,igk->gak", F.one_hot(y, k).double(), fields - baseline)
        cells = offsets + (y * k).unsqueeze(1) + fields.argmax(-1)
        confusion += torch.bincount(cells.flatten(), minlength=g * k * k).double()
    confusion = confusion.view(g, k, k)
    count = torch.bincount(labels, minlength=k).double()
    correct = torch.diagonal(confusion, dim1=-2, dim2=-1)
    clusters = label_clusters(matrix, threshold)
    full = (activations.double() @ readout.weight.double().T + readout.bias.double()).argmax(-1)
    return UnitPerformanceResult(
        accuracy=correct.sum(-1) / len(labels), label_accuracy=correct / count.clamp(min=1), confusion=confusion,
        label_output=clusters.normalised, recognised=clusters.recognised, cluster=clusters.cluster,
        labels_per_unit=clusters.recognised.sum(-1), predicted_labels=(confusion.sum(1) > 0).sum(-1),
        noise=clusters.noise, snr=clusters.snr, count=count, full_accuracy=float((full == labels).double().mean()),
        units=list(groups.names), labels=list(label_names) if label_names else [str(i) for i in range(k)],
        settings={"silence": silence if unit_readout is None else "alone",
                  "readout": "fixed" if unit_readout is None else "retrained", "threshold": threshold,
                  "kind": groups.kind})


def fit_unit_readouts(activations: torch.Tensor, labels: torch.Tensor, groups: UnitGroups, num_labels: int,
                      l2: float = 1e-3, iterations: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """The retrained readouts: one logistic regression per unit on its own nodes, all fitted in one batched
    problem. Returns weight (G, K, n) and bias (G, K)."""
    _check_labels(labels, num_labels)
    return _fit_linear(activations[:, groups.index], labels, num_labels, l2, iterations)


class UnitActivations(Observable):
    """Collects the nodes of `site` in block `layer`, one row per example: the first token ("cls", what BERT's
    classifier reads), the mean over the attention mask ("mean"), or every masked position ("masked", targets
    (B, T) holding -100 at positions that are not predicted). Targets are the labels: (B,) for "cls" and "mean"."""

    name = "unit_activations"
    summary = "the nodes of one site of one block, one row per example, with their labels"

    def __init__(self, layer: int, site: str = "heads", pool: str = "cls"):
        if pool not in POOLS:
            raise GoldstoneError(f"unknown pool {pool!r} (choose from {', '.join(POOLS)})")
        self.layer, self.site, self.pool = layer, site, pool
        self.add_state("_rows", [], "cat")
        self.add_state("_labels", [], "cat")

    def hook_names(self, model: nn.Module) -> list[str]:
        self._name = site_hook(model, self.layer, self.site)
        return [self._name]

    def update(self, probe: Probe) -> None:
        nodes = probe.activations[self._name].float()
        targets = torch.as_tensor(probe.targets).to(nodes.device)
        if self.pool == "masked":
            chosen = targets != -100
            rows, labels = nodes[chosen], targets[chosen]
        elif self.pool == "cls":
            rows, labels = nodes[:, 0], targets
        else:
            mask = probe.inputs["attention_mask"].to(nodes).unsqueeze(-1)
            rows, labels = (nodes * mask).sum(1) / mask.sum(1).clamp(min=1), targets
        self._rows.append(rows.cpu())
        self._labels.append(labels.long().cpu())

    def collected(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(activations (N, U), labels (N,)) accumulated so far."""
        if not self._rows:
            raise GoldstoneError("no batches measured")
        return torch.cat(self._rows), torch.cat(self._labels)

    def compute(self) -> UnitActivationsResult:
        activations, labels = self.collected()
        return UnitActivationsResult(activations, labels)



@dataclasses.dataclass
class UnitActivationsResult(Result):
    observable = "unit_activations"
    activations: torch.Tensor = dims("example", "node")
    labels: torch.Tensor = dims("example")


class UnitPerformance(UnitActivations):
    """`unit_performance` of `groups` through a fixed `readout` (fitted beforehand with `fit_readout` on
    training data), accumulated over the measured batches."""

    name = "unit_performance"
    summary = "per head / node subset / node: label x output matrix, accuracy per label, clusters, noise, SNR"

    def __init__(self, layer: int, readout: Readout, groups: UnitGroups, site: str = "heads", pool: str = "cls",
                 silence: str = "zero", threshold: float = THRESHOLD, label_names: Sequence[str] | None = None):
        super().__init__(layer, site, pool)
        if silence not in SILENCE:
            raise GoldstoneError(f"unknown silence {silence!r} (choose from {', '.join(SILENCE)})")
        self.readout, self.groups, self.silence, self.threshold = readout, groups, silence, threshold
        self.label_names = label_names

    def compute(self) -> UnitPerformanceResult:
        activations, labels = self.collected()
        if activations.shape[1] != self.readout.weight.shape[1]:
            raise GoldstoneError(f"the readout reads {self.readout.weight.shape[1]} nodes but site {self.site!r} "
                                 f"has {activations.shape[1]}")
        return unit_performance(activations, labels, self.readout, self.groups, self.silence, self.threshold,
                                self.label_names)


@dataclasses.dataclass
class HeadSpecialisationResult(Result):
    """Per head of the measured block: accuracy and labels recognised through the fixed readout,
    noise and SNR of its label x output matrix; the same accuracy and labels per single node, and
    their means; and the readout's accuracy with every node."""
    observable = "head_specialisation"
    accuracy: torch.Tensor = dims("head")
    labels_per_unit: torch.Tensor = dims("head")
    noise: torch.Tensor = dims("head")
    snr: torch.Tensor = dims("head")
    node_accuracy: torch.Tensor = dims("node")
    node_labels: torch.Tensor = dims("node")
    mean_node_accuracy: torch.Tensor = dims()
    labels_per_node: torch.Tensor = dims()
    readout_accuracy: torch.Tensor = dims()


class HeadSpecialisation(Observable):
    """`unit_performance` of every attention head and every single node of block `layer` (default:
    the last) of a Hugging Face model on labelled text, summarised: a readout is fitted on the
    `train` batches' first-token nodes, then each head and node alone is scored through it on the
    `test` batches (batches are
    ``(inputs, labels)``). It runs its own forward passes, so it attaches like a parameter
    observable: to a checkpoint series, or a monitor at its due steps."""

    name = "head_specialisation"
    summary = "per attention head and node: accuracy and labels recognised through a readout fitted on labelled text"
    needs_forward = False

    def __init__(self, train: list, test: list, label_names: Sequence[str], layer: int = -1):
        if not train or not test:
            raise GoldstoneError("HeadSpecialisation needs train and test batches of labelled text")
        self.train, self.test, self.label_names, self.layer = train, test, list(label_names), layer
        self.add_state("_results", [], "cat")

    def update(self, probe: Probe) -> None:
        model = probe.model
        layer = self.layer % adapters.num_layers(model)
        collected = []
        for batches in (self.train, self.test):
            activations = UnitActivations(layer, "heads", "cls")
            measure(model, [activations], batches)
            collected.append(activations.collected())
        readout = fit_readout(*collected[0], len(self.label_names))
        units, head_dim = collected[0][0].shape[1], adapters.head_dim(model)
        heads = unit_performance(*collected[1], readout, UnitGroups.heads(units // head_dim, head_dim),
                                 label_names=self.label_names)
        nodes = unit_performance(*collected[1], readout, UnitGroups.nodes(units), label_names=self.label_names)
        labels = nodes.labels_per_unit.double()
        self._results.append(HeadSpecialisationResult(
            accuracy=heads.accuracy, labels_per_unit=heads.labels_per_unit, noise=heads.noise, snr=heads.snr,
            node_accuracy=nodes.accuracy, node_labels=labels, mean_node_accuracy=nodes.accuracy.double().mean(),
            labels_per_node=labels.mean(), readout_accuracy=torch.tensor(heads.full_accuracy, dtype=torch.float64)))

    def compute(self) -> HeadSpecialisationResult:
        return self._results[-1]

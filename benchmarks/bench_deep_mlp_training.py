"""Deep-MLP training, goldstone against the authors' construction, on their protocol: 8x8 digits,
N = 64, L = 100, Adam 1e-3, 360 steps of batch 128, the same batches and seeds on both sides, one
thread. Goal: at least 2x faster at the same final test accuracy (within seed noise).

The peer is written here the way "Spontaneous Symmetry Breaking and Goldstone Modes for Deep
Information Propagation" builds its layers (github.com/nabiliqbal/ssb-goldstone-deep-info-prop,
`equivariant_layers.py`): every forward assembles the dense N x N weight in a zero matrix by
strided assignment (k copies of w for O(k), four for U(1)), multiplies by it, and applies the
radial tanh as tanh(r) / (r + 1e-12) on blocks of adjacent features; `torch.optim.Adam` with its
defaults. Ours is `goldstone.models.DeepMLP` with `make_optimizer`, as the `deep_mlp` experiment
trains it.
"""

from __future__ import annotations

import itertools
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.data import batch_indices, load_dataset
from goldstone.models import DeepMLP
from goldstone.training.loop import make_optimizer

WIDTH, DEPTH, STEPS, BATCH, LR = 64, 100, 360, 128, 1e-3
CASES = (("ok", 4, 1.2), ("u1", 2, 1.5))


class AuthorsLinear(nn.Module):
    """The authors' equivariant linear map: the dense weight assembled at every call."""

    def __init__(self, group: str, k: int, width: int, sigma_w: float):
        super().__init__()
        self.group, self.k = group, k
        if group == "u1":
            self.w1 = nn.Parameter(torch.randn(width // 2, width // 2) * sigma_w / width ** 0.5)
            self.w2 = nn.Parameter(torch.randn(width // 2, width // 2) * sigma_w / width ** 0.5)
        else:
            self.w = nn.Parameter(torch.randn(width // k, width // k) * sigma_w * (k / width) ** 0.5)

    def weight(self) -> torch.Tensor:
        if self.group == "u1":
            m, n = self.w1.shape
            out = torch.empty(2 * m, 2 * n)
            out[0::2, 0::2], out[0::2, 1::2], out[1::2, 0::2], out[1::2, 1::2] = self.w1, self.w2, -self.w2, self.w1
            return out
        m, n = self.w.shape
        out = torch.zeros(m * self.k, n * self.k)
        for d in range(self.k):
            out[d::self.k, d::self.k] = self.w
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight().T


class AuthorsRadialTanh(nn.Module):
    def __init__(self, k: int, eps: float = 1e-12):
        super().__init__()
        self.k, self.eps = k, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.reshape(x.shape[0], x.shape[1] // self.k, self.k)
        r = torch.linalg.norm(y, dim=2, keepdim=True)
        return (y * (torch.tanh(r) / (r + self.eps))).reshape(x.shape)


def authors_model(group: str, k: int, sigma_w: float, features: int, classes: int) -> nn.Module:
    layers = [m for _ in range(DEPTH) for m in (AuthorsLinear(group, k, WIDTH, sigma_w), AuthorsRadialTanh(k))]
    return nn.Sequential(nn.Linear(features, WIDTH), *layers, nn.Linear(WIDTH, classes))


def trainer(side: str, group: str, k: int, sigma_w: float, data, accuracies: list[float], steps: int = STEPS):
    """A callable that trains a fresh model per call (seeds 0, 1, ...) and records its final test
    accuracy (one forward pass, a negligible part of the call)."""
    seeds = itertools.count()

    def train() -> None:
        seed = next(seeds)
        torch.manual_seed(seed)
        if side == "goldstone":
            model = DeepMLP(data.num_features, data.num_classes, group, k, WIDTH, DEPTH, sigma_w)
            optimizer = make_optimizer(model, "adam", lr=LR)
        else:
            model = authors_model(group, k, sigma_w, data.num_features, data.num_classes)
            optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        for step in range(steps):
            idx = batch_indices(len(data.x_train), BATCH, step, seed)
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracies.append(float((model(data.x_test).argmax(-1) == data.y_test).double().mean()))
    return train


def main(rounds: int = 3) -> list[dict]:
    pin_threads(1)
    data = load_dataset("digits")
    results = []
    for group, k, sigma_w in CASES:
        for side in ("goldstone", "authors"):  # warm-up: a few steps of each, untimed
            trainer(side, group, k, sigma_w, data, [], steps=10)()
        accuracy = {"goldstone": [], "authors": []}
        timings = interleaved({side: trainer(side, group, k, sigma_w, data, accuracy[side])
                               for side in ("goldstone", "authors")}, rounds=rounds, warmup=0)
        mean = {side: statistics.mean(a) for side, a in accuracy.items()}
        spread = max(statistics.stdev(a) if len(a) > 1 else 0.0 for a in accuracy.values())
        tolerance = max(0.05, 2 * spread)
        same = abs(mean["goldstone"] - mean["authors"]) <= tolerance
        label = "O(4)" if group == "ok" else "U(1)"
        results.append(compare(
            f"deep MLP training {label}, L={DEPTH}: authors / ours", timings["goldstone"], timings["authors"], 2.0,
            f"{STEPS} steps, sigma_W = {sigma_w}, seeds 0-{rounds - 1}; final test accuracy ours "
            f"{mean['goldstone']:.3f}, authors' {mean['authors']:.3f} (same within {tolerance:.2f}: {same})",
            unit="s", scale=1.0, met=same))
    return results


if __name__ == "__main__":
    main()

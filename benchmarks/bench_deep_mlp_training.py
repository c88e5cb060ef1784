"""Deep-MLP training, goldstone against the authors' construction, on their protocol: 8x8 digits,
N = 64, L = 100, Adam 1e-3, 360 steps of batch 128, the same batches and seeds on both sides, one
thread. Goal: at least 2x faster at the same final test accuracy (within seed noise).

The peer is `benchmarks.authors_goldstone` (the authors' layers, rebuilt) with `torch.optim.Adam`
at its defaults, as their script trains; ours is `goldstone.models.DeepMLP` with `make_optimizer`,
as the `deep_mlp` experiment trains it.
"""

from __future__ import annotations

import itertools
import statistics

import torch
import torch.nn.functional as F

from benchmarks.authors_goldstone import authors_model
from benchmarks.common import compare, interleaved, pin_threads
from goldstone.data import batch_indices, load_dataset
from goldstone.models import DeepMLP
from goldstone.training.loop import make_optimizer

WIDTH, DEPTH, STEPS, BATCH, LR = 64, 100, 360, 128, 1e-3
CHUNK = 20
CASES = (("ok", 4, 1.2), ("u1", 2, 1.5))


def trainer(side: str, group: str, k: int, sigma_w: float, data, accuracies: list[float], steps: int = STEPS,
            chunk: int = CHUNK):
    """A callable that advances one side's training by `chunk` steps per call: seed 0 for the first
    steps / chunk calls, then seed 1, ...; each finished run appends its final test accuracy (one
    forward pass). Calling the two sides in turn interleaves them every `chunk` steps, so drifts of
    the machine's speed fall on both alike."""
    def runs():
        for seed in itertools.count():
            torch.manual_seed(seed)
            if side == "goldstone":
                model = DeepMLP(data.num_features, data.num_classes, group, k, WIDTH, DEPTH, sigma_w)
                optimizer = make_optimizer(model, "adam", lr=LR)
            else:
                model = authors_model(group, k, WIDTH, DEPTH, sigma_w, data.num_features, data.num_classes)
                optimizer = torch.optim.Adam(model.parameters(), lr=LR)
            for step in range(steps):
                idx = batch_indices(len(data.x_train), BATCH, step, seed)
                loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if (step + 1) % chunk == 0 and step + 1 < steps:
                    yield
            with torch.no_grad():
                accuracies.append(float((model(data.x_test).argmax(-1) == data.y_test).double().mean()))
            yield

    run = runs()
    return lambda: next(run)


def main(seeds: int = 3) -> list[dict]:
    pin_threads(1)
    data = load_dataset("digits")
    results = []
    for group, k, sigma_w in CASES:
        for side in ("goldstone", "authors"):  # warm-up: a few steps of each, untimed
            trainer(side, group, k, sigma_w, data, [], steps=10, chunk=10)()
        accuracy = {"goldstone": [], "authors": []}
        chunks = STEPS // CHUNK
        timings = interleaved({side: trainer(side, group, k, sigma_w, data, accuracy[side])
                               for side in ("goldstone", "authors")}, rounds=seeds * chunks, warmup=0)
        for timing in timings.values():  # chunk times -> one total per training run
            timing.seconds = [sum(timing.seconds[i:i + chunks]) for i in range(0, len(timing.seconds), chunks)]
        mean = {side: statistics.mean(a) for side, a in accuracy.items()}
        spread = max(statistics.stdev(a) if len(a) > 1 else 0.0 for a in accuracy.values())
        tolerance = max(0.05, 2 * spread)
        same = abs(mean["goldstone"] - mean["authors"]) <= tolerance
        label = "O(4)" if group == "ok" else "U(1)"
        results.append(compare(
            f"deep MLP training {label}, L={DEPTH}: authors / ours", timings["goldstone"], timings["authors"], 2.0,
            f"one run per seed ({seeds} seeds), {STEPS} steps interleaved every {CHUNK}, sigma_W = {sigma_w}; final "
            f"test accuracy ours {mean['goldstone']:.3f}, authors' {mean['authors']:.3f} (same within "
            f"{tolerance:.2f}: {same})", unit="s", scale=1.0, met=same))
    return results


if __name__ == "__main__":
    main()

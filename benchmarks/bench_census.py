"""Neuron census of a 4096-neuron layer: identical-neuron groups from all pairwise distances at once
(one Gram matrix, connected components) against a Python double loop over the pairs with a
union-find, as a script would write it. Goal: >= 100x, with identical groups."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import interleaved, pin_threads, report
from goldstone.observables.neuron_census import identical_groups


def planted_layer(neurons: int = 4096, width: int = 64, copies: int = 4) -> torch.Tensor:
    """Neuron vectors [w_in (64), b, w_out (10)]: neurons / copies distinct units, each repeated
    `copies` times with 1% noise (identical within the threshold), one in 8 scaled away."""
    g = torch.Generator().manual_seed(0)
    base = torch.randn(neurons // copies, width + 11, generator=g, dtype=torch.float64)
    vectors = base.repeat_interleave(copies, 0)
    vectors += 0.01 * base.norm(dim=1).repeat_interleave(copies)[:, None] / 9 * torch.randn(vectors.shape, generator=g,
                                                                                           dtype=torch.float64)
    vectors[::8] *= 3.0
    return vectors


def loop_groups(vectors: np.ndarray, same: float) -> np.ndarray:
    """The peer baseline: every pair in Python, a union-find over the close ones."""
    parent = list(range(len(vectors)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    squared = [float(v @ v) for v in vectors]
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            distance = 2 - 4 * float(vectors[i] @ vectors[j]) / (squared[i] + squared[j])
            if distance < same:
                parent[find(i)] = find(j)
    return np.array([find(i) for i in range(len(vectors))])


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings group the items identically."""
    pairs = {(x, y) for x, y in zip(a.tolist(), b.tolist())}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def main(neurons: int = 4096) -> list[dict]:
    pin_threads(1)
    vectors = planted_layer(neurons)
    identical_groups(vectors[:8], 0.1)  # warm-up: scipy's import and first calls, outside the timing
    ours, theirs = {}, {}
    timings = interleaved({"batched": lambda: ours.update(labels=identical_groups(vectors, 0.1).numpy()),
                           "loop": lambda: theirs.update(labels=loop_groups(vectors.numpy(), 0.1))},
                          rounds=1, warmup=0)
    identical = same_partition(ours["labels"], theirs["labels"])
    ratio = timings["loop"].median / timings["batched"].median
    return [report(f"neuron census, identical groups, {neurons} neurons", ratio, ">= 100", ratio >= 100 and identical,
                   f"batched {timings['batched'].median:.3f} s, Python double loop {timings['loop'].median:.1f} s; "
                   f"{len(set(ours['labels'].tolist()))} groups, identical partitions: {identical}")]


if __name__ == "__main__":
    main()

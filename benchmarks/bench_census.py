"""Neuron census of a 4096-neuron layer: identical-neuron groups from all pairwise distances at once
(one float32 Gram matrix, connected components) against the version a researcher would write,
`torch.cdist` on the vectors as given (float64), thresholded, then scipy's `connected_components`
(goal: >= 1x, identical groups). A Python double loop over the pairs with a union-find is reported
beside it, labelled as the strawman it is."""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from scipy.sparse.csgraph import connected_components

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.observables.neuron_census import identical_groups

SAME = 0.1


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


def cdist_groups(vectors: torch.Tensor, same: float) -> np.ndarray:
    """The realistic peer: D_ij = 2 |v_i - v_j|^2 / (|v_i|^2 + |v_j|^2) from `torch.cdist`, thresholded,
    connected components of the graph D < same."""
    squared = vectors.pow(2).sum(1)
    close = 2 * torch.cdist(vectors, vectors).pow(2) / (squared[:, None] + squared[None, :]) < same
    return connected_components(scipy.sparse.csr_matrix(close.numpy()), directed=False)[1]


def loop_groups(vectors: np.ndarray, same: float) -> np.ndarray:
    """The strawman: every pair in Python, a union-find over the close ones."""
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


def main(neurons: int = 4096, rounds: int = 5) -> list[dict]:
    pin_threads(1)
    vectors = planted_layer(neurons)
    labels = {}
    timings = interleaved({"goldstone": lambda: labels.update(ours=identical_groups(vectors, SAME).numpy()),
                           "cdist": lambda: labels.update(cdist=cdist_groups(vectors, SAME)),
                           "cdist float32": lambda: labels.update(cdist32=cdist_groups(vectors.float(), SAME))},
                          rounds=rounds)
    timings |= interleaved({"loop": lambda: labels.update(loop=loop_groups(vectors.numpy(), SAME))}, rounds=1, warmup=0)
    ours = labels.pop("ours")
    same = {name: same_partition(ours, found) for name, found in labels.items()}
    float32 = timings["cdist float32"].median / timings["goldstone"].median
    detail = (f"{neurons} neurons, {len(set(ours.tolist()))} groups; identical partitions: {same}; "
              f"cdist in float32 instead: {float32:.2f}x")
    return [compare(f"neuron census, {neurons} neurons: cdist + csgraph / ours", timings["goldstone"], timings["cdist"],
                    1, detail, unit="s", scale=1.0, met=all(same.values())),
            compare("  strawman: Python double loop / ours", timings["goldstone"], timings["loop"], None,
                    "the loop timed once", unit="s", scale=1.0, met=same["loop"])]


if __name__ == "__main__":
    main()

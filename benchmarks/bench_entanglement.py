"""Entanglement profiles: a 1024 x 1024 matrix (20 qubits) by two Gram matrices and partial traces,
against what a researcher would write in numpy, the Gram matrix of each cut's unfolding (its
smaller side) and `np.linalg.eigvalsh`: the same algorithm, so parity is expected (goal >= 0.9x,
entropies equal to 1e-10). quimb (`MatrixProductState.from_dense(cutoff=0)` then `entropy` at every
cut, converted from bits; an SVD per cut) is reported beside it when installed, labelled as the
strawman. Also: all 12 query/value matrices of MiniLM at once, goal well under a second."""

from __future__ import annotations

import importlib.util
import math
import time

import numpy as np
import torch

from benchmarks.common import compare, interleaved, pin_threads, report
from goldstone.observables.entanglement import entanglement_profile

SITES = 20


def numpy_profile(matrix: np.ndarray) -> np.ndarray:
    """The realistic peer: von Neumann entropy (nats) at every cut of psi = vec(M) / |M| on 2-level
    sites, from the eigenvalues of the smaller Gram matrix of the cut's unfolding."""
    psi = matrix.reshape(-1) / np.linalg.norm(matrix)
    entropies = []
    for k in range(1, SITES):
        a = psi.reshape(2 ** k, -1)
        p = np.linalg.eigvalsh(a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a)
        p = p[p > 0]
        entropies.append(-(p * np.log(p)).sum())
    return np.array(entropies)


def quimb_profile(matrix: np.ndarray) -> np.ndarray:
    """The strawman: quimb's MPS of the state, then its entropy at every cut (bits to nats)."""
    import quimb.tensor as qtn

    psi = (matrix / np.linalg.norm(matrix)).reshape(-1)
    mps = qtn.MatrixProductState.from_dense(psi, dims=[2] * SITES, cutoff=0.0)
    return np.array([mps.entropy(k) * math.log(2) for k in range(1, SITES)])


def main(rounds: int = 5) -> list[dict]:
    pin_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    profiles = {"ours": lambda m: entanglement_profile(torch.from_numpy(m)).numpy(), "numpy": numpy_profile}
    if importlib.util.find_spec("quimb"):
        profiles["quimb"] = quimb_profile
    else:
        print("entanglement profile vs quimb: skipped (quimb is not installed: pip install -e '.[dev]')")
    matrix = torch.randn(2 ** (SITES // 2), 2 ** (SITES // 2), generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64).numpy()
    out = {}

    def side(name: str, profile):
        return lambda: out.update({name: profile(matrix)})

    timings = interleaved({name: side(name, profile) for name, profile in profiles.items()}, rounds=rounds, warmup=1)
    gap = {name: float(np.abs(out["ours"] - out[name]).max()) for name in profiles}
    results = [compare("entanglement profile 1024x1024: numpy / ours", timings["ours"], timings["numpy"], 0.9,
                       f"same algorithm, parity expected; max |dS| = {gap['numpy']:.1e} nats", unit="s", scale=1.0,
                       met=gap["numpy"] < 1e-10)]
    if "quimb" in profiles:
        results.append(compare("  strawman: quimb from_dense + entropy / ours", timings["ours"], timings["quimb"], None,
                               f"max |dS| = {gap['quimb']:.1e} nats", unit="s", scale=1.0, met=gap["quimb"] < 1e-10))
    try:
        from goldstone.core.weights import read_weights
        from goldstone.models.pretrained import minilm_path

        weights = read_weights(minilm_path())
        stack = torch.stack([w.double() for n, w in weights.items()
                             if n.endswith(("query.weight", "value.weight"))])
        start = time.perf_counter()
        entanglement_profile(stack)
        seconds = time.perf_counter() - start
        results.append(report("profiles of MiniLM's 12 Q/V matrices, seconds", seconds, "< 1", seconds < 1,
                              f"{len(stack)} matrices of 384 x 384, 16 sites each, one batched call"))
    except Exception as err:  # noqa: BLE001 - the hf extra (MiniLM) may be missing
        print(f"MiniLM profiles: skipped ({err})")
    return results


if __name__ == "__main__":
    main()

"""Entanglement profiles: a 1024 x 1024 matrix (20 qubits) by two Gram matrices and partial traces,
against quimb (`MatrixProductState.from_dense(cutoff=0)` then `entropy` at every cut, converted
from bits), the reference a physicist would reach for. Goal: >= 5x on one thread, entropies equal
to 1e-10. Also: all 12 query/value matrices of MiniLM at once, goal well under a second."""

from __future__ import annotations

import math
import time

import torch

from benchmarks.common import interleaved, pin_threads, report
from goldstone.observables.entanglement import entanglement_profile


def main(rounds: int = 3) -> list[dict]:
    pin_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    try:
        import quimb.tensor as qtn
    except ImportError:
        print("entanglement profile vs quimb: skipped (quimb is not installed: pip install -e '.[dev]')")
        return []
    g = torch.Generator().manual_seed(0)
    matrix = torch.randn(1024, 1024, generator=g, dtype=torch.float64)
    dims = [2] * 20
    out: dict[str, torch.Tensor] = {}

    def ours() -> None:
        out["ours"] = entanglement_profile(matrix)

    def quimb() -> None:
        psi = (matrix / matrix.norm()).reshape(-1).numpy()
        mps = qtn.MatrixProductState.from_dense(psi, dims=dims, cutoff=0.0)
        out["quimb"] = torch.tensor([mps.entropy(k) * math.log(2) for k in range(1, len(dims))], dtype=torch.float64)

    timings = interleaved({"ours": ours, "quimb": quimb}, rounds=rounds, warmup=1)
    difference = float((out["ours"] - out["quimb"]).abs().max())
    ratio = timings["quimb"].median / timings["ours"].median
    results = [report("entanglement profile 1024x1024 vs quimb", ratio, ">= 5", ratio >= 5 and difference < 1e-10,
                      f"min / median / max of {rounds}: {timings['ours'].summary()}, {timings['quimb'].summary()}; "
                      f"max |dS| = {difference:.1e} nats")]
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

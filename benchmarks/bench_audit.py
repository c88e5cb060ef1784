"""The audit: MiniLM over 5 checkpoints, and its weight statistics against WeightWatcher.

1. `goldstone.audit` of MiniLM (6 layers, 12 heads) over 5 checkpoints (its weights plus growing
   noise, so no two are duplicates) with the default observables and a 64-sentence probe, on the
   cores the machine has. Goal: at most 5 minutes of wall time on 2 cores; the seconds of every
   observable per checkpoint are printed.
2. Weight statistics of MiniLM's 37 Linear matrices (norms, spectral norm, stable and effective
   rank, centre-cut entanglement, valley width) against WeightWatcher's `analyze()` on the same model (its
   spectra and power-law fits of the same matrices and the 2 embeddings), one thread, CPU time.
   Baseline: what a researcher runs today for weight diagnostics. Goal: ours takes no longer.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from benchmarks.common import compare, interleaved, pin_threads, report


def minilm():
    import transformers

    from goldstone.models.pretrained import minilm_path

    transformers.logging.set_verbosity_error()
    return transformers.AutoModel.from_pretrained(str(minilm_path()), attn_implementation="eager")


def audit_minilm(folder: Path) -> dict:
    import goldstone

    model = minilm()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    for i, step in enumerate((0, 100, 200, 300, 400)):
        save_file({k: v + 1e-3 * i * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
                   for k, v in base.items()}, str(folder / f"step_{step}.safetensors"))
    start = time.perf_counter()
    result = goldstone.audit("minilm", str(folder / "step_*.safetensors"), out=folder / "audit", probe_size=64,
                             quiet=True)
    wall = time.perf_counter() - start
    import pandas as pd

    timings = pd.read_parquet(folder / "audit" / "timings.parquet").groupby("observable").seconds.mean()
    detail = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.sort_values(ascending=False).items())
    measured = int((result.checkpoints.status == "measured").sum())
    return report("audit of MiniLM, 5 checkpoints (wall minutes)", wall / 60, "<= 5", wall <= 300 and measured == 5,
                   f"{wall:.0f} s in all ({measured} checkpoints measured; setup: load, plan, symmetry detection "
                   f"{wall - timings.sum() * measured:.0f} s); per checkpoint: {detail}")


def weight_statistics_against_weightwatcher() -> dict | None:
    try:
        import weightwatcher
    except ImportError:
        print("weight statistics against WeightWatcher: skipped (pip install weightwatcher to compare)")
        return None
    from goldstone.core.observable import measure
    from goldstone.observables.weight_statistics import WeightStatistics

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    model = minilm()
    timings = interleaved({"ours": lambda: measure(model, [WeightStatistics()]),
                           "weightwatcher": lambda: weightwatcher.WeightWatcher(model=model).analyze()}, rounds=3)
    return compare("weight statistics of MiniLM vs WeightWatcher", timings["ours"], timings["weightwatcher"], 1.0,
                   "37 Linear matrices, spectra, centre-cut entropies and valley widths, against analyze() with its "
                   "power-law fits",
                   unit="s", scale=1.0)


def main() -> list[dict]:
    results = []
    pin_threads(1)
    compared = weight_statistics_against_weightwatcher()
    results += [compared] if compared else []
    pin_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as folder:
        results.append(audit_minilm(Path(folder)))
    return results


if __name__ == "__main__":
    main()

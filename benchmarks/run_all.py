"""Run every benchmark and print, for each, min / median / max of both sides and the ratio against
the peer baseline measured in the same run, with the load it ran under.

    python -m benchmarks.run_all            # all
    python -m benchmarks.run_all layers     # those whose module name contains 'layers'
"""

from __future__ import annotations

import importlib
import sys

from benchmarks.common import load_average

BENCHMARKS = ["bench_startup", "bench_equivariant_layers", "bench_deep_mlp_training", "bench_observable_overhead", "bench_vortices", "bench_recurrent", "bench_noether", "bench_census", "bench_entanglement", "bench_audit",
              "bench_head_uas", "bench_single_node", "bench_ray_sweep"]


def main(selection: list[str]) -> int:
    print(f"start: {load_average()}")
    results = []
    for name in BENCHMARKS:
        if selection and not any(s in name for s in selection):
            continue
        results += importlib.import_module(f"benchmarks.{name}").main()
    missed = [r["name"] for r in results if not r["met"]]
    print(f"\n{len(results) - len(missed)} of {len(results)} goals met" + (f"; missed: {', '.join(missed)}" if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

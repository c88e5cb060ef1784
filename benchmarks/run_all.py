"""Run every benchmark and print its ratio against the baseline measured in the same run.

    python -m benchmarks.run_all            # all
    python -m benchmarks.run_all layers     # those whose module name contains 'layers'
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["bench_equivariant_layers", "bench_observable_overhead", "bench_ray_sweep", "bench_head_uas", "bench_single_node"]


def main(selection: list[str]) -> int:
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

"""A sweep of 8 deep_mlp points on a local Ray cluster of 2 CPUs against the same points run
serially in one process (one torch thread per point either way). Goal >= 1.7x on 2 cores.
The cluster is started before the clock starts; its start-up time is printed beside."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import report
from goldstone.core.sweep import SweepSpec, execute_sweep

GRID = {"sigma_w": [1.1, 1.3, 1.5, 1.7], "group": ["ok", "u1"]}
POINT = {"depth": 60, "steps": 160, "eval_every": 40, "observe_every": 40, "checkpoint_every": 80}


def main() -> list[dict]:
    import ray

    spec = SweepSpec("deep_mlp", GRID, overrides=POINT)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        execute_sweep(spec, Path(tmp) / "serial", workers=1, quiet=True)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        startup = time.perf_counter() - start
        try:
            start = time.perf_counter()
            execute_sweep(spec, Path(tmp) / "ray", workers=2, backend="ray", quiet=True)
            parallel = time.perf_counter() - start
        finally:
            ray.shutdown()
    ratio = serial / parallel
    return [report("8-point sweep: serial / ray (2 CPUs)", ratio, ">= 1.7", ratio >= 1.7,
                   f"serial {serial:.1f} s, ray {parallel:.1f} s, cluster start-up {startup:.1f} s "
                   f"(with it: {serial / (parallel + startup):.2f}x)")]


if __name__ == "__main__":
    main()

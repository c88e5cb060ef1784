"""A sweep of 8 deep_mlp points on a local Ray cluster of 2 CPUs against the same points run
serially in one process (one torch thread per point either way), in wall-clock time: parallelism
is the point. Goal >= 1.7x on 2 idle cores; on fewer cores, or a loaded machine, the ratio is
printed without a verdict. The cluster is started before the clock starts."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import LOADED, busy_cores, report
from goldstone.lab.sweep import SweepSpec, execute_sweep

GRID = {"sigma_w": [1.1, 1.3, 1.5, 1.7], "group": ["ok", "u1"]}
POINT = {"depth": 60, "steps": 160, "eval_every": 40, "observe_every": 40, "checkpoint_every": 80}
CPUS = 2


def main() -> list[dict]:
    import ray

    spec = SweepSpec("deep_mlp", GRID, overrides=POINT)
    cores, load = os.cpu_count() or 1, busy_cores()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        execute_sweep(spec, Path(tmp) / "serial", workers=1, quiet=True)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        startup = time.perf_counter() - start
        try:
            start = time.perf_counter()
            execute_sweep(spec, Path(tmp) / "ray", workers=CPUS, backend="ray", quiet=True)
            parallel = time.perf_counter() - start
        finally:
            ray.shutdown()
    ratio = serial / parallel
    idle = cores >= CPUS and load <= LOADED
    detail = (f"serial {serial:.1f} s, ray {parallel:.1f} s on {CPUS} of {cores} cores ({load:.2f} cores busy before), "
              f"cluster start-up {startup:.1f} s (with it: {serial / (parallel + startup):.2f}x)")
    if not idle:
        detail += "; machine loaded or short of cores: no verdict"
    return [report("8-point sweep: serial / ray (2 CPUs, wall)", ratio, ">= 1.7" if idle else "none",
                   ratio >= 1.7 if idle else True, detail)]


if __name__ == "__main__":
    main()

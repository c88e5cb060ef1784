"""SIGKILL a run and a sweep at random moments, resume each time, and check that the final
metrics are identical (bitwise) to an uninterrupted run.

    python -m benchmarks.kill_resume            # 10 kills of a run, 10 of a sweep
    python -m benchmarks.kill_resume --kills 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from goldstone.testing.kill_resume import check_run, check_sweep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, check in (("run", check_run), ("sweep", check_sweep)):
            landed = check(args.kills, args.seed, Path(tmp))
            print(f"{name}: {landed} of {args.kills} SIGKILLs hit a live process; "
                  f"final metrics identical to the uninterrupted {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

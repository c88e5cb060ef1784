"""Start-up of the command line, in CPU seconds of a fresh interpreter (user + system): `goldstone
--help` (goal under 0.5 s) and `goldstone list` (goal under 1 s). Each is compared with what a
command pays that imports torch before doing anything (`python -c "import torch"`), and shown beside
the bare interpreter (`python -c pass`)."""

from __future__ import annotations

import resource
import subprocess
import sys

from benchmarks.common import Timing, interleaved, report

COMMANDS = {"goldstone --help": ["-m", "goldstone", "--help"], "goldstone list": ["-m", "goldstone", "list"],
            "import torch": ["-c", "import torch"], "bare python": ["-c", "pass"]}
GOALS = {"goldstone --help": 0.5, "goldstone list": 1.0}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command(args: list[str]):
    return lambda: subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)


def main(rounds: int = 5) -> list[dict]:
    timings: dict[str, Timing] = interleaved({name: command(args) for name, args in COMMANDS.items()},
                                             rounds=rounds, clock=children_cpu)
    results = []
    for name, goal in GOALS.items():
        ours, torch_first = timings[name], timings["import torch"]
        ratio = torch_first.median / ours.median
        results.append(report(f"start-up: {name} (CPU s) vs import torch", ratio, f"< {goal:g} s",
                              ours.median < goal,
                              f"min / median / max of {rounds}: {ours.summary()}, {torch_first.summary()}, "
                              f"{timings['bare python'].summary()}; {rounds} interleaved rounds"))
    return results


if __name__ == "__main__":
    main()

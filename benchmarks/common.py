"""The benchmark harness: threads pinned, warm-up, A/B runs interleaved, min / median / max of each,
the ratio of medians, and the load the machine was under.

Times are the process's CPU seconds (`time.process_time`) unless a benchmark is about parallelism:
with one thread, CPU time is what the work costs, and another process on the machine hardly moves
it, where wall time would take that process's share. Every result line names its baseline (what a
peer's code really runs) and its goal.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable

import torch

LOADED = 0.5
"""Cores' worth of work by other processes above which the machine counts as busy (`busy_cores`)."""


def pin_threads(threads: int = 1) -> None:
    """One torch thread (intra- and inter-op) unless parallelism is what is measured."""
    torch.set_num_threads(threads)


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def busy_cores(seconds: float = 1.0) -> float:
    """Cores' worth of CPU time the whole machine spends over the next `seconds` while this process
    sleeps (from /proc/stat): what other processes use right now, which a load average, still
    counting this process's own earlier work, cannot tell. Falls back on the 1-minute load average."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return os.getloadavg()[0]
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


@dataclasses.dataclass
class Timing:
    """Seconds of each repeat of one side of a comparison."""
    name: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def summary(self, unit: str = "s", scale: float = 1.0) -> str:
        s = [v * scale for v in self.seconds]
        return f"{self.name} {min(s):.3g} / {statistics.median(s):.3g} / {max(s):.3g} {unit}"


def interleaved(sides: dict[str, Callable[[], object]], rounds: int = 5, warmup: int = 1,
                clock: Callable[[], float] = time.process_time) -> dict[str, Timing]:
    """Each callable `warmup` times untimed, then `rounds` rounds of one timed call of each, in turn
    (A B A B ...), so slow drifts of the machine fall on both sides alike."""
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    timings = {name: Timing(name, []) for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = clock()
            fn()
            timings[name].seconds.append(clock() - start)
    return timings


def report(name: str, ratio: float, goal: str, met: bool, detail: str) -> dict:
    """Print one result line (and its detail, with the load it ran under) and return it."""
    print(f"{name:<44} ratio {ratio:8.2f}  goal {goal:<9} {'met' if met else 'NOT met'}", flush=True)
    print(f"    {detail}; {load_average()}", flush=True)
    return {"name": name, "ratio": ratio, "goal": goal, "met": met, "detail": detail}


def compare(name: str, ours: Timing, peer: Timing, goal: float | None, detail: str = "", unit: str = "ms",
            scale: float = 1e3, met: bool = True) -> dict:
    """Report peer median / our median against `goal` (a speed-up: higher is better); `goal=None` for a
    row that is only reported (a strawman beside the realistic peer)."""
    ratio = peer.median / ours.median
    timings = f"min / median / max: {ours.summary(unit, scale)} ({len(ours.seconds)}), " \
              f"{peer.summary(unit, scale)} ({len(peer.seconds)})"
    return report(name, ratio, "reported" if goal is None else f">= {goal:g}", met and (goal is None or ratio >= goal),
                  timings + (f"; {detail}" if detail else ""))

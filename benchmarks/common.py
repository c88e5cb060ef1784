"""Shared helpers: best-of-n wall-clock timing and a result line with its goal."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Minimum wall-clock seconds of `fn()` over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(name: str, ratio: float, goal: str, met: bool, detail: str) -> dict:
    line = f"{name:<38} ratio {ratio:7.2f}  goal {goal:<8} {'met' if met else 'NOT met'}  ({detail})"
    print(line, flush=True)
    return {"name": name, "ratio": ratio, "goal": goal, "met": met, "detail": detail}

"""SIGKILL a goldstone run or sweep at random moments, resume it each time, and check that its
final metrics are identical (bitwise) to an uninterrupted one; `python -m benchmarks.kill_resume`
runs it at scale."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RUN_SET = ["--set", "depth=6", "--set", "width=16", "--set", "steps=120", "--set", "checkpoint_every=10",
           "--set", "eval_every=10", "--set", "observe_every=10", "--set", "batch_size=32", "--set", "probe_size=4"]
SWEEP_ARGS = ["--grid", "sigma_w=0.8,1.5", "--grid", "group=ok,u1", "--workers", "2"]


def kill_and_resume(cmd: list[str], folder: Path, kills: int, rng: random.Random, window: float,
                    marker: str = "config.json", resume_flag: bool = True) -> int:
    """Start `cmd`, SIGKILL it at a random moment (uniform in `window` seconds after `marker`
    appears in `folder`), start it again (with --resume when `resume_flag`); after `kills`
    rounds let it finish. Returns how many kills hit a live process. The checks below keep the
    window within the uninterrupted run's own duration, so kills land however fast the machine."""
    landed = 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for i in range(kills + 1):
        again = resume_flag and (folder / marker).exists()
        proc = subprocess.Popen(cmd + (["--resume"] if again else []), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env, start_new_session=True)
        if i == kills:
            _, err = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"final resume failed: {err.decode()[-2000:]}")
            break
        deadline = time.time() + 120
        while not (folder / marker).exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, window))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: sweep workers die too
            landed += 1
        proc.wait()
    return landed


def goldstone_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "goldstone", *args, "--quiet"]


def _timed(cmd: list[str]) -> float:
    """Run `cmd` to the end; its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def check_run(kills: int, seed: int, tmp: Path) -> int:
    cmd = goldstone_cli("run", "deep_mlp", *RUN_SET)
    duration = _timed(cmd + ["--out", str(tmp / "run-reference")])
    landed = kill_and_resume(cmd + ["--out", str(tmp / "run-killed")], tmp / "run-killed", kills,
                             random.Random(seed), window=min(3.0, 0.6 * duration))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp / "run-killed" / "metrics.parquet"),
                                  pd.read_parquet(tmp / "run-reference" / "metrics.parquet"), check_exact=True)
    return landed


def check_sweep(kills: int, seed: int, tmp: Path) -> int:
    cmd = goldstone_cli("sweep", "deep_mlp", *SWEEP_ARGS, *RUN_SET)
    duration = _timed(cmd + ["--out", str(tmp / "sweep-reference")])
    landed = kill_and_resume(cmd + ["--out", str(tmp / "sweep-killed")], tmp / "sweep-killed", kills,
                             random.Random(seed), window=min(8.0, 0.6 * duration), marker="sweep.json",
                             resume_flag=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp / "sweep-killed" / "results.parquet"),
                                  pd.read_parquet(tmp / "sweep-reference" / "results.parquet"), check_exact=True)
    return landed

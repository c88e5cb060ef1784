"""The real-data commands of the docs on CPU and on CUDA, timed wall-clock, with the speed-up: the
script a session lent a GPU runs (about a minute of CPU time on the 2-core machine for the CPU side),
and that says so in one line where there is none.

    python -m benchmarks.gpu_speedup                 # cuda against cpu
    python -m benchmarks.gpu_speedup --devices cpu   # the CPU side alone (to check the script)

Each case is the documented command cut to a fixed number of steps (the same on both devices), one
seed, in a fresh temporary folder; the CPU side runs on one thread, as the docs' timings do. The
time is the whole run's (data loading, checkpoints and report included, alike on both devices), so
the ratio understates the speed-up of the training steps; each device is warmed up first by a
throwaway run of the first case at a few steps, so CUDA's start-up is not charged to a case.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

import goldstone
from goldstone.core.errors import GoldstoneError

CASES = {
    "deep_mlp, Fashion-MNIST, O(4), L = 100, 300 steps": (
        "deep_mlp", {"dataset": "fashion_mnist", "steps": 300, "eval_every": 100, "observe_every": 300,
                     "checkpoint_every": 300}),
    "seq_pixels, permuted mnist5k (784 steps), U(1) RNN N = 48, 50 steps": (
        "seq_pixels", {"dataset": "mnist5k", "permute": True, "group": "u1", "width": 48, "steps": 50,
                       "eval_every": 50, "eval_size": 1000}),
    "copy_task, U(1) GRU, T_max = 200, 100 steps": (
        "copy_task", {"cell": "gru", "max_delay": 200, "steps": 100, "eval_every": 100, "checkpoint_every": 100}),
}


def wall_seconds(experiment: str, keys: dict, device: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        goldstone.run(experiment, out=f"{folder}/run", device=device, quiet=True, **keys)
        return time.perf_counter() - start


def main(devices: list[str]) -> int:
    if "cuda" in devices and not torch.cuda.is_available():
        print("no CUDA device here: nothing to measure (the docs say so)")
        return 0
    torch.set_num_threads(1)
    experiment, keys = next(iter(CASES.values()))
    for device in devices:  # warm-up: CUDA's context and kernels, the data's first read
        try:
            wall_seconds(experiment, {**keys, "steps": 5, "eval_every": 5, "observe_every": 5, "checkpoint_every": 5},
                         device)
        except GoldstoneError:
            break
    print(f"{'case':70s} " + " ".join(f"{d:>10s}" for d in devices) + ("  speed-up" if len(devices) == 2 else ""))
    for name, (experiment, keys) in CASES.items():
        try:
            seconds = [wall_seconds(experiment, keys, device) for device in devices]
        except GoldstoneError as err:  # data or an extra this machine lacks: said, and the next case
            print(f"{name:70s} skipped: {err}")
            continue
        ratio = f"  {seconds[0] / seconds[1]:7.1f}x" if len(seconds) == 2 else ""
        print(f"{name:70s} " + " ".join(f"{s:9.1f}s" for s in seconds) + ratio, flush=True)
    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name()}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated devices, the baseline first")
    raise SystemExit(main(parser.parse_args().devices.split(",")))

"""Winding numbers of a 64 x 64 phase field over 1000 time steps: `winding_numbers` (vectorised over
the lattice and time) against the vectorised numpy a researcher would write (wrapped phase
differences of rolled arrays, summed around every plaquette of every frame at once; goal >= 1x,
identical charges on all frames). The per-plaquette Python loop is reported beside it, labelled as
the strawman, timed on the first 10 frames and compared per frame."""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.analysis.vortices import winding_numbers

FRAMES, SIZE, LOOP_FRAMES = 1000, 64, 10


def wrap(a):
    """An angle (or array of angles) into [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def numpy_charges(phase: np.ndarray) -> np.ndarray:
    """The realistic peer, every frame at once: wrapped differences along the links (i, j) -> (i, j+1)
    and (i, j) -> (i+1, j), summed around each plaquette and divided by 2 pi."""
    dx, dy = wrap(np.roll(phase, -1, -1) - phase), wrap(np.roll(phase, -1, -2) - phase)
    return np.rint((dx + np.roll(dy, -1, -1) - np.roll(dx, -1, -2) - dy) / (2 * np.pi)).astype(np.int8)


def loop_charges(phase: list[list[float]]) -> list[list[int]]:
    """The strawman, one frame plaquette by plaquette: wrapped differences around (i, j) -> (i, j+1)
    -> (i+1, j+1) -> (i+1, j), summed and divided by 2 pi."""
    n, m = len(phase), len(phase[0])
    charges = []
    for i in range(n):
        row = []
        for j in range(m):
            a, b = phase[i][j], phase[i][(j + 1) % m]
            c, d = phase[(i + 1) % n][(j + 1) % m], phase[(i + 1) % n][j]
            row.append(round((wrap(b - a) + wrap(c - b) + wrap(d - c) + wrap(a - d)) / (2 * math.pi)))
        charges.append(row)
    return charges


def main(rounds: int = 5) -> list[dict]:
    pin_threads(1)
    generator = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(FRAMES, 2, SIZE, SIZE, generator=generator), 5, 1, 2,
                                            count_include_pad=False)
    phase = torch.atan2(smooth[:, 1], smooth[:, 0])  # a random field with many vortices
    frames = [phase[t].tolist() for t in range(LOOP_FRAMES)]
    found = {}
    timings = interleaved({"goldstone": lambda: found.update(ours=winding_numbers(phase)),
                           "numpy": lambda: found.update(numpy=numpy_charges(phase.numpy())),
                           "loop": lambda: found.update(loop=[loop_charges(f) for f in frames])}, rounds=rounds)
    for name, timing in timings.items():
        timing.seconds = [s / (LOOP_FRAMES if name == "loop" else FRAMES) for s in timing.seconds]
    same_numpy = torch.equal(found["ours"], torch.from_numpy(found["numpy"]))
    same_loop = torch.equal(found["ours"][:LOOP_FRAMES], torch.tensor(found["loop"], dtype=torch.int8))
    vortices = int(found["ours"].abs().sum()) / FRAMES
    return [compare("winding numbers per frame: numpy / ours", timings["goldstone"], timings["numpy"], 1,
                    f"{SIZE}x{SIZE} lattice, {FRAMES} frames at once; {vortices:.0f} charges per frame; identical "
                    f"charges: {same_numpy}", met=same_numpy),
            compare("  strawman: per-plaquette loop / ours", timings["goldstone"], timings["loop"], None,
                    f"{LOOP_FRAMES} frames looped; identical charges: {same_loop}", met=same_loop)]


if __name__ == "__main__":
    main()

"""Winding numbers of a 64 x 64 phase field over 1000 time steps: `winding_numbers` (vectorised over
the lattice and time) against the per-plaquette Python loop a peer writes, timed on the first 10
frames and compared per frame (identical charges checked on those). Goal >= 100x."""

from __future__ import annotations

import math

import torch

from benchmarks.common import compare, interleaved, pin_threads
from goldstone.analysis.vortices import winding_numbers

FRAMES, SIZE, LOOP_FRAMES = 1000, 64, 10


def loop_charges(phase: list[list[float]]) -> list[list[int]]:
    """One frame, plaquette by plaquette: wrapped differences around (i, j) -> (i, j+1) -> (i+1, j+1)
    -> (i+1, j), summed and divided by 2 pi."""
    def wrap(a: float) -> float:
        return (a + math.pi) % (2 * math.pi) - math.pi

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


def main(rounds: int = 3) -> list[dict]:
    pin_threads(1)
    generator = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(FRAMES, 2, SIZE, SIZE, generator=generator), 5, 1, 2,
                                            count_include_pad=False)
    phase = torch.atan2(smooth[:, 1], smooth[:, 0])  # a random field with many vortices
    frames = [phase[t].tolist() for t in range(LOOP_FRAMES)]
    found = {}
    timings = interleaved({"goldstone": lambda: found.update(ours=winding_numbers(phase)),
                           "loop": lambda: found.update(loop=[loop_charges(f) for f in frames])}, rounds=rounds)
    timings["goldstone"].seconds = [s / FRAMES for s in timings["goldstone"].seconds]
    timings["loop"].seconds = [s / LOOP_FRAMES for s in timings["loop"].seconds]
    same = torch.equal(found["ours"][:LOOP_FRAMES], torch.tensor(found["loop"]))
    vortices = int(found["ours"].abs().sum()) / FRAMES
    return [compare("winding numbers per frame: loop / batched", timings["goldstone"], timings["loop"], 100,
                    f"{SIZE}x{SIZE} lattice, {FRAMES} frames batched, {LOOP_FRAMES} looped; {vortices:.0f} charges "
                    f"per frame; identical charges: {same}", unit="ms", scale=1e3, met=same)]


if __name__ == "__main__":
    main()

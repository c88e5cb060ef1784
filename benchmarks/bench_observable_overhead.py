"""Overhead of observables attached to a training loop at the default cadence and length of
`deep_mlp` (order parameter and protected Jacobian every 40 of 360 steps): time with / time
without, and the monitor's own time as a share of the plain loop. Goal <= 1.10."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.common import report
from goldstone.core.monitor import Monitor
from goldstone.experiments.deep_mlp import DeepMLPConfig
from goldstone.models import DeepMLP
from goldstone.observables import OrderParameter, ProtectedJacobian


def train(steps: int, monitored: bool, cfg: DeepMLPConfig) -> tuple[float, float]:
    """(wall seconds of the whole loop, seconds spent inside the monitor)."""
    torch.manual_seed(0)
    model = DeepMLP(64, 10, cfg.group, cfg.k, cfg.width, cfg.depth, cfg.sigma_w)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = torch.randn(cfg.batch_size, 64), torch.randint(0, 10, (cfg.batch_size,))
    monitor = Monitor(model, [OrderParameter(cfg.block), ProtectedJacobian(cfg.block)], x[:cfg.probe_size],
                      schedule=cfg.observe_every)
    inside = 0.0
    start = time.perf_counter()
    for step in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if monitored:
            tick = time.perf_counter()
            monitor(step + 1)
            inside += time.perf_counter() - tick
    return time.perf_counter() - start, inside


def main(steps: int | None = None, rounds: int = 3) -> list[dict]:
    """Plain and observed loops interleaved `rounds` times (after one warm-up of each); the ratio of
    the median times, and the monitor's own share of the plain time, which load hardly moves."""
    torch.set_num_threads(1)
    cfg = DeepMLPConfig()
    steps = steps or cfg.steps
    train(min(steps, 40), False, cfg), train(min(steps, 40), True, cfg)
    plain, observed, inside = [], [], []
    for _ in range(rounds):
        plain.append(train(steps, False, cfg)[0])
        total, spent = train(steps, True, cfg)
        observed.append(total)
        inside.append(spent)
    ratio = statistics.median(observed) / statistics.median(plain)
    share = statistics.median(inside) / statistics.median(plain)
    return [report("observables in a training loop", ratio, "<= 1.10", ratio <= 1.10,
                   f"{steps} steps of the default deep_mlp (L={cfg.depth}), every {cfg.observe_every}; medians of "
                   f"{rounds} interleaved rounds: {statistics.median(plain):.2f} s plain (range "
                   f"{min(plain):.2f}-{max(plain):.2f}), {statistics.median(observed):.2f} s observed (range "
                   f"{min(observed):.2f}-{max(observed):.2f}); time inside the monitor {1 + share:.3f}x plain")]


if __name__ == "__main__":
    main()

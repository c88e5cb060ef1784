"""Overhead of observables attached to a training loop at the default cadence and length of
`deep_mlp` (order parameter and protected Jacobian every 40 of 360 steps): time with / time
without. Goal <= 1.10."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import best_time, report
from goldstone.core.monitor import Monitor
from goldstone.experiments.deep_mlp import DeepMLPConfig
from goldstone.models import DeepMLP
from goldstone.observables import OrderParameter, ProtectedJacobian


def train(steps: int, monitored: bool, cfg: DeepMLPConfig):
    def loop():
        torch.manual_seed(0)
        model = DeepMLP(64, 10, cfg.group, cfg.k, cfg.width, cfg.depth, cfg.sigma_w)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        x, y = torch.randn(cfg.batch_size, 64), torch.randint(0, 10, (cfg.batch_size,))
        monitor = Monitor(model, [OrderParameter(cfg.block), ProtectedJacobian(cfg.block)], x[:cfg.probe_size],
                          schedule=cfg.observe_every)
        for step in range(steps):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if monitored:
                monitor(step + 1)
    return loop


def main(steps: int | None = None) -> list[dict]:
    torch.set_num_threads(1)
    cfg = DeepMLPConfig()
    steps = steps or cfg.steps
    plain = best_time(train(steps, False, cfg), repeats=2)
    watched = best_time(train(steps, True, cfg), repeats=2)
    ratio = watched / plain
    return [report("observables in a training loop", ratio, "<= 1.10", ratio <= 1.10,
                   f"{steps} steps of the default deep_mlp (L={cfg.depth}), every {cfg.observe_every}: "
                   f"{plain:.2f} s plain, {watched:.2f} s observed")]


if __name__ == "__main__":
    main()

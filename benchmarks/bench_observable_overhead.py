"""Overhead of observables attached to a training loop at the default cadence and length of
`deep_mlp` (order parameter and protected Jacobian every 40 of 360 steps): the plain loop is the
baseline, the same loop with a `Monitor` the contender. Goal: observed / plain <= 1.10."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import interleaved, pin_threads, report
from goldstone.core.monitor import Monitor
from goldstone.experiments.deep_mlp import DeepMLPConfig
from goldstone.models import DeepMLP
from goldstone.observables import OrderParameter, ProtectedJacobian
from goldstone.training.loop import make_optimizer


def loop(steps: int, monitored: bool, cfg: DeepMLPConfig):
    def train() -> None:
        torch.manual_seed(0)
        model = DeepMLP(64, 10, cfg.group, cfg.k, cfg.width, cfg.depth, cfg.sigma_w)
        optimizer = make_optimizer(model, "adam", lr=cfg.lr)
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
    return train


def main(steps: int | None = None, rounds: int = 3) -> list[dict]:
    pin_threads(1)
    cfg = DeepMLPConfig()
    steps = steps or cfg.steps
    loop(40, False, cfg)(), loop(40, True, cfg)()  # warm-up
    timings = interleaved({"observed": loop(steps, True, cfg), "plain": loop(steps, False, cfg)}, rounds=rounds,
                          warmup=0)
    ratio = timings["observed"].median / timings["plain"].median
    return [report("observables in a training loop: observed / plain", ratio, "<= 1.10", ratio <= 1.10,
                   f"min / median / max of {rounds}: {timings['observed'].summary()}, {timings['plain'].summary()}; "
                   f"{rounds} interleaved rounds of {steps} steps of the default deep_mlp (L={cfg.depth}), "
                   f"observed every {cfg.observe_every}")]


if __name__ == "__main__":
    main()

"""syre: remove a model's parameter symmetries by decaying its weights toward a fixed random anchor.

"Remove Symmetries to Control Model Expressivity" (Ziyin, Xu, Chuang, 2025): train
l(theta) + gamma |theta - theta_0|^2 with theta_0 ~ N(0, sigma_0^2 I) drawn once and never
trained. A symmetric state (P theta = 0, e.g. identical or dead neurons) is then no longer a fixed
point of the dynamics, so a network started there escapes it. Decoupled form (the paper's and
its implementations'): after the wrapped optimiser's step, theta <- theta - lr * weight_decay *
(theta - theta_0). With sigma_0 = 0 it is plain decoupled weight decay. The paper's default
anchor scale is sigma_0 = 0.01 x the init std.

Advanced removal (syre-AR, the paper's answer to continuous symmetries, where a single anchor
always lies on some mirror): the penalty gamma (theta - theta_0)^T D (theta - theta_0) with D a
positive diagonal of distinct entries, D_ii ~ U(1 - d, 1 + d) (`metric_spread` = d); the paper's
guarantee needs sigma_D = d / sqrt(3) small against sigma_0. d = 0 is plain syre, exactly.
"""

from __future__ import annotations

import torch


class Syre:
    """Wrap `optimizer`: every `step()` runs it, then pulls each parameter toward its anchor.

    `anchor_scale`: sigma_0, a float, or a callable of the parameter giving it (e.g.
    ``lambda p: 0.01 / p.shape[-1] ** 0.5``); `weight_decay`: the pull's rate per unit learning
    rate; `seed`: the anchors' seed (they are drawn once, in parameter order); `metric_spread`: d of
    syre-AR's diagonal metric D (drawn after all anchors, so the anchors do not depend on it)."""

    def __init__(self, optimizer: torch.optim.Optimizer, anchor_scale, weight_decay: float, seed: int = 0,
                 metric_spread: float = 0.0):
        if not 0 <= metric_spread < 1:
            raise ValueError(f"metric_spread must be in [0, 1) (D_ii ~ U(1 - d, 1 + d) > 0), got {metric_spread!r}")
        self.optimizer, self.weight_decay = optimizer, weight_decay
        generator = torch.Generator().manual_seed(seed)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.anchors: dict[torch.Tensor, torch.Tensor] = {}
        for p in params:
            scale = anchor_scale(p) if callable(anchor_scale) else anchor_scale
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
            self.anchors[p] = (noise * scale).to(p.device, p.dtype)
        self.metrics: dict[torch.Tensor, torch.Tensor] = {}
        if metric_spread:
            for p in params:
                uniform = torch.rand(p.shape, generator=generator, dtype=torch.float64)
                self.metrics[p] = (1 + metric_spread * (2 * uniform - 1)).to(p.device, p.dtype)

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                pull = p - self.anchors[p]
                p.sub_(pull * self.metrics[p] if self.metrics else pull, alpha=group["lr"] * self.weight_decay)
        return loss

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "anchors": list(self.anchors.values()),
                "metrics": list(self.metrics.values())}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        for key, value in zip(self.anchors, state["anchors"]):
            self.anchors[key] = value.to(key.device, key.dtype)
        self.metrics = {key: value.to(key.device, key.dtype) for key, value in zip(self.anchors, state.get("metrics", []))}

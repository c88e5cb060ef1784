"""MPS adaptation: a LoRA whose down-projection is a two-core matrix product state.

"Artificial Entanglement in the Fine-Tuning of Large Language Models" (Chen et al., 2026), its MPS
adaptation: Delta W = (alpha / r) B A_MPS, with the input index split as d_in = d1 d2 and
A_MPS[a, i1 d2 + i2] = sum_c G1[a, i1, c] G2[c, i2]; B is d_out x r, G1 is r x d1 x chi, G2 is
chi x d2. Parameters d_out r + r d1 chi + chi d2 (LoRA: r (d_in + d_out)). Read as a chain
B - G1 - G2 over (rows | i1 | i2), the update has entropy at most ln r at the row|column cut and at
most ln chi at the cut after i1.

Initialisation (ours; the paper's is not published): B = 0, so Delta W = 0 at the start as in
LoRA; G2 ~ N(0, 1/chi) and G1 ~ U(-1/sqrt(d_in), 1/sqrt(d_in)), so that Var(A_MPS) = 1/(3 d_in),
the variance of peft's Kaiming-uniform LoRA A.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from goldstone.core.errors import ConfigError


def default_split(d_in: int) -> int:
    """d1 for d_in = d1 d2: the divisor of d_in nearest sqrt(d_in) on a log scale (the larger on a tie)."""
    divisors = [d for d in range(1, d_in + 1) if d_in % d == 0]
    return min(divisors, key=lambda d: (round(abs(math.log(d * d / d_in)), 9), -d))


def mps_parameter_count(d_out: int, d_in: int, rank: int, chi: int, d1: int) -> int:
    """Trainable parameters of one MPS adapter: d_out r + r d1 chi + chi d2."""
    return d_out * rank + rank * d1 * chi + chi * (d_in // d1)


def rank_matching_lora(lora_rank: int, d_out: int, d_in: int, chi: int, d1: int) -> int:
    """The bond r of an MPS adapter whose parameter count is nearest that of LoRA at `lora_rank`."""
    target = lora_rank * (d_in + d_out)
    per_rank = d_out + d1 * chi
    low = max(1, (target - chi * (d_in // d1)) // per_rank)
    return min((low, low + 1), key=lambda r: abs(mps_parameter_count(d_out, d_in, r, chi, d1) - target))


class MPSLinear(nn.Module):
    """A frozen `nn.Linear` plus an MPS adapter: y = W x + b + (alpha / r) B A_MPS x, with A_MPS x
    contracted core by core (x -> (d1, d2) -> G2 -> (d1, chi) -> G1 -> r), never forming A_MPS."""

    def __init__(self, base: nn.Linear, rank: int, chi: int, alpha: float, split: int | None = None):
        super().__init__()
        d_out, d_in = base.weight.shape
        d1 = default_split(d_in) if split is None else int(split)
        if d1 < 1 or d_in % d1:
            raise ConfigError(f"key 'split': {d1} does not divide the input width {d_in}")
        if rank < 1 or chi < 1:
            raise ConfigError(f"MPS adapter: rank ({rank}) and chi ({chi}) must be at least 1")
        self.base = base.requires_grad_(False)
        self.rank, self.chi, self.d1, self.d2 = rank, chi, d1, d_in // d1
        self.scaling = alpha / rank
        like = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.first_core = nn.Parameter(torch.empty(rank, d1, chi, **like).uniform_(-d_in ** -0.5, d_in ** -0.5))
        self.second_core = nn.Parameter(torch.randn(chi, self.d2, **like) / math.sqrt(chi))
        self.up = nn.Parameter(torch.zeros(d_out, rank, **like))

    def down(self) -> torch.Tensor:
        """A_MPS (r x d_in)."""
        return torch.einsum("aic,cj->aij", self.first_core, self.second_core).reshape(self.rank, -1)

    def delta_weight(self) -> torch.Tensor:
        """Delta W = (alpha / r) B A_MPS (d_out x d_in)."""
        return self.scaling * self.up @ self.down()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(*x.shape[:-1], self.d1, self.d2) @ self.second_core.T  # (..., d1, chi)
        h = h.flatten(-2) @ self.first_core.reshape(self.rank, -1).T  # (..., r)
        return self.base(x) + self.scaling * h @ self.up.T

    def merged(self) -> nn.Linear:
        """A plain `nn.Linear` with W + Delta W."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out.to(self.base.weight)


def add_mps_adapters(model: nn.Module, target_modules: Sequence[str], rank: int, chi: int, alpha: float,
                     split: int | None = None, trainable: Sequence[str] = ()) -> nn.Module:
    """PEFT-style injection: every `nn.Linear` whose last name part is in `target_modules` becomes an
    `MPSLinear`; all other parameters are frozen except those of modules whose last name part is in
    `trainable` (a new classification head, say). Returns the model, changed in place."""
    targets = [(name, module) for name, module in model.named_modules()
               if isinstance(module, nn.Linear) and name.split(".")[-1] in target_modules]
    if not targets:
        raise ConfigError(f"MPS adapter: no nn.Linear named {list(target_modules)} in the model")
    model.requires_grad_(False)
    for name, module in targets:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, MPSLinear(module, rank, chi, alpha, split))
    for name, module in model.named_modules():
        if name.split(".")[-1] in trainable:
            module.requires_grad_(True)
    return model

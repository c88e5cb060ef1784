"""The deep MLP of "Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information
Propagation": a general input layer, L equivariant blocks (linear, radial tanh) with no bias,
no skips and no normalisation, then a general readout of all real coordinates.

Each block exposes a hook point ``blocks.{l}.hook_out`` (its output x^{l+1}); the input to the
first block is ``hook_in`` (x^0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn
from torch.nn.modules import module as global_hooks

from goldstone.core.errors import ConfigError
from goldstone.core.hooks import HookPoint
from goldstone.models.equivariant import GenericLinear, OkLinear, RadialActivation, U1Linear
from goldstone.models.group_config import block_size
from goldstone.models.radial_stack import radial_stack

Group = Literal["u1", "ok", "generic"]


GENERIC_SCALES = ("matched", "authors")


def generic_gain(sigma_w: float, k: int, generic_scale: str = "matched") -> float:
    """The gain sqrt(N) * std of the generic baseline's weights.

    "matched": std = sigma_W / sqrt(N), the gain of the equivariant layers (the same mean-field
    c-map, critical at sigma_W = 1). "authors": std = sigma_W sqrt(k / N), the O(k) layer's own
    weight std, as in the authors' O(k) comparison (gain sqrt(k) sigma_W).
    """
    if generic_scale not in GENERIC_SCALES:
        raise ConfigError(f"generic_scale must be one of {', '.join(GENERIC_SCALES)}, got {generic_scale!r}")
    return sigma_w * math.sqrt(k) if generic_scale == "authors" else sigma_w


def make_linear(group: str, width: int, k: int, sigma_w: float, generic_scale: str = "matched") -> nn.Module:
    if group == "u1":
        return U1Linear(width, width, sigma_w)
    if group == "ok":
        return OkLinear(width, width, k, sigma_w)
    if group == "generic":
        return GenericLinear(width, width, generic_gain(sigma_w, k, generic_scale))
    raise ConfigError(f"group must be u1, ok or generic, got {group!r}")


class Block(nn.Module):
    """x -> phi(linear(x)); with `fused`, both in one autograd node (`radial_stack`)."""

    def __init__(self, group: str, width: int, k: int, sigma_w: float, generic_scale: str = "matched",
                 fused: bool = True):
        super().__init__()
        self.linear = make_linear(group, width, k, sigma_w, generic_scale)
        self.act = RadialActivation(k)
        self.hook_out = HookPoint()
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self.hook_out(radial_stack(x, [self.linear], self.act.k))
        return self.hook_out(self.act(self.linear(x)))


def _hooked(modules: Iterable[nn.Module]) -> bool:
    """Whether any forward or backward hook, global or on one of `modules`, would run."""
    kinds = ("forward_hooks", "forward_pre_hooks", "backward_hooks", "backward_pre_hooks")
    return (any(getattr(global_hooks, f"_global_{kind}") for kind in kinds)
            or any(getattr(module, f"_{kind}") for module in modules for kind in kinds))


class DeepMLP(nn.Module):
    """input Linear -> L x [equivariant linear, radial tanh] -> readout Linear.

    `k` is the block size of the symmetry and of the radial activation (always 2 for U(1)); the
    generic baseline keeps the same radial activation with dense weights, scaled as
    `generic_scale` says (see `generic_gain`). `fused` runs the whole stack as one autograd node
    while no hook is placed in it, else each block as one (faster; no double backward: pass
    ``fused=False`` to take Hessians).
    """

    def __init__(self, in_features: int, num_classes: int, group: Group = "ok", k: int = 4, width: int = 64,
                 depth: int = 100, sigma_w: float = 1.2, generic_scale: str = "matched", fused: bool = True):
        super().__init__()
        k = block_size(group, k)
        if sigma_w <= 0:
            raise ConfigError(f"sigma_w must be > 0, got {sigma_w}")
        if k < 2:
            raise ConfigError(f"k must be >= 2, got {k}")
        if width % k:
            raise ConfigError(f"width={width} is not divisible by k={k}")
        self.group, self.k, self.width, self.depth, self.fused = group, k, width, depth, fused
        self.input = nn.Linear(in_features, width)
        self.hook_in = HookPoint()
        self.blocks = nn.ModuleList(Block(group, width, k, sigma_w, generic_scale, fused) for _ in range(depth))
        self.readout = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x^0 = input layer output, before the equivariant stack."""
        return self.hook_in(self.input(x))

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """x^L from x^0: the equivariant stack alone."""
        if self.fused and not _hooked(self.blocks.modules()):
            return radial_stack(h, [block.linear for block in self.blocks], self.k)
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.trunk(self.features(x.flatten(1))))

    def layer_hook_names(self) -> list[str]:
        return [f"blocks.{l}.hook_out" for l in range(self.depth)]

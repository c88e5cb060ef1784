"""The config keys of a deep linear network trained by full-batch GD on a linear teacher, and the
teacher and network they give (`saddle_to_saddle`, `weight_decay_transition`)."""

from __future__ import annotations

import dataclasses

import torch

from goldstone.core.config import param
from goldstone.core.errors import ConfigError
from goldstone.core.memory import FLOAT64, ROW
from goldstone.models.deep_linear import DeepLinear, linear_teacher


def singular_values(text: str, key: str = "singular_values") -> list[float]:
    """The teacher's singular values from text like "8,4,2,1", or a `ConfigError` naming `key`."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise ConfigError(f"key {key!r}: give comma-separated numbers, e.g. 8,4,2,1; got {text!r}") from err
    if not values or any(v <= 0 for v in values) or values != sorted(values, reverse=True):
        raise ConfigError(f"key {key!r}: give positive numbers in decreasing order, e.g. 8,4,2,1; got {text!r}")
    return values


@dataclasses.dataclass
class LinearTeacherConfig:
    """A deep linear network trained by full-batch GD on a linear teacher (the keys of
    `saddle_to_saddle` and `weight_decay_transition`)."""
    depth: int = param(2, "number L of weight matrices", label="depth L", ge=2, le=8)
    dim: int = param(20, "input and output dimension", ge=1)
    width: int = param(20, "hidden width", ge=1)
    singular_values: str = param("8,4,2,1", "teacher singular values s_i, decreasing",
                                 label="teacher singular values s")
    init_scale: float = param(1e-3, "std of every weight entry at initialisation", label="init scale σ", gt=0, le=10)
    lr: float = param(0.02, "learning rate eta (full-batch GD)", gt=0, le=10)
    steps: int = param(700, "GD steps", ge=1)

    def validate(self) -> None:
        values = singular_values(self.singular_values)
        if len(values) > min(self.dim, self.width):
            raise ConfigError(f"key 'singular_values': {len(values)} values for dim {self.dim}, width {self.width}")

    def logged_rows(self) -> int:
        """Metric rows the run logs: the loss and every mode's strength at every step."""
        return self.steps * (1 + len(singular_values(self.singular_values)))

    def memory(self) -> dict[str, int]:
        """Bytes by term (`goldstone.core.memory`): float64 matrices of at most max(dim, width)^2
        entries: the L weights with their gradients, and about 20 more for the teacher's orthogonal
        factors and the end-to-end products of the forward and backward pass (measured); the logged rows."""
        side = max(self.dim, self.width)
        return {"weights, teacher and products (keys dim, width, depth)": (2 * self.depth + 20) * side ** 2 * FLOAT64,
                "logged rows (keys steps, singular_values)": self.logged_rows() * ROW}


def teacher_and_student(cfg: LinearTeacherConfig, seed: int
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, DeepLinear]:
    """(T, U, V, network): the config's teacher and a fresh deep linear network, from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    teacher, u, v = linear_teacher(cfg.dim, singular_values(cfg.singular_values), generator)
    return teacher, u, v, DeepLinear(cfg.dim, cfg.width, cfg.depth, cfg.init_scale, generator)

"""The config keys every equivariant experiment shares: the symmetry group, its block size k and
the real width N, with the check that N splits into blocks."""

from __future__ import annotations

import dataclasses

from goldstone.core.config import param
from goldstone.core.errors import ConfigError

GROUPS = ("u1", "ok", "generic")
GROUP_LABELS = {"group=u1": "U(1)", "group=ok": "O({k})", "group=generic": "generic"}
"""The groups in words, for reports ("{k}": the block size)."""


def block_size(group: str, k: int) -> int:
    """The block size the layers of `group` act on: 2 for U(1), else k."""
    return 2 if group == "u1" else k


@dataclasses.dataclass
class GroupConfig:
    """Base of experiment configs built from U(1), O(k) or generic layers; a subclass may redeclare
    a field to change its default (the field keeps its place)."""

    group: str = param("ok", "symmetry of the hidden layers", label="symmetry group", choices=GROUPS)
    k: int = param(4, "block size of O(k) and of the radial activation (U(1) always uses 2)", label="block size k",
                   ge=2,
                   when={"group": ("ok", "generic")})
    width: int = param(64, "real width N of the hidden layers", label="width N (real features)", ge=2)

    @property
    def block(self) -> int:
        """The block size the layers act on (`block_size`)."""
        return block_size(self.group, self.k)

    def validate(self) -> None:
        if self.width % self.block:
            raise ConfigError(f"key 'width'={self.width} is not divisible by the block size {self.block} "
                              f"(group {self.group!r}{', key k' if self.group != 'u1' else ''})")

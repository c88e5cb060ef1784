"""The memory a run will need, estimated from its config before anything is built, and the check
that refuses a config the machine cannot hold (one line with the estimate; ``--force`` overrides).

A config states its estimate as ``memory(self) -> {term: bytes}``, each term naming the keys that
drive it ("activations (keys batch_size, width, depth)"). Estimates count what grows with the keys
(weights with their gradients and optimiser moments, activations kept for the backward pass, stored
records), to within a small factor; fixed costs (the interpreter, PyTorch, a small data set) are
left out, so a config is refused only when its own terms cannot fit.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from goldstone.core.errors import ConfigError

FLOAT32 = 4
FLOAT64 = 8
ROW = 100
"""Bytes a logged metric row takes in memory and on disk (step, observable, metric, value, ...)."""
MOST_EXAMPLES = 60_000
"""The largest training set of the image data sets (MNIST, Fashion-MNIST): a batch holds at most this many."""


def training_state(parameters: int, itemsize: int = FLOAT32, moments: int = 2) -> int:
    """Weights, their gradients and the optimiser's moments (Adam: 2, SGD with momentum: 1, GD: 0)."""
    return parameters * itemsize * (2 + moments)


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a run on `device`: the GPU's free memory, or the host's ``MemAvailable``
    (physical memory where /proc/meminfo is absent); None where neither can be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(count: float) -> str:
    """1536 -> "1.5 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def check_memory(config: object, device: torch.device, force: bool = False, copies: int = 1) -> None:
    """Refuse `config` when its estimate (times `copies` running side by side) exceeds the memory
    available on `device`, naming the largest term and its keys; `force` skips the check."""
    estimate = getattr(config, "memory", None)
    if force or estimate is None:
        return
    terms = estimate()
    need = copies * sum(terms.values())
    have = available_memory(device)
    if have is None or need <= have:
        return
    largest = max(terms, key=terms.get)
    side = f" for {copies} runs side by side" if copies > 1 else ""
    raise ConfigError(f"this config needs about {human_bytes(need)} of memory{side}, {human_bytes(copies * terms[largest])} "
                      f"for {largest}, but {device.type} has {human_bytes(have)} available; lower those keys, or "
                      f"pass --force to try anyway")


def transformer_activations(batch: int, length: int, hidden: int, layers: int, heads: int) -> int:
    """Activations a BERT-style encoder keeps for the backward pass: about 20 (batch, length, hidden)
    tensors and 3 (batch, heads, length, length) attention tensors per layer, float32."""
    return layers * batch * length * (20 * hidden + 3 * heads * length) * FLOAT32

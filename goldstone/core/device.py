"""Where and in what precision a run computes: ``--device auto|cpu|cuda|cuda:N|mps`` and
``--dtype float32|bfloat16|float64``, checked against what this machine's torch offers."""

from __future__ import annotations

import torch

from goldstone.core.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(device: str) -> torch.device:
    """The torch device for `device`; "auto" is CUDA if available, else MPS, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    base, _, index = device.partition(":")
    if base not in DEVICES or (index and (base != "cuda" or not index.isdigit())):
        raise ConfigError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    if base == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA device is available to torch on this machine")
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if base == "mps" and not _mps_available():
        raise ConfigError("--device mps: the Apple MPS backend is not available to torch on this machine")
    return torch.device(device)


def resolve_dtype(dtype: str) -> torch.dtype:
    """The torch dtype called `dtype` (float32, bfloat16 or float64)."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]

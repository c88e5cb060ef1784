import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

torch.set_num_threads(1)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
settings.register_profile("goldstone", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "goldstone"))
"""Fuzz tests draw the same examples on every run (CI is reproducible); explore new ones with
``HYPOTHESIS_PROFILE=default`` or ``--hypothesis-seed``."""

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_overrides() -> dict:
    """A deep_mlp config that trains in about a second."""
    return {"depth": 4, "width": 16, "steps": 24, "eval_every": 8, "observe_every": 8, "checkpoint_every": 8,
            "batch_size": 32, "probe_size": 4}

"""Library progress bars around quiet runs."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("huggingface_hub")

IMPORTED_INSIDE = """
import importlib
import warnings
warnings.simplefilter("error")
from goldstone.core.progress import HF_BARS, library_bars_off
with library_bars_off():
    importlib.import_module("huggingface_hub.utils.tqdm")  # first imported in a quiet run: reads the "1" once
assert HF_BARS not in __import__("os").environ
"""


def test_leaving_a_quiet_run_that_imported_the_hub_raises_no_warning():
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run([sys.executable, "-c", IMPORTED_INSIDE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

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


def test_a_bar_at_80_columns_keeps_its_times_and_count_whole():
    import io

    from rich.console import Console
    from rich.progress import Progress

    from goldstone.core.progress import bar_columns

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    with Progress(*bar_columns(), console=console, auto_refresh=False, expand=True) as bar:
        task = bar.add_task("sweep mlm_syntax: 12 of 12 points to run on 2 workers, variant=baseline,sas-,sas+",
                            total=12, count="3/12 points")
        bar.update(task, completed=3)
        bar.refresh()
    line = [l for l in out.getvalue().splitlines() if "points" in l][-1]
    assert "3/12 points" in line and "eta" in line and "…" in line
    assert "0:00:00 eta -:--:--" in line  # elapsed and remaining, whole

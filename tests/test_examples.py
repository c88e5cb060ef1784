"""Every script in examples/ runs top to bottom in a fresh interpreter (as a user runs it, from an
empty folder) and prints what its last cell promises."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PROMISES = {
    "goldstone_modes.py": "mean-field c*",
    "noether_charges.py": "largest relative error against the exact recursion",
    "entanglement.py": "bound ln 8",
    "parameter_symmetry.py": "'collapsed': 1.0",
    "your_hugging_face_model.py": "representation_alignment",
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(PROMISES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROMISES))
def test_an_example_runs_top_to_bottom(tmp_path, name):
    if name == "your_hugging_face_model.py":
        pytest.importorskip("transformers")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert PROMISES[name] in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_an_example_opens_as_a_notebook_with_jupytext(name):
    jupytext = pytest.importorskip("jupytext", reason="needs jupytext (pip install -e '.[dev]')")
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 1 and kinds.count("code") == text.count("# %%\n")
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")

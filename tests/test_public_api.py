"""The public API: every name of `goldstone.__all__` resolves to its home's object, `import
goldstone` imports none of them (nor torch) until used, and the README and docs import only
public names."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import goldstone

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(goldstone._HOMES))
def test_every_public_name_resolves_to_its_home(name):
    home = importlib.import_module(goldstone._HOMES[name])
    assert getattr(goldstone, name) is getattr(home, name)
    assert name in dir(goldstone)


def test_public_modules_are_attributes_imported_when_first_used():
    assert set(goldstone._SUBMODULES) <= set(goldstone.__all__)
    for name, home in goldstone._SUBMODULES.items():
        assert getattr(goldstone, name) is importlib.import_module(home)


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'Monitr'"):
        goldstone.Monitr  # noqa: B018


def test_import_goldstone_is_lazy():
    code = "import sys, goldstone; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('goldstone.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_readme_and_docs_import_only_public_names():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    internal = [(page.name, line.strip()) for page in pages for line in page.read_text().splitlines()
                if re.search(r"^\s*(from goldstone\.\S+ import|import goldstone\.)", line)]
    assert not internal, f"internal imports in the docs: {internal[:5]}"
    public = set(goldstone.__all__)
    for page in pages:
        for names in re.findall(r"^\s*from goldstone import ([\w, ]+)", page.read_text(), re.M):
            unknown = {n.strip() for n in names.split(",")} - public
            assert not unknown, f"{page.name} imports {unknown} from goldstone"


def test_function_apis_return_results_with_tidy_frames():
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    census = goldstone.neuron_census(model, example=x[:2])
    collapse = goldstone.neural_collapse(model[:2](x), y, model[2].weight, model[2].bias)
    symmetries = goldstone.detect_symmetries(model, [(x, y)], nn.functional.cross_entropy)
    for result, observable in ((census, "neuron_census"), (collapse, "neural_collapse"), (symmetries, "symmetries")):
        frame = result.to_frame(step=7)
        assert {"step", "observable", "metric", "value"} <= set(frame.columns) and len(frame)
        assert set(frame.observable) == {observable} and set(frame.step) == {7}
    assert census.table().set_index("layer").loc["0 → 2", "neurons"] == 6
    assert collapse.table().nc4.item() == float(collapse.nc4)
    assert len(symmetries.to_frame()) == len(symmetries)

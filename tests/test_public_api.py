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


@pytest.mark.parametrize("name", [n for n in goldstone.__all__ if n != "__version__"])
def test_every_public_name_resolves_to_its_home(name):
    home = importlib.import_module(goldstone._HOMES[name])
    assert getattr(goldstone, name) is getattr(home, name)
    assert name in dir(goldstone)


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

"""The package's layering: nothing imports upwards, so there are no import cycles between layers.

Layers, lowest first: core; groups; models, theory, data; observables; analysis, training,
testing; experiments; api, cli. A module may import its own layer and those below it, at module
level or inside a function.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "goldstone"
LAYERS = {"core": 0, "groups": 1, "models": 2, "theory": 2, "data": 2, "observables": 3, "analysis": 4,
          "training": 4, "testing": 4, "experiments": 5, "api": 6, "cli": 6, "catalogue": 6, "__main__": 6, "__init__": 6}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("goldstone"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(a.name for a in node.names if a.name.startswith("goldstone"))
    return names


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path):
    module = "goldstone." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    own = layer(module.removesuffix(".__init__"))
    upward = [name for name in imports(path) if name != "goldstone" and layer(name) > own]
    assert not upward, f"{module} (layer {own}) imports from a higher layer: {upward}"

"""The package's layering: nothing imports upwards, so there are no import cycles between layers;
and no import cycles at all between modules at import time.

Layers, lowest first: core; groups; models, theory, data; observables; analysis, training,
testing, lab, plotting; experiments; api, cli. A module may import its own layer and those below
it, at module level or inside a function. Imports count whether written as import statements or as strings: a
module path ("goldstone.x.y", or "goldstone.x.y:name") given to `importlib.import_module`,
`import_module` or `__import__`, as a constant, an f-string, a concatenation or a module-level
name bound to one (f"{PACKAGE}.{name}" imports a module of PACKAGE), and any other string that is
a module path of the package (tables of lazy imports, "module:function" targets run by workers).
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "goldstone"
LAYERS = {"core": 0, "groups": 1, "models": 2, "theory": 2, "data": 2, "observables": 3, "analysis": 4,
          "training": 4, "testing": 4, "lab": 4, "plotting": 4, "experiments": 5, "api": 6, "cli": 6, "catalogue": 6,
          "__main__": 6, "__init__": 6}

IMPORT_FUNCTIONS = {"import_module", "__import__"}
MODULE_PATH = re.compile(r"goldstone(\.[A-Za-z_]\w*)+(:[A-Za-z_][\w.]*)?")
PACKAGE_PREFIX = re.compile(r"goldstone(\.[A-Za-z_]\w*)*\.")  # f"goldstone.experiments.{name}"


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def module_name(path: Path) -> str:
    """goldstone.x.y for goldstone/x/y.py, goldstone.x for goldstone/x/__init__.py."""
    parts = ("goldstone", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(PACKAGE.rglob("*.py"))
NAMES = {module_name(path) for path in MODULES}


def static_imports(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The goldstone modules named by one import statement: `from a import b` gives a.b when b is a
    module, else a; relative imports are resolved against `module`."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "goldstone"]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join([*parts, *([base] if base else [])])
    if base.split(".")[0] != "goldstone":
        return []
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in NAMES else base for a in node.names]


def string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level names bound to a string: NAME = "goldstone.experiments"."""
    constants = {}
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if value is not None else []
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            constants.update({t.id: value.value for t in targets if isinstance(t, ast.Name)})
    return constants


def leading_text(node: ast.AST, constants: dict[str, str]) -> tuple[str, bool] | None:
    """The text a string expression starts with, and whether that is all of it (no run-time part)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, True
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id], True
    if isinstance(node, ast.JoinedStr):
        text = ""
        for value in node.values:
            part = leading_text(value.value if isinstance(value, ast.FormattedValue) and value.conversion == -1
                                and value.format_spec is None else value, constants)
            if part is None:
                return (text, False) if text else None
            text += part[0]
            if not part[1]:
                return text, False
        return text, True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = leading_text(node.left, constants)
        if left is None or not left[1]:
            return left
        right = leading_text(node.right, constants)
        return (left[0], False) if right is None else (left[0] + right[0], right[1])
    return None


def module_of(text: str, complete: bool) -> str | None:
    """The goldstone module a module-path string names: all of it (less a ":name"), or, when a
    run-time part follows, the package its literal start lies in (goldstone.experiments. -> goldstone.experiments)."""
    path = text.split(":")[0] if complete else text.rsplit(".", 1)[0]
    if path.split(".")[0] != "goldstone":
        return None
    while path not in NAMES and "." in path:  # an attribute after the module: goldstone.x.y.Name
        path = path.rsplit(".", 1)[0]
    return path


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    holders = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree) if isinstance(node, holders) and node.body
            and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def string_imports(tree: ast.Module) -> list[tuple[str, str]]:
    """(module, source text) of every string import: module paths given to an import function, and
    every other string that is a module path of the package."""
    constants = string_constants(tree)
    found, seen = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            text = leading_text(node.args[0], constants) if function in IMPORT_FUNCTIONS else None
            module = module_of(*text) if text else None
            if module:
                found.append((module, ast.unparse(node)))
                seen.update(id(part) for part in ast.walk(node.args[0]))
    skip = docstrings(tree) | seen
    for node in ast.walk(tree):  # parents before children
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.fullmatch(node.value):
            if (module := module_of(node.value, True)) != "goldstone":
                found.append((module, repr(node.value)))
        elif isinstance(node, ast.JoinedStr):
            text = leading_text(node, constants)
            if text and (MODULE_PATH.fullmatch(text[0]) if text[1] else PACKAGE_PREFIX.fullmatch(text[0])):
                if (module := module_of(*text)) != "goldstone":
                    found.append((module, ast.unparse(node)))
            skip.update(id(part) for part in ast.walk(node))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path):
    module = module_name(path)
    own = layer(module)
    tree = ast.parse(path.read_text())
    statements = [name for node in ast.walk(tree) for name in static_imports(node, module, path.name == "__init__.py")]
    upward = [name for name in statements if name != "goldstone" and layer(name) > own]
    strings = [f"{text} ({name})" for name, text in string_imports(tree) if name != "goldstone" and layer(name) > own]
    assert not upward and not strings, (f"{module} (layer {own}) imports from a higher layer: {upward + strings}")


# -------------------------------------------------------------------- the detector itself

STRING_IMPORTS = '''
"""Docstring naming goldstone.lab.demo, which is no import."""
import importlib
from importlib import import_module

PACKAGE = "goldstone.experiments"
HOMES = {"run": "goldstone.api", "Result": "goldstone.core.result"}

def load(name):
    """goldstone.api"""
    importlib.import_module("goldstone.analysis.onsets")
    import_module(f"goldstone.experiments.{name}")
    importlib.import_module(f"{PACKAGE}.{name}")
    __import__("goldstone.observables" + "." + name)
    importlib.import_module("numpy")
    run_in_workers([], 1, "goldstone.lab.sweep:run_point")
    print(f"goldstone.core is {name}", "goldstone core")
'''


def test_string_imports_are_found():
    """Every form of the module docstring's list, and no docstring, message or other package."""
    found = string_imports(ast.parse(STRING_IMPORTS))
    assert sorted(name for name, _ in found) == sorted([
        "goldstone.analysis.onsets", "goldstone.experiments", "goldstone.experiments", "goldstone.observables",
        "goldstone.experiments", "goldstone.api", "goldstone.core.result", "goldstone.lab.sweep"])
    assert "import_module(f'goldstone.experiments.{name}')" in {text for _, text in found}


def test_relative_imports_are_resolved():
    node = ast.parse("from ..core import errors\nfrom . import onsets").body
    assert static_imports(node[0], "goldstone.analysis.vortices", False) == ["goldstone.core.errors"]
    assert static_imports(node[1], "goldstone.analysis", True) == ["goldstone.analysis.onsets"]


# ----------------------------------------------------------------------- import cycles


def executed_at_import(tree: ast.Module, functions: bool = False):
    """The nodes run when the module is imported: everything but function bodies (their decorators
    and defaults do run; with `functions`, their bodies too) and `if TYPE_CHECKING:` blocks."""
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not functions:
            children = [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        elif isinstance(node, ast.Lambda) and not functions:
            children = [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            children = node.orelse
        else:
            children = list(ast.iter_child_nodes(node))
        stack.extend(reversed(children))


def module_level_imports(path: Path, functions: bool = False) -> set[str]:
    """The goldstone modules `path` imports while it is itself being imported (with `functions`,
    also those its functions import when called)."""
    tree = ast.parse(path.read_text())
    module, constants = module_name(path), string_constants(tree)
    names = set()
    for node in executed_at_import(tree, functions):
        names.update(static_imports(node, module, path.name == "__init__.py"))
        if isinstance(node, ast.Call) and node.args:
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            text = leading_text(node.args[0], constants) if function in IMPORT_FUNCTIONS else None
            if text and (name := module_of(*text)):
                names.add(name)
    return {name for name in names if name in NAMES and name != module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) through every strongly connected component of more than one module
    (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    found = []
    for component in components:
        start = min(component)
        paths = {start: [start]}
        queue = [start]
        while queue:  # shortest way round from `start` back to itself, inside the component
            node = queue.pop(0)
            for child in sorted(graph[node] & component):
                if child == start:
                    found.append(paths[node] + [start])
                    queue = []
                    break
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    queue.append(child)
    return sorted(found)


def test_cycle_finder():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}, "g": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_module_level_imports_leave_out_function_bodies_and_type_checking():
    source = ('from typing import TYPE_CHECKING\nimport goldstone.core.errors\n'
              'if TYPE_CHECKING:\n    from goldstone.lab.views import Run\nelse:\n    from goldstone.core import atomic\n'
              'def f(x=__import__("goldstone.core.config")):\n    from goldstone.lab.report import write_report\n'
              'class C:\n    from goldstone.core.result import Result\n')
    tree = ast.parse(source)
    names = set()
    for node in executed_at_import(tree):
        names.update(static_imports(node, "goldstone.core._layering_probe", False))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add(module_of(*leading_text(node.args[0], {})))
    assert names == {"goldstone.core.errors", "goldstone.core.atomic", "goldstone.core.config",
                     "goldstone.core.result"}


@pytest.mark.parametrize("functions", [False, True], ids=["module level", "inside functions too"])
def test_no_import_cycles(functions):
    """The graph of imports between the package's modules is acyclic: those run when a module is
    imported, and also counting the imports inside functions (a deferred import is still a circle)."""
    graph = {module_name(path): module_level_imports(path, functions) for path in MODULES}
    found = cycles(graph)
    described = "; ".join(" -> ".join(cycle) for cycle in found)
    assert not found, f"import cycles: {described}"


def test_every_experiment_module_is_installed_as_an_entry_point():
    """The registry finds experiments through the entry points of pyproject.toml; a module there
    without its entry point would be invisible to `goldstone list` and `goldstone run`."""
    import tomllib

    declared = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]["entry-points"]
    modules = {p.stem for p in (PACKAGE / "experiments").glob("*.py") if p.stem != "__init__"}
    assert declared["goldstone_experiments"] == {name: f"goldstone.experiments.{name}" for name in sorted(modules)}


@pytest.mark.parametrize("path", sorted((PACKAGE / "experiments").glob("[!_]*.py")), ids=lambda p: p.stem)
def test_no_experiment_imports_another(path):
    """What two experiments share lives in a lower layer (models, data, training, analysis)."""
    others = {name for name in module_level_imports(path, functions=True) if name.startswith("goldstone.experiments.")}
    assert not others, f"{path.stem} imports {sorted(others)}"

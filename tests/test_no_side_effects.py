"""The library leaves its caller's matplotlib alone: no backend is set and pyplot is never imported,
neither at import nor while a run draws its figures and writes its report."""

import subprocess
import sys


def python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_every_module_keeps_the_backend():
    code = """
import importlib, pkgutil, sys, matplotlib
matplotlib.use("pdf")
import goldstone
for info in pkgutil.walk_packages(goldstone.__path__, "goldstone."):
    if info.name != "goldstone.__main__":  # it runs the command line
        importlib.import_module(info.name)
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    assert python(code) == "pdf False"


def test_a_run_and_its_report_keep_the_backend(tmp_path, tiny_overrides):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import goldstone
goldstone.run("deep_mlp", out={str(tmp_path / "run")!r}, **{tiny_overrides!r}).report()
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""
    assert python(code) == "svg False"
    assert (tmp_path / "run" / "figures" / "training.png").exists()

"""Labels and critical values are declared with the params; runs store how they are presented, so
reports read their folders alone and never import an experiment."""

import html
import json
import subprocess
import sys

import pytest

import goldstone
from goldstone.lab.registry import get_experiment
from goldstone.lab.views import CONFIG
from goldstone.theory import SIGMA_W_CRITICAL


def test_labels_and_critical_values_come_from_the_params():
    deep = get_experiment("deep_mlp")
    assert deep.labels["sigma_w"] == "weight scale σ_W" and deep.labels["width"] == "width N (real features)"
    assert deep.labels["group=ok"] == "O({k})" and "final_test_accuracy" in deep.labels
    for name in ("deep_mlp", "copy_task", "seq_pixels"):
        assert get_experiment(name).critical == {"sigma_w": SIGMA_W_CRITICAL}
    assert get_experiment("copy_task").labels["width"] == "hidden width N"  # its own declaration of the key


def report_in_a_fresh_process(folder) -> str:
    """The report's text, written by a process that reads the folder back with `goldstone.load` and
    imports no experiment before or while writing it."""
    code = (f"import sys, goldstone; goldstone.load({str(folder)!r}).report(); "
            "print([m for m in sys.modules if m.startswith('goldstone.experiments')])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    return html.unescape((folder / "report.html").read_text())


def test_run_and_sweep_reports_import_no_experiment(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "run", **tiny_overrides)
    assert run.presentation.labels["sigma_w"] == "weight scale σ_W"
    assert "final test accuracy" in report_in_a_fresh_process(run.folder)
    sweep = goldstone.sweep("deep_mlp", {"sigma_w": [0.5, 1.5]}, out=tmp_path / "sweep", **tiny_overrides)
    assert set(sweep.theory.columns) == {"name", "x", "y"} and len(sweep.theory) == 200
    assert ("final test accuracy (1 seed) against weight scale σ_W; dashed: the theory's critical weight scale "
            "σ_W = 1; black: mean-field order parameter c* (right axis)") in report_in_a_fresh_process(sweep.folder)


def test_a_run_stored_without_its_presentation_still_renders(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "run", **tiny_overrides)
    stored = json.loads((run.folder / CONFIG).read_text())
    del stored["presentation"]
    (run.folder / CONFIG).write_text(json.dumps(stored))
    text = report_in_a_fresh_process(run.folder)
    assert "final test accuracy" in text and "<td>generic_scale</td>" in text  # plain names, every key


def test_load_reads_a_run_or_a_sweep_back_and_names_a_folder_holding_neither(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "run", **tiny_overrides)
    again = goldstone.load(run.folder)
    assert type(again) is type(run) and again.config == run.config and again.metrics.equals(run.metrics)
    sweep = goldstone.sweep("deep_mlp", {"sigma_w": [0.5, 1.5]}, out=tmp_path / "sweep", **tiny_overrides)
    again = goldstone.load(str(sweep.folder))
    assert type(again) is type(sweep) and again.summary.equals(sweep.summary) and again.finished() == 2
    with pytest.raises(goldstone.GoldstoneError, match=f"{tmp_path} holds neither a run"):
        goldstone.load(tmp_path)
    (run.folder / "metrics.parquet").unlink()  # as a run that has started and not logged yet
    assert goldstone.load(run.folder).metrics.empty
    with pytest.raises(goldstone.GoldstoneError, match="absent: no such folder"):
        goldstone.load(tmp_path / "absent")

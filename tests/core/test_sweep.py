import json
import subprocess
import sys

import pandas as pd
import pytest

import goldstone
from goldstone.core import extras
from goldstone.core.errors import ConfigError, GoldstoneError, RunFolderError
from goldstone.lab.sweep import _share_done, parse_grid, run_order

GRID = {"group": ["ok", "generic"], "sigma_w": [0.8, 1.5]}


def test_parse_grid_lists_and_ranges():
    grid = parse_grid(["depth=10,20", "sigma_w=0.5:1.5:3"])
    assert grid == {"depth": ["10", "20"], "sigma_w": ["0.5", "1", "1.5"]}
    with pytest.raises(ConfigError, match="expected key=v1,v2"):
        parse_grid(["depth"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["depth=1", "depth=2"])


def test_bad_point_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="key 'depth' expects int, got 'x'"):
        goldstone.sweep("deep_mlp", {"depth": ["2", "x"]}, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_local_sweep_gathers_a_tidy_table_and_resumes(tmp_path, tiny_overrides):
    sweep = goldstone.sweep("deep_mlp", GRID, out=tmp_path / "s", seeds=2, workers=2, **tiny_overrides)
    results, summary = sweep.results, sweep.summary
    assert {"group", "sigma_w", "seed", "step", "observable", "metric", "value"} <= set(results.columns)
    assert len(results.groupby(["group", "sigma_w", "seed"])) == 8
    assert set(summary.metric) >= {"final_test_accuracy"}
    # the same point run alone gives the same numbers (one torch thread either way)
    alone = goldstone.run("deep_mlp", out=tmp_path / "alone", seed=1, group="generic", sigma_w=1.5, **tiny_overrides)
    point = results[(results.group == "generic") & (results.sigma_w == 1.5) & (results.seed == 1)]
    assert point.value.tolist() == alone.metrics.value.tolist()  # bitwise
    # resume: delete one point's completion marker and its later checkpoints; only it reruns
    folders = sorted((sweep.folder / "points").iterdir())
    (folders[0] / "DONE").unlink()
    stamps = {f: (f / "DONE").stat().st_mtime_ns for f in folders[1:]}
    again = goldstone.sweep("deep_mlp", GRID, out=tmp_path / "s", seeds=2, workers=1, **tiny_overrides)
    assert all((f / "DONE").stat().st_mtime_ns == t for f, t in stamps.items())
    pd.testing.assert_frame_equal(again.results, results, check_exact=True)
    report = again.report()
    assert "phase_diagram" in report.read_text()


def test_different_sweep_in_folder_is_refused(tmp_path, tiny_overrides):
    goldstone.sweep("deep_mlp", {"sigma_w": [1.5]}, out=tmp_path / "s", **tiny_overrides)
    with pytest.raises(RunFolderError, match="holds a different sweep.*grid"):
        goldstone.sweep("deep_mlp", {"sigma_w": [2.0]}, out=tmp_path / "s", **tiny_overrides)


def test_more_seeds_extend_a_finished_sweep_and_fewer_are_refused(tmp_path, tiny_overrides):
    """Point folders are numbered in seed-major order, so a second seed renumbers them: the finished
    ones are moved to their new names, not run again, and the folder holds exactly the new points."""
    grid = {"sigma_w": [0.5, 1.5]}
    first = goldstone.sweep("deep_mlp", grid, out=tmp_path / "s", seeds=1, **tiny_overrides)
    stamps = {p.name.split("-", 1)[1]: (p / "DONE").stat().st_mtime_ns for p in (first.folder / "points").iterdir()}
    before = first.results  # read now: the property reads the folder
    more = goldstone.sweep("deep_mlp", grid, out=tmp_path / "s", seeds=2, **tiny_overrides)
    folders = sorted(p.name for p in (more.folder / "points").iterdir())
    assert folders == sorted(path.name for _, path in more.point_folders()) and len(folders) == 4
    kept = {p.name.split("-", 1)[1]: (p / "DONE").stat().st_mtime_ns for p in (more.folder / "points").iterdir()
            if p.name.endswith("seed0")}
    assert kept == stamps  # not run again
    assert sorted(more.results.seed.unique()) == [0, 1]
    pd.testing.assert_frame_equal(more.results[more.results.seed == 0].reset_index(drop=True),
                                  before.reset_index(drop=True), check_exact=True)
    with pytest.raises(RunFolderError, match="differs in: seeds"):
        goldstone.sweep("deep_mlp", grid, out=tmp_path / "s", seeds=1, **tiny_overrides)


def test_more_seeds_extend_the_default_folder_and_finish_a_rename_cut_short(tmp_path, tiny_overrides, monkeypatch):
    """Without --out the same command with more seeds finds the same folder; a point folder left
    under any index by an extension killed half-way is found by the rest of its name."""
    monkeypatch.chdir(tmp_path)
    grid = {"sigma_w": [0.5, 1.5]}
    first = goldstone.sweep("deep_mlp", grid, seeds=1, **tiny_overrides)
    moved = sorted((first.folder / "points").iterdir())[1]
    stamp = (moved / "DONE").stat().st_mtime_ns
    moved.rename(moved.with_name("p0099-" + moved.name.split("-", 1)[1]))  # as a killed extension may leave it
    more = goldstone.sweep("deep_mlp", grid, seeds=3, **tiny_overrides)
    assert more.folder == first.folder and len(list((more.folder / "points").iterdir())) == 6
    assert (more.folder / "points" / "p0003-sigma_w=1.5-seed0" / "DONE").stat().st_mtime_ns == stamp


def test_ray_backend_without_ray_names_the_extra(tmp_path, tiny_overrides, monkeypatch):
    monkeypatch.setitem(extras.EXTRAS, "ray", ("ray_is_not_installed_here",))
    with pytest.raises(GoldstoneError, match=r"^--backend ray needs ray_is_not_installed_here \(the 'ray' extra\): "
                                             r"pip install .*\[ray\]"):
        goldstone.sweep("deep_mlp", {"sigma_w": [1.5]}, out=tmp_path / "s", backend="ray", **tiny_overrides)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_ray_backend_on_a_real_local_cluster(tmp_path, tiny_overrides):
    pytest.importorskip("ray")
    ray_sweep = goldstone.sweep("deep_mlp", GRID, out=tmp_path / "ray", workers=2, backend="ray", **tiny_overrides)
    local = goldstone.sweep("deep_mlp", GRID, out=tmp_path / "local", workers=1, **tiny_overrides)
    pd.testing.assert_frame_equal(ray_sweep.results, local.results, check_exact=True)


SCRIPT = """
import goldstone
from goldstone.core import extras
print("script body runs")
sweep = goldstone.sweep("deep_mlp", {{"sigma_w": [0.8, 1.5]}}, out="s", workers=2, **{tiny!r})
print("points finished:", sweep.summary.groupby("sigma_w").ngroups)
"""


def test_sweep_with_workers_from_a_plain_script_without_main_guard(tmp_path, tiny_overrides):
    (tmp_path / "script.py").write_text(SCRIPT.format(tiny=tiny_overrides))
    done = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script body runs") == 1 and "points finished: 2" in done.stdout


def test_progress_is_logged_in_plain_lines_when_output_is_not_a_terminal(tmp_path, tiny_overrides):
    grid = ["--grid", "sigma_w=0.8,1.5", "--workers", "2"]
    sets = [arg for key, value in tiny_overrides.items() for arg in ("--set", f"{key}={value}")]
    done = subprocess.run([sys.executable, "-m", "goldstone", "sweep", "deep_mlp", *grid, *sets, "--out", "s"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.endswith("sweep deep_mlp: 2 of 2 points to run on 2 workers: 0/2 points") for line in lines)
    assert any(" sweep deep_mlp: 2 of 2 points to run on 2 workers: 2/2 points in " in line for line in lines)
    assert "0/0" not in done.stderr
    run = subprocess.run([sys.executable, "-m", "goldstone", "run", "deep_mlp", *sets, "--out", "r"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert "deep_mlp: training: 0/24 steps" in run.stderr and "deep_mlp: training: 24/24 steps in" in run.stderr
    assert json.loads((tmp_path / "r" / "progress.json").read_text()) == {"stage": "deep_mlp: training",
                                                                         "done": 24, "total": 24}


def test_share_done_of_a_point_reads_its_progress_file(tmp_path):
    assert _share_done(tmp_path) == 0.0
    (tmp_path / "progress.json").write_text('{"stage": "x", "done": 6, "total": 24}')
    assert _share_done(tmp_path) == 0.25
    (tmp_path / "progress.json").write_text("{broken")
    assert _share_done(tmp_path) == 0.0


def test_report_of_an_unfinished_sweep_gathers_the_finished_points(tmp_path, tiny_overrides):
    """A sweep killed (or still running) before its end: `goldstone report` gathers what finished and
    says how many; while another process holds the folder it gathers nothing and says so."""
    from typer.testing import CliRunner

    from goldstone.cli import app
    from goldstone.lab.lock import folder_lock

    sweep = goldstone.sweep("deep_mlp", {"sigma_w": [0.5, 1.5]}, out=tmp_path / "s", **tiny_overrides)
    unfinished = sorted((sweep.folder / "points").iterdir())[1]
    (unfinished / "DONE").unlink()
    for name in ("results.parquet", "summary.parquet"):
        (sweep.folder / name).unlink()
    done = CliRunner().invoke(app, ["report", str(sweep.folder)])
    assert done.exit_code == 0, done.output
    assert "1 of 2 points finished" in (sweep.folder / "report.html").read_text()
    assert sorted(sweep.summary.sigma_w.unique()) == [0.5]
    with folder_lock(sweep.folder):
        held = CliRunner().invoke(app, ["report", str(sweep.folder)])
    assert held.exit_code == 0 and "being written by a running sweep" in held.output


def test_points_run_seed_by_seed_after_those_already_started(tmp_path):
    """Seed 0 of every grid point before any seed 1 (an interrupted sweep holds whole comparisons),
    and a point a killed sweep had started before all of them."""
    from goldstone.lab.views import CONFIG, SweepSpec, point_id

    spec = SweepSpec("deep_mlp", {"group": ["ok", "generic"], "sigma_w": [0.8, 1.5]}, seeds=2)
    points = [(p, tmp_path / point_id(i, p)) for i, p in enumerate(spec.points())]
    order = [(p["seed"], p["values"]["group"], p["values"]["sigma_w"]) for p, _ in run_order(points)]
    assert order == [(0, "ok", 0.8), (0, "ok", 1.5), (0, "generic", 0.8), (0, "generic", 1.5),
                     (1, "ok", 0.8), (1, "ok", 1.5), (1, "generic", 0.8), (1, "generic", 1.5)]
    started = points[5][1]  # seed 1 of (generic, 0.8)
    started.mkdir()
    (started / CONFIG).write_text("{}")
    assert run_order(points)[0][1] == started and [p for p, _ in run_order(points)[1:5]] == \
        [p for p, _ in points if p["seed"] == 0]


@pytest.mark.parametrize("grid, message", [
    ({"sigma_w": 1.2}, "grid key 'sigma_w' takes a list of values, got 1.2 \\(give \\[1.2\\], or sigma_w=1.2 as a fixed"),
    ({"group": "ok"}, "grid key 'group' takes a list of values, got 'ok'"),
    ([("sigma_w", [1.2])], "the grid is a dict of key -> list of values, got list"),
])
def test_a_grid_that_is_not_lists_of_values_is_one_error(tmp_path, grid, message):
    with pytest.raises(ConfigError, match=message):
        goldstone.sweep("deep_mlp", grid, out=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_a_seed_that_is_not_a_whole_number_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match="--seed must be a whole number from 0 to 2\\*\\*32 - 1, got 'a'"):
        goldstone.run("deep_mlp", out=tmp_path / "r", seed="a")
    assert not (tmp_path / "r").exists()

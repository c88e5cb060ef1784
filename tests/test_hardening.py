"""Bad input and hostile paths: one line, exit code 2, nothing overwritten or left behind."""

import pytest
from typer.testing import CliRunner

from goldstone.cli import app

runner = CliRunner()
TINY = ["--set", "depth=3", "--set", "width=8", "--set", "steps=8", "--set", "eval_every=4",
        "--set", "observe_every=4", "--set", "checkpoint_every=4", "--set", "probe_size=2"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def one_line_exit_2(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@pytest.fixture
def run_folder(tmp_path):
    folder = tmp_path / "r"
    assert invoke("run", "deep_mlp", *TINY, "--out", str(folder), "--quiet").exit_code == 0
    return folder


def test_uas_never_overwrites_a_file_it_did_not_write(tmp_path):
    treebank = tmp_path / "dev.conllu"
    treebank.write_text("precious\n")
    for out, message in ((treebank, "expected a .parquet file name"), (tmp_path, "expected a .parquet file name")):
        one_line_exit_2(invoke("uas", "--model", str(tmp_path), "--treebank", str(treebank), "--out", str(out)), message)
    foreign = tmp_path / "table.parquet"
    foreign.write_text("not ours")
    one_line_exit_2(invoke("uas", "--model", str(tmp_path), "--treebank", str(treebank), "--out", str(foreign)),
                    "exists and was not written by this command; refusing to replace it (pass --force")
    folder = tmp_path / "looks.parquet"
    folder.mkdir()
    one_line_exit_2(invoke("uas", "--model", str(tmp_path), "--treebank", str(treebank), "--out", str(folder)),
                    "is a folder")
    assert treebank.read_text() == "precious\n" and foreign.read_text() == "not ours"


def test_report_never_overwrites_a_runs_files(run_folder, tmp_path):
    config = (run_folder / "config.json").read_text()
    one_line_exit_2(invoke("report", str(run_folder), "--out", str(run_folder / "config.json")),
                    "expected a .html file name")
    assert (run_folder / "config.json").read_text() == config
    foreign = tmp_path / "notes.html"
    foreign.write_text("<p>my notes</p>")
    one_line_exit_2(invoke("report", str(run_folder), "--out", str(foreign)), "was not written by this command")
    assert foreign.read_text() == "<p>my notes</p>"
    assert invoke("report", str(run_folder)).exit_code == 0  # its own report.html is replaced
    assert invoke("report", str(run_folder), "--out", str(foreign), "--force").exit_code == 0


def test_demo_refuses_a_folder_that_holds_something_else(tmp_path):
    (tmp_path / "thesis.tex").write_text("do not touch")
    one_line_exit_2(invoke("demo", "--out", str(tmp_path), "--quiet"), "holds no goldstone demo; refusing")
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_seed_out_of_range_leaves_nothing(tmp_path, seed):
    one_line_exit_2(invoke("run", "deep_mlp", "--seed", seed, "--out", str(tmp_path / "o")),
                    "--seed must be from 0 to 2**32 - 1")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text", ["[/x]", "[bold]k", ":b:"])
def test_error_text_is_printed_literally(tmp_path, text):
    result = invoke("run", "deep_mlp", "--set", f"{text}=1", "--out", str(tmp_path / "o"))
    one_line_exit_2(result, f"unknown key {text!r}")


@pytest.mark.parametrize("grid,message", [("sigma_w=,,", "no values"), ("sigma_w=inf:1:2", "must be finite")])
def test_grids_without_points_or_with_infinities(tmp_path, grid, message):
    one_line_exit_2(invoke("sweep", "deep_mlp", "--grid", grid, "--out", str(tmp_path / "s")), message)
    assert not (tmp_path / "s").exists()


def test_resume_cleans_what_a_killed_checkpoint_write_left_behind(run_folder):
    metrics = (run_folder / "metrics.parquet").read_bytes()
    (run_folder / "DONE").unlink()
    (run_folder / "checkpoints" / ".step_00000099.abc123.tmp").mkdir()
    (run_folder / ".metrics.parquet.xyz.tmp").write_text("half")
    assert invoke("run", "deep_mlp", "--out", str(run_folder), "--resume", "--quiet").exit_code == 0
    assert not list(run_folder.rglob(".*.tmp"))
    assert (run_folder / "metrics.parquet").read_bytes() == metrics

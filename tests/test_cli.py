"""The command line, in process (typer's CliRunner): exit codes and one-line errors."""

import pytest
from typer.testing import CliRunner

from goldstone.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_list_shows_experiments_and_observables():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("deep_mlp", "order_parameter", "protected_jacobian", "order_parameter"):
        assert name in result.output


TINY = ["--set", "depth=3", "--set", "width=8", "--set", "steps=8", "--set", "eval_every=4",
        "--set", "observe_every=4", "--set", "checkpoint_every=4", "--set", "probe_size=2"]


def test_run_prints_report_path(tmp_path):
    result = invoke("run", "deep_mlp", *TINY, "--out", str(tmp_path / "r"), "--quiet")
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and (tmp_path / "r" / "report.html").exists()
    again = invoke("report", str(tmp_path / "r"))
    assert again.exit_code == 0


@pytest.mark.parametrize("args,message", [
    (["run", "nope"], "unknown experiment 'nope'"),
    (["run", "deep_mlp", "--set", "dpth=3"], "unknown key 'dpth'"),
    (["run", "deep_mlp", "--set", "depth=abc"], "key 'depth' expects int, got 'abc'"),
    (["run", "deep_mlp", "--set", "sigma_w=0"], "key 'sigma_w' must be > 0"),
    (["run", "deep_mlp", "--set", "width=30", "--set", "k=4"], "not divisible"),
    (["run", "deep_mlp", "--set", "dataset=mnist"], "needs key 'data_dir'"),
    (["run", "deep_mlp", "--device", "cuda"], "cuda"),
    (["sweep", "deep_mlp", "--grid", "depth"], "expected key=v1,v2"),
    (["sweep", "deep_mlp", "--grid", "depth=2", "--workers", "0"], "--workers must be >= 1"),
    (["sweep", "deep_mlp", "--grid", "depth=2", "--backend", "slurm"], "--backend must be local or ray"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    if "--device" in args:
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    result = invoke(*args, "--out", str(tmp_path / "o"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_config_file_syntax_error(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("depth = = 3\n")
    result = invoke("run", "deep_mlp", "--config", str(bad), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "c.toml: TOML syntax error" in result.output and "line 1" in result.output


def test_resume_on_empty_folder_and_report_on_nothing(tmp_path):
    result = invoke("run", "deep_mlp", "--resume", "--out", str(tmp_path / "none"))
    assert result.exit_code == 2 and "holds no run to resume" in result.output
    result = invoke("report", str(tmp_path))
    assert result.exit_code == 2 and "neither a run" in result.output


def test_idx_dataset_that_is_not_idx(tmp_path):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(b"not an idx file at all")
    result = invoke("run", "deep_mlp", "--set", "dataset=fashion_mnist", "--set", f"data_dir={tmp_path}",
                    "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "train-images-idx3-ubyte: not an IDX file" in result.output

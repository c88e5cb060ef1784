import shutil

import pandas as pd
import pytest

import goldstone
from goldstone.testing.kill_resume import check_run, check_sweep
from goldstone.core.errors import ConfigError, RunFolderError


def test_same_seed_gives_identical_metrics(tmp_path, tiny_overrides):
    a = goldstone.run("deep_mlp", out=tmp_path / "a", **tiny_overrides)
    b = goldstone.run("deep_mlp", out=tmp_path / "b", **tiny_overrides)
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)
    c = goldstone.run("deep_mlp", out=tmp_path / "c", seed=1, **tiny_overrides)
    assert not a.metrics.value.equals(c.metrics.value)


def test_run_folder_contents(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "r", **tiny_overrides)
    files = {p.relative_to(run.folder).as_posix() for p in run.folder.rglob("*") if p.is_file()}
    assert {"config.json", "metrics.parquet", "manifest.json", "DONE", "figures/training.png",
            "figures/training.svg", "arrays/jacobian_spectrum.safetensors"} <= files
    assert any(f.startswith("checkpoints/step_00000024/") for f in files)
    assert run.config["depth"] == 4 and run.config["group"] == "ok" and "seed" not in run.config
    assert run.seed == 0 and run.experiment == "deep_mlp" and "torch" in run.versions
    assert not [f for f in files if f.endswith(".tmp")]
    assert {"step", "observable", "metric", "layer", "value"} <= set(run.metrics.columns)
    assert "singular_values" in run.arrays["jacobian_spectrum"]


def test_resume_from_checkpoint_is_bitwise_identical(tmp_path, tiny_overrides):
    full = goldstone.run("deep_mlp", out=tmp_path / "full", **tiny_overrides)
    # roll the finished run back to its step-8 checkpoint, as if it had been killed there
    mid = goldstone.run("deep_mlp", out=tmp_path / "mid", **{**tiny_overrides, "keep_checkpoints": 0})
    for name in ("DONE", "manifest.json", "metrics.parquet"):
        (mid.folder / name).unlink()
    for later in ("step_00000016", "step_00000024"):
        shutil.rmtree(mid.folder / "checkpoints" / later)
    resumed = goldstone.run("deep_mlp", out=mid.folder, resume=True, **{**tiny_overrides, "keep_checkpoints": 0})
    pd.testing.assert_frame_equal(resumed.metrics, full.metrics, check_exact=True)


def test_finished_run_is_returned_not_recomputed(tmp_path, tiny_overrides):
    run = goldstone.run("deep_mlp", out=tmp_path / "r", **tiny_overrides)
    stamp = (run.folder / "DONE").stat().st_mtime_ns
    again = goldstone.run("deep_mlp", out=tmp_path / "r", **tiny_overrides)
    assert (again.folder / "DONE").stat().st_mtime_ns == stamp


def test_folder_with_a_different_run_is_refused(tmp_path, tiny_overrides):
    goldstone.run("deep_mlp", out=tmp_path / "r", **tiny_overrides)
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    with pytest.raises(RunFolderError, match=r"holds a different run.*depth: 4 -> 5"):
        goldstone.run("deep_mlp", out=tmp_path / "r", **{**tiny_overrides, "depth": 5})
    with pytest.raises(RunFolderError, match=r"resume with another config.*seed: 0 -> 3"):
        goldstone.run("deep_mlp", out=tmp_path / "r", seed=3, resume=True, **tiny_overrides)
    assert before == {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}


def test_resume_without_a_run_is_refused(tmp_path):
    with pytest.raises(RunFolderError, match="holds no run to resume"):
        goldstone.run("deep_mlp", out=tmp_path / "nothing", resume=True)


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not empty and holds no goldstone run"):
        goldstone.run("deep_mlp", out=tmp_path / "x")
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"


def test_bad_config_writes_nothing(tmp_path):
    with pytest.raises(ConfigError):
        goldstone.run("deep_mlp", out=tmp_path / "r", depth="abc")
    with pytest.raises(ConfigError, match="unknown experiment 'deep_mpl'.*deep_mlp"):
        goldstone.run("deep_mpl", out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_named_and_folder_kept(tmp_path, tiny_overrides, damage):
    run = goldstone.run("deep_mlp", out=tmp_path / "r", **tiny_overrides)
    (run.folder / "DONE").unlink()
    state = run.folder / "checkpoints" / "step_00000024" / "state.safetensors"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00" * 64)
    before = sorted(p.name for p in run.folder.rglob("*"))
    with pytest.raises(RunFolderError, match=r"step_00000024/state\.safetensors does not match its checksum"):
        goldstone.run("deep_mlp", out=run.folder, resume=True, **tiny_overrides)
    assert sorted(p.name for p in run.folder.rglob("*")) == before
    (state.parent / "checksums.json").unlink()  # a checkpoint from before checksums: the reader still names it
    with pytest.raises(RunFolderError, match=r"step_00000024/state\.safetensors is corrupt or truncated"):
        goldstone.run("deep_mlp", out=run.folder, resume=True, **tiny_overrides)


@pytest.mark.slow
def test_sigkill_and_resume_gives_identical_metrics(tmp_path):
    assert check_run(kills=3, seed=1, tmp=tmp_path) >= 1


@pytest.mark.slow
def test_sigkill_a_sweep_and_resume_gives_identical_results(tmp_path):
    assert check_sweep(kills=2, seed=2, tmp=tmp_path) >= 1

"""Bad input and hostile paths: one line, exit code 2, nothing overwritten or left behind."""

import pytest
from typer.testing import CliRunner

from goldstone.cli import app
from goldstone.lab.lock import claimed_folder

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


def test_a_finished_run_asked_for_again_says_it_is_complete(run_folder):
    metrics = (run_folder / "metrics.parquet").read_bytes()
    result = invoke("run", "deep_mlp", *TINY, "--out", str(run_folder))
    assert result.exit_code == 0
    assert "already holds this run, complete: nothing was run again" in " ".join(result.output.split())
    assert (run_folder / "metrics.parquet").read_bytes() == metrics


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
                    "--seed must be a whole number from 0 to 2**32 - 1")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text", ["[/x]", "[bold]k", ":b:"])
def test_error_text_is_printed_literally(tmp_path, text):
    result = invoke("run", "deep_mlp", "--set", f"{text}=1", "--out", str(tmp_path / "o"))
    one_line_exit_2(result, f"unknown key {text!r}")


@pytest.mark.parametrize("grid,message", [("sigma_w=,,", "no values"), ("sigma_w=inf:1:2", "must be finite"),
                                          ("sigma_w=0.5:2", "a range is start:stop:num (num values, both ends "
                                           "included), e.g. sigma_w=0.5:2:5")])
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


def test_a_run_killed_while_writing_its_first_file_can_be_started_again(tmp_path):
    """SIGKILL during the first write leaves the lock file and a temporary; the same command then starts
    cleanly (the temporaries of a folder goldstone held are its own), and a user's own folder keeps its
    dot-files ending in .tmp because goldstone never held it."""
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / ".goldstone.lock").write_text("12345")
    (folder / ".config.json.k3j2.tmp").write_text('{"half')
    assert invoke("run", "deep_mlp", *TINY, "--out", str(folder), "--quiet").exit_code == 0
    assert not list(folder.rglob(".*.tmp"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".notes.tmp").write_text("keep me")
    one_line_exit_2(invoke("run", "deep_mlp", *TINY, "--out", str(mine), "--quiet"), "is not empty")
    assert (mine / ".notes.tmp").read_text() == "keep me"


def test_a_sweep_leaves_its_runs_temporaries_to_each_runs_own_claim(tmp_path):
    """A sweep folder's cleanup skips subfolders with a lock of their own: those are runs, cleaned (or
    being written) under their own lock."""
    sweep = tmp_path / "s"
    assert invoke("sweep", "deep_mlp", *TINY, "--grid", "width=4,8", "--out", str(sweep), "--quiet").exit_code == 0
    run = next(p for p in sweep.rglob("config.json") if p.parent != sweep).parent
    (sweep / ".sweep.json.ab.tmp").write_text("half")
    (run / ".metrics.parquet.cd.tmp").write_text("half")
    with claimed_folder(sweep):
        assert not (sweep / ".sweep.json.ab.tmp").exists()
        assert (run / ".metrics.parquet.cd.tmp").exists()


@pytest.mark.parametrize("content,message", [
    ("", "cannot be read as JSON"), ("[1, 2]", "is not a goldstone run's config"),
    ('{"experiment": "deep_mlp"', "cannot be read as JSON"), ('{"other": "tool"}', "is not a goldstone run's config"),
])
def test_out_folder_with_a_foreign_or_broken_config(tmp_path, content, message):
    folder = tmp_path / "o"
    folder.mkdir()
    (folder / "config.json").write_text(content)
    for args in (["run", "deep_mlp", "--out", str(folder)], ["run", "deep_mlp", "--out", str(folder), "--resume"],
                 ["report", str(folder)]):
        one_line_exit_2(invoke(*args), message)
    assert (folder / "config.json").read_text() == content and len(list(folder.iterdir())) == 1


def test_out_that_is_a_file_or_lies_under_one(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_exit_2(invoke("run", "deep_mlp", "--out", str(blocker)), "is a file, not a folder")
    one_line_exit_2(invoke("run", "deep_mlp", "--out", str(blocker / "sub")), "is a file, not a folder")
    assert blocker.read_text() == "x"


def test_corrupt_manifest_under_report(run_folder):
    (run_folder / "manifest.json").write_text("{broken")
    one_line_exit_2(invoke("report", str(run_folder)), "manifest.json: cannot be read as JSON")


@pytest.mark.parametrize("data,message", [
    (b"\xef\xbb\xbfdepth = 3\n", None), (b"depth = 3\nlr = \xff\n", "c.toml:2: not UTF-8 text"),
    (b"dataset = [1, 2]\n", "key 'dataset' expects str"), (b"dataset = 1979-05-27\n", "key 'dataset' expects str"),
    (b"[dataset]\nx = 1\n", "key 'dataset' expects str"),
])
def test_toml_files(tmp_path, data, message):
    (tmp_path / "c.toml").write_bytes(data)
    result = invoke("show", "deep_mlp") if message is None else None
    if message is None:  # a byte-order mark is fine
        from goldstone.core.config import read_toml
        assert read_toml(tmp_path / "c.toml") == {"depth": 3} and result.exit_code == 0
        return
    one_line_exit_2(invoke("run", "deep_mlp", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "o")),
                    message)
    assert not (tmp_path / "o").exists()


def test_a_changed_checkpoint_is_refused_not_resumed(tmp_path):
    folder = tmp_path / "r"
    assert invoke("run", "deep_mlp", *TINY, "--set", "keep_checkpoints=0", "--out", str(folder), "-q").exit_code == 0
    (folder / "DONE").unlink()
    first, last = sorted((folder / "checkpoints").glob("step_*"))[::len(list((folder / "checkpoints").iterdir())) - 1]
    state = last / "state.safetensors"
    original = state.read_bytes()
    state.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one flipped payload bit
    one_line_exit_2(invoke("run", "deep_mlp", "--out", str(folder), "--resume"), "does not match its checksum")
    state.write_bytes((first / "state.safetensors").read_bytes())  # a state from another step
    one_line_exit_2(invoke("run", "deep_mlp", "--out", str(folder), "--resume"), "does not match its checksum")
    assert not (folder / "DONE").exists()
    state.write_bytes(original)
    assert invoke("run", "deep_mlp", "--out", str(folder), "--resume", "-q").exit_code == 0


def test_files_and_folders_follow_the_umask(run_folder):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    files = [p for p in run_folder.rglob("*") if p.is_file()]
    folders = [p for p in run_folder.rglob("*") if p.is_dir()]
    assert files and folders
    assert {p.stat().st_mode & 0o777 for p in files} == {0o666 & ~mask}
    assert {p.stat().st_mode & 0o777 for p in folders} == {0o777 & ~mask}


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--batch-size", "-1"), ("--max-length", "-5"),
                                          ("--max-length", "1"), ("--max-sentences", "0")])
def test_uas_numbers_out_of_range(tmp_path, option, value):
    result = invoke("uas", "--model", str(tmp_path), "--treebank", str(tmp_path / "t.conllu"), option, value)
    assert result.exit_code == 2 and "Invalid value" in result.output and option in result.output
    assert "Traceback" not in result.output


def test_uas_with_a_truncated_model_file(tmp_path):
    pytest.importorskip("transformers")
    from goldstone.models.pretrained import minilm_path

    source = minilm_path()
    model = tmp_path / "model"
    model.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).exists():
            (model / name).write_bytes((source / name).read_bytes())
    (model / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes()[:1000])
    treebank = tmp_path / "t.conllu"
    treebank.write_text("1\ta\t_\tX\t_\t_\t0\troot\t_\t_\n")
    one_line_exit_2(invoke("uas", "--model", str(model), "--treebank", str(treebank), "--out",
                           str(tmp_path / "o.parquet"), "-q"), "cannot load the model in")
    assert not (tmp_path / "o.parquet").exists()


def test_a_second_process_on_a_busy_folder_is_told_who_holds_it(tmp_path):
    import os

    from goldstone.lab.lock import folder_lock

    folder = tmp_path / "r"
    with folder_lock(folder):  # as if another goldstone process were running there
        one_line_exit_2(invoke("run", "deep_mlp", *TINY, "--out", str(folder)), f"is in use by PID {os.getpid()}")
        one_line_exit_2(invoke("sweep", "deep_mlp", "--grid", "sigma_w=1", *TINY, "--out", str(folder)),
                        f"is in use by PID {os.getpid()}")
    assert invoke("run", "deep_mlp", *TINY, "--out", str(folder), "-q").exit_code == 0  # free again


@pytest.mark.slow
def test_quiet_silences_the_bars_transformers_draws(tmp_path):
    import subprocess
    import sys

    pytest.importorskip("transformers")
    from goldstone.models.pretrained import minilm_path

    treebank = tmp_path / "t.conllu"
    treebank.write_text("1\tdogs\t_\tNOUN\t_\t_\t2\tnsubj\t_\t_\n2\tbark\t_\tVERB\t_\t_\t0\troot\t_\t_\n")
    command = [sys.executable, "-m", "goldstone", "uas", "--model", str(minilm_path()), "--treebank", str(treebank),
               "--out", str(tmp_path / "u.parquet")]
    import os

    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ  # quiet runs earlier in this session put it back
    loud = subprocess.run(command, capture_output=True, text=True, timeout=300)
    quiet = subprocess.run(command + ["-q"], capture_output=True, text=True, timeout=300)
    assert loud.returncode == quiet.returncode == 0, quiet.stderr
    assert "Loading weights" in loud.stderr and "Loading weights" not in quiet.stderr


def test_nodes_inputs_that_used_to_end_in_tracebacks(tmp_path):
    from goldstone.core.errors import GoldstoneError
    from goldstone.data.text_tasks import read_labeled_text

    one_each = tmp_path / "one.jsonl"
    one_each.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    with pytest.raises(GoldstoneError, match="no label has two examples, so none is left to test on"):
        read_labeled_text(one_each).split(0.3, 0)
    wide = tmp_path / "wide.csv"
    wide.write_text("text,label," + "c" * 200_000 + "\nhello,x,1\nbye,y,2\n")
    assert read_labeled_text(wide).texts == ["hello", "bye"]
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"sentence": "a", "label": "x"}\n')
    with pytest.raises(GoldstoneError, match=r"keys\.jsonl:1: no key 'text' \(keys: 'sentence', 'label'\)"):
        read_labeled_text(keys)


@pytest.mark.parametrize("sets,message", [
    (["--set", "lr=1e308"], "key 'lr' must be <= 10"), (["--set", "sigma_w=1e-320"], "key 'sigma_w' must be >= 0.001"),
    (["--set", "probe_size=5000"], "key 'probe_size'=5000 is more than the 359 examples digits has"),
    (["--set", "batch_size=100000"], "key 'batch_size'=100000 is more than the 1438 examples digits has"),
])
def test_numbers_that_used_to_pass_or_crash(tmp_path, sets, message):
    values = dict(item.split("=") for item in TINY[1::2]) | dict(item.split("=") for item in sets[1::2])
    args = [part for key, value in values.items() for part in ("--set", f"{key}={value}")]
    one_line_exit_2(invoke("run", "deep_mlp", *args, "--out", str(tmp_path / "o")), message)


def test_read_only_output_folders(tmp_path, run_folder):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        one_line_exit_2(invoke("run", "deep_mlp", *TINY, "--out", str(locked / "r")), "is not writable")
        one_line_exit_2(invoke("report", str(run_folder), "--out", str(locked / "r.html")), "is not writable")
    finally:
        locked.chmod(0o755)


def test_uas_takes_minilm_and_a_mistyped_folder_never_reaches_for_the_network(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # a hub lookup would retry for a minute here
    treebank = tmp_path / "t.conllu"
    treebank.write_text("1\tdogs\t_\tNOUN\t_\t_\t2\tnsubj\t_\t_\n2\tbark\t_\tVERB\t_\t_\t0\troot\t_\t_\n\n")
    result = invoke("uas", "--model", str(tmp_path / "bert-bsae"), "--treebank", str(treebank), "-q")
    one_line_exit_2(result, f"--model: {tmp_path / 'bert-bsae'} is neither 'minilm', a Hugging Face model folder")
    assert "Retrying" not in result.output
    done = invoke("uas", "--model", "minilm", "--treebank", str(treebank), "--out", str(tmp_path / "u.parquet"), "-q")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "u.parquet").exists()


def test_entanglement_checks_the_figure_beside_its_table_before_any_work(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "fig.parquet"
    (tmp_path / "fig.png").write_bytes(b"a figure of mine")
    one_line_exit_2(invoke("entanglement", "minilm", "--out", str(out)),
                    f"--out {tmp_path / 'fig.png'} exists and was not written by this command")
    assert not out.exists() and (tmp_path / "fig.png").read_bytes() == b"a figure of mine"
    (tmp_path / "fig.png").unlink()
    (tmp_path / "fig.png").mkdir()
    one_line_exit_2(invoke("entanglement", "minilm", "--out", str(out)), f"--out {tmp_path / 'fig.png'} is a folder")
    assert not out.exists()
    (tmp_path / "fig.png").rmdir()
    assert invoke("entanglement", "minilm", "--out", str(out)).exit_code == 0
    assert invoke("entanglement", "minilm", "--out", str(out)).exit_code == 0  # its own figure is replaced


@pytest.mark.parametrize("config,weights,message", [
    ("{not json", None, "config.json: not a readable JSON config"),
    ("", None, "config.json: not a readable JSON config"),
    ("[1, 2]", None, "config.json: a config must be a JSON object, got list"),
    ({"model_type": "nonsense"}, None, "config.json: transformers cannot use this config"),
    ({"num_attention_heads": 0}, None, "config.json: num_attention_heads = 0; it must be a positive whole number"),
    ({"hidden_size": -32}, None, "config.json: hidden_size = -32; it must be a positive whole number"),
    ({"hidden_size": 48}, None, "config.json: hidden_size = 48 disagrees with the weights"),
    (None, b"", "model.safetensors: not a readable safetensors file"),
    (None, b"garbage" * 10, "model.safetensors: not a readable safetensors file"),
    (None, "truncated", "model.safetensors: not a readable safetensors file"),
])
@pytest.mark.parametrize("command", ["census", "symmetries"])
def test_a_broken_model_folder_is_one_line_naming_the_file(tmp_path, command, config, weights, message):
    import json

    from tests.test_cli import tiny_classifier_folder

    folder = tiny_classifier_folder(tmp_path / "model")
    if isinstance(config, dict):
        config = json.dumps({**json.loads((folder / "config.json").read_text()), **config})
    if config is not None:
        (folder / "config.json").write_text(config)
    if weights == "truncated":
        weights = (folder / "model.safetensors").read_bytes()[:200]
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    result = invoke(command, str(folder))
    one_line_exit_2(result, message)
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("args,message", [
    (["uas", "--treebank", "t.conllu"], "uas: Missing option '--model'"),
    (["uas", "--model", "minilm", "--treebank", "t.conllu", "--batch-size", "abc"], "'--batch-size'"),
    (["nodes", "minilm"], "nodes: Missing option '--data'"),
    (["nodes", "minilm", "--data", "d.csv", "--layer", "x"], "'--layer'"),
    (["run", "deep_mlp", "--sett", "x=1"], "No such option: --sett"),
    (["sweep", "deep_mlp"], "Missing option '--grid'"),
    (["audit"], "Missing argument"),
    (["nonsense"], "No such command 'nonsense'"),
])
def test_a_mistyped_command_line_is_one_line(args, message):
    """Click's usage errors (missing or unknown options, values of the wrong type) read like every
    other error: one line naming the command, exit code 2."""
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output and "--help" in result.output

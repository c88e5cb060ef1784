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
    experiments, observables = result.output.split(" observables ", 1)
    for name in ("deep_mlp", "order_parameter", "mlm_syntax", "single_node"):
        assert f"│ {name} " in experiments
    for name in ("order_parameter", "protected_jacobian", "head_uas", "weight_norms"):
        assert f"│ {name} " in observables
    assert "│ demo " not in experiments


def test_the_catalogue_read_from_the_sources_is_what_experiments_and_observables_declare():
    """`goldstone list` reads `goldstone.catalogue` so as to import no experiment; it must agree with
    the registries (every built-in experiment and observable, same summaries and extras)."""
    import goldstone.observables  # noqa: F401  (registers the built-in observables)
    from goldstone.catalogue import experiments, observables
    from goldstone.core.observable import OBSERVABLES
    from goldstone.lab.registry import load_all

    assert experiments() == {name: (exp.summary, exp.extras) for name, exp in load_all().items()}
    assert observables() == {name: cls.summary for name, cls in OBSERVABLES.items()}


def test_list_and_help_import_no_torch():
    """The start-up budget: `goldstone --help` and `goldstone list` never import torch."""
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from goldstone.cli import app; "
            "[CliRunner().invoke(app, a) for a in (['--help'], ['list'])]; print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"


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
    (["run", "deep_mlp", "--set", "sigma_w=0"], "key 'sigma_w' must be >= 0.001"),
    (["run", "deep_mlp", "--set", "width=30", "--set", "k=4"], "not divisible"),
    (["run", "deep_mlp", "--set", "dataset=mnist"], "no IDX files found"),
    (["run", "deep_mlp", "--device", "cuda"], "cuda"),
    (["run", "deep_mlp", "--device", "tpu"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    (["run", "deep_mlp", "--dtype", "half"], "key 'dtype' must be one of float32, bfloat16, float64; got 'half'"),
    (["run", "order_parameter", "--dtype", "float64"], "--dtype: experiment 'order_parameter' has no key 'dtype'"),
    (["sweep", "deep_mlp", "--grid", "depth"], "expected key=v1,v2"),
    (["run", "mlm_syntax", "--set", "corpus=synthetic", "--set", "depth=0"], "key 'depth': 0 cannot generate"),
    (["run", "mlm_syntax", "--set", "corpus=synthetic", "--set", "classes=1"], "key 'classes'"),
    (["sweep", "deep_mlp", "--grid", "depth=2", "--workers", "0"], "--workers must be >= 1"),
    (["sweep", "deep_mlp", "--grid", "depth=2", "--backend", "slurm"], "--backend must be local or ray"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    if "cuda" in args:
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


def test_show_and_run_help_list_every_key_with_type_default_and_range():
    shown = invoke("show", "deep_mlp")
    assert shown.exit_code == 0, shown.output
    for text in ("sigma_w", "float", "> 0", "u1 | ok | generic", "generic_scale", "only when"):
        assert text in shown.output
    helped = invoke("run", "deep_mlp", "--help")
    assert helped.exit_code == 0 and "--resume" in helped.output and "generic_scale" in helped.output
    bad = invoke("show", "deep_mpl")
    assert bad.exit_code == 2 and "did you mean 'deep_mlp'" in bad.output
    assert invoke("run").exit_code == 2


def test_resume_with_no_other_flags_reads_config_and_seed_from_the_folder(tmp_path):
    folder = tmp_path / "r"
    first = invoke("run", "deep_mlp", *TINY, "--set", "group=u1", "--seed", "3", "--out", str(folder), "--quiet")
    assert first.exit_code == 0, first.output
    metrics = (folder / "metrics.parquet").read_bytes()
    (folder / "DONE").unlink()  # as if killed after its last checkpoint
    again = invoke("run", "deep_mlp", "--out", str(folder), "--resume", "--quiet")
    assert again.exit_code == 0, again.output
    assert (folder / "DONE").exists() and (folder / "metrics.parquet").read_bytes() == metrics
    (folder / "DONE").unlink()
    wrong = invoke("run", "deep_mlp", "--out", str(folder), "--resume", "--seed", "4", "--set", "group=ok")
    assert wrong.exit_code == 2 and "keys that differ" in wrong.output
    assert "group: 'u1' -> 'ok'" in wrong.output and "seed: 3 -> 4" in wrong.output
    other = invoke("run", "order_parameter", "--out", str(folder), "--resume")
    assert other.exit_code == 2 and "holds a run of experiment 'deep_mlp'" in other.output


def test_nodes_warns_when_the_model_has_no_classification_head(tmp_path):
    import json

    model = tmp_path / "encoder"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n')
    result = invoke("nodes", str(model), "--data", str(data), "--out", str(tmp_path / "o"))
    assert "has no sequence-classification head" in result.output
    assert result.exit_code == 2 and "Traceback" not in result.output


def tiny_classifier_folder(path):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64, num_labels=3,
                                     architectures=["BertForSequenceClassification"])
    transformers.BertForSequenceClassification(config).save_pretrained(path)
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = "[PAD] [UNK] [CLS] [SEP] [MASK] the cat sat on mat".split()
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(path)
    return path


def test_symmetries_of_a_classifier_folder_writes_its_table(tmp_path):
    import pandas as pd

    folder = tiny_classifier_folder(tmp_path / "model")
    out = tmp_path / "sym.parquet"
    result = invoke("symmetries", str(folder), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "rescale" in result.output and "translation" in result.output
    table = pd.read_parquet(out)
    assert {"layer 0 query ↔ key", "layer 0 value ↔ output", "classifier columns", "classifier.bias"} <= set(table.family)
    assert set(table.kind) == {"rescale", "translation"} and (table.quality < 1e-3).all()
    assert invoke("symmetries", str(folder), "--out", str(out)).exit_code == 0  # its own file: replaced


@pytest.mark.parametrize("make,message", [
    (lambda tmp: [str(tmp / "nowhere")], "not a Hugging Face model folder"),
    (lambda tmp: [str(tmp), "--out", str(tmp / "t.csv")], ".parquet"),
    (lambda tmp: [str(tiny_classifier_folder(tmp / "m")), "--text", str(tmp / "none.txt")], "cannot read"),
])
def test_symmetries_bad_input_exits_2_with_one_line(tmp_path, make, message):
    foreign = tmp_path / "foreign.parquet"
    foreign.write_text("not ours")
    result = invoke("symmetries", *make(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert foreign.read_text() == "not ours"


def test_symmetries_does_not_overwrite_a_foreign_file(tmp_path):
    folder = tiny_classifier_folder(tmp_path / "model")
    foreign = tmp_path / "foreign.parquet"
    foreign.write_text("not ours")
    result = invoke("symmetries", str(folder), "--out", str(foreign))
    assert result.exit_code == 2 and foreign.read_text() == "not ours"


def test_entanglement_of_a_model_folder_and_its_update(tmp_path):
    import pandas as pd
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    base = {"enc.layer.0.attention.self.query.weight": torch.randn(24, 24, generator=g),
            "enc.layer.0.attention.self.value.weight": torch.randn(24, 24, generator=g)}
    (tmp_path / "base").mkdir()
    (tmp_path / "tuned").mkdir()
    save_file(base, tmp_path / "base" / "model.safetensors")
    low_rank = torch.randn(24, 2, generator=g) @ torch.randn(2, 24, generator=g)
    save_file({k: v + low_rank for k, v in base.items()}, tmp_path / "tuned" / "model.safetensors")
    out = tmp_path / "ent.parquet"
    result = invoke("entanglement", str(tmp_path / "tuned"), "--reference", str(tmp_path / "base"), "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    centre = frame[frame.centre]
    assert len(centre) == 2 and (centre.entropy <= __import__("math").log(2) + 1e-9).all()  # a rank-2 update
    assert (tmp_path / "ent.png").exists()
    bad = invoke("entanglement", str(tmp_path / "tuned"), "--params", "*nothing*", "--out", str(tmp_path / "b.parquet"))
    assert bad.exit_code == 2 and "matches no matrix" in bad.output and not (tmp_path / "b.parquet").exists()


def test_long_names_stay_whole_in_tables_at_80_columns(tmp_path):
    """The census of a BERT names its layers `bert.encoder.layer.0.intermediate.dense → ...`: folded
    onto more lines, never cut with an ellipsis."""
    folder = tiny_classifier_folder(tmp_path / "model")
    result = invoke("census", str(folder))
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and "..." not in result.output
    first_column = "".join(line.split("│")[1].strip() for line in result.output.splitlines() if line.startswith("│"))
    assert "bert.encoder.layer.0.intermediate.dense→bert.encoder.layer.0.output.dense" in first_column.replace(" ", "")


def test_version_is_the_installed_packages():
    from importlib.metadata import version

    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"goldstone {version('goldstone')}"

"""The single-node study end to end on a tiny budget: a small BERT pre-trained by mlm_syntax, fine-tuned on
EWT relations; and `goldstone nodes` on a user's classifier folder with a local JSONL file."""

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import goldstone
from goldstone.analysis.crossover import CrossoverResult
from goldstone.cli import app
from goldstone.data.treebank import treebank_dir
from goldstone.observables.unit_performance import UnitPerformanceResult

pytestmark = pytest.mark.skipif(treebank_dir() is None,
                                reason="UD English EWT not found (../shared/data/ud-english-ewt or $GOLDSTONE_UD_EWT)")

PRETRAIN = {"max_train_sentences": 300, "vocab_size": 300, "hidden": 16, "layers": 2, "heads": 2, "steps": 10,
            "batch_size": 8, "checkpoints": 2, "eval_sentences": 16, "minimal_pairs": 0, "max_length": 32}
TINY = {"task": "ewt_relation", "max_per_label": 20, "min_per_label": 20, "max_length": 32, "batch_size": 16,
        "finetune_steps": 6, "checkpoints": 2, "subsets": 2, "tokens": 5, "lr": 1e-3}


@pytest.fixture(scope="module")
def small_bert(tmp_path_factory):
    return goldstone.run("mlm_syntax", out=tmp_path_factory.mktemp("bert") / "pretrained", **PRETRAIN).folder


def test_single_node_on_the_small_bert_measures_every_stage_and_repeats_exactly(small_bert, tmp_path):
    run = goldstone.run("single_node", out=tmp_path / "a", model=str(small_bert), **TINY)
    m = run.metrics
    assert {"readout", "heads", "nodes", "heads_specialisation", "crossover", "tokens_heads", "finetune"} <= set(m.observable)
    assert sorted(m[(m.observable == "heads") & (m.metric == "accuracy")].step.unique()) == [-1, 0, 1, 6]
    stages = run.table("stages")
    assert list(stages.stage) == ["init", "pretrained", "finetuned"]
    heads = UnitPerformanceResult.load(run.folder / "arrays" / "finetuned_heads.safetensors")
    assert heads.label_accuracy.shape == (2, len(heads.labels)) and heads.settings["readout"] == "fixed"
    nodes = UnitPerformanceResult.load(run.folder / "arrays" / "finetuned_nodes.safetensors")
    assert nodes.confusion.shape[0] == 16 and int(nodes.confusion[0].sum()) == int(heads.count.sum())
    cross = CrossoverResult.load(run.folder / "arrays" / "finetuned_crossover.safetensors")
    assert cross.size.tolist() == [1, 2, 4, 8]
    assert (cross.predicted_labels <= cross.bound).all() and (cross.bound >= 1).all()
    for figure in ("expertise", "token_expertise", "node_clusters", "crossover", "symmetry_breaking"):
        assert (run.folder / "figures" / f"{figure}.png").exists()
    again = goldstone.run("single_node", out=tmp_path / "b", model=str(small_bert), **TINY)
    pd.testing.assert_frame_equal(again.metrics, m, check_exact=True)


def test_retrained_readout_and_mean_silencing_are_named_in_the_results(small_bert, tmp_path):
    run = goldstone.run("single_node", out=tmp_path / "r", model=str(small_bert), readout="retrained",
                        silence="mean", site="mlp", **{**TINY, "finetune_steps": 0, "tokens": 0})
    nodes = UnitPerformanceResult.load(run.folder / "arrays" / "pretrained_nodes.safetensors")
    assert nodes.settings["readout"] == "retrained" and nodes.settings["kind"] == "node"
    assert not (run.folder / "arrays" / "pretrained_crossover.safetensors").exists()  # heads only at site "heads"


def _classifier_folder(small_bert, tmp_path, num_labels):
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(small_bert / "tokenizer"))
    config = BertConfig.from_pretrained(str(small_bert / "model"), num_labels=num_labels)
    torch.manual_seed(0)
    folder = tmp_path / f"classifier{num_labels}"
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _jsonl(tmp_path, rows):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_nodes_command_runs_on_a_users_classifier_and_data(small_bert, tmp_path):
    words = ["good film", "bad film", "fine plot", "awful plot", "great cast", "poor cast"]
    rows = [{"text": f"{words[i % 6]} number {i}", "y": ["pos", "neg"][i % 2]} for i in range(40)]
    folder = _classifier_folder(small_bert, tmp_path, 2)
    result = CliRunner().invoke(app, ["nodes", str(folder), "--data", str(_jsonl(tmp_path, rows)), "--label-key", "y",
                                      "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 0, result.output
    assert "readout_accuracy" in result.output
    assert (tmp_path / "run" / "report.html").exists()
    heads = UnitPerformanceResult.load(tmp_path / "run" / "arrays" / "pretrained_heads.safetensors")
    assert heads.labels == ["neg", "pos"]


@pytest.mark.parametrize("case, message", [("label_key", "no key 'label'"), ("outputs", "3 labels but the model has 2")])
def test_nodes_command_names_the_bad_input(small_bert, tmp_path, case, message):
    rows = [{"text": f"text {i}", "label": "abc"[i % 3]} for i in range(30)]
    if case == "label_key":
        rows[1] = {"text": "no label here"}
    folder = _classifier_folder(small_bert, tmp_path, 2)
    result = CliRunner().invoke(app, ["nodes", str(folder), "--data", str(_jsonl(tmp_path, rows)),
                                      "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2
    assert message in result.output.replace("\n", " ")

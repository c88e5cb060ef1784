"""The MLM-syntax study on the synthetic agreement language, on a tiny budget (no treebank needed)."""

import math

import pytest

import goldstone
from goldstone.data.treebank import read_conllu

pytest.importorskip("transformers")

TINY = {"corpus": "synthetic", "sentences": 400, "hidden": 16, "layers": 1, "heads": 2, "steps": 40,
        "batch_size": 8, "eval_every": 10, "eval_sentences": 32, "minimal_pairs": 4}


def test_synthetic_run_logs_agreement_uas_and_the_named_headlines(tmp_path):
    run = goldstone.run("mlm_syntax", out=tmp_path / "r", **TINY)
    m = run.metrics
    agreement = m[(m.observable == "syntax") & (m.metric == "agreement_uas")]
    assert sorted(agreement.step) == [0, 10, 20, 30, 40]
    assert ((agreement.value >= 0) & (agreement.value <= 1)).all()
    headline = run.manifest["headline"]
    for key in ("loss_drop_step", "uas_onset_step", "final_best_uas", "best_offset_uas"):
        assert key in headline and (math.isnan(headline[key]) or headline[key] >= 0)
    assert headline["final_best_uas"] == agreement.value.iloc[-1]
    offset = m[(m.observable == "syntax") & (m.metric == "agreement_offset")].value
    assert 0.1 < offset.iloc[0] < 0.6  # Det right before its noun, the subject right before its verb, often
    assert len(read_conllu(run.folder / "dev.conllu")) == 32
    config = run.config
    assert config["dropout"] == 0.0 and config["lr"] == 1e-3  # the synthetic corpus's defaults
    pairs = m[(m.observable == "minimal_pairs") & (m.metric == "accuracy_all")]
    assert config["pairs_every"] == 4 and sorted(pairs.step) == [0, 40]  # every 4th evaluation and the last
    assert (run.folder / "tokenizer" / "tokenizer.json").exists()  # beside model/, for single_node


def test_single_node_fine_tunes_the_synthetic_bert_with_whole_entity_markers(tmp_path):
    from goldstone.data.text_tasks import ENTITY_MARKERS
    from goldstone.models.pretrained import load_classifier

    pretrained = goldstone.run("mlm_syntax", out=tmp_path / "bert", **{**TINY, "minimal_pairs": 0}).folder
    model, tokenizer = load_classifier(str(pretrained), 8, keep_whole=ENTITY_MARKERS)
    pieces = tokenizer.tokenize("[E1] det0c1 [/E1] noun3 [E2] vi2c1 [/E2]")
    assert pieces == ["[E1]", "det0c1", "[/E1]", "noun3", "[E2]", "vi2c1", "[/E2]"]  # not [UNK]
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    run = goldstone.run("single_node", out=tmp_path / "nodes", model=str(pretrained), task="synthetic_relation",
                        max_per_label=20, finetune_steps=4, checkpoints=1, subsets=1, tokens=0, max_length=40)
    stages = run.table("stages")
    assert list(stages.stage) == ["init", "pretrained", "finetuned"]
    assert run.metrics.query("observable == 'data' and metric == 'train_examples'").value.item() == 8 * 14


def test_sweep_report_shows_onsets_over_seeds(tmp_path):
    sweep = goldstone.sweep("mlm_syntax", {"lr": [1e-3]}, out=tmp_path / "s", seeds=2,
                            **{**TINY, "minimal_pairs": 0})
    report = sweep.report().read_text()
    assert "Onsets over seeds" in report and "loss-drop onset" in report
    assert (tmp_path / "s" / "figures" / "onsets.png").exists()

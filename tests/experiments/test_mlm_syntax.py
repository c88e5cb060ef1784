"""The MLM-syntax study on a tiny budget: real EWT text, real tokenizer training, every observable."""

import pandas as pd
import pytest

import goldstone
from goldstone.data.treebank import treebank_dir

TINY = {"max_train_sentences": 300, "vocab_size": 300, "hidden": 16, "layers": 1, "heads": 2, "steps": 30,
        "batch_size": 8, "checkpoints": 4, "eval_sentences": 16, "minimal_pairs": 5, "max_length": 32}

pytestmark = pytest.mark.skipif(treebank_dir() is None,
                                reason="UD English EWT not found (../shared/data/ud-english-ewt or $GOLDSTONE_UD_EWT)")


def test_tiny_mlm_run_logs_every_curve_and_resumes_identically(tmp_path):
    run = goldstone.run("mlm_syntax", out=tmp_path / "r", variant="transient", release_step=15, **TINY)
    m = run.metrics
    assert {"mlm", "syntax", "head_uas", "minimal_pairs", "regulariser"} <= set(m.observable)
    assert sorted(m[(m.observable == "syntax") & (m.metric == "best_uas")].step.unique()) == [0, 10, 14, 21, 30]
    penalty = m[m.observable == "regulariser"]
    assert (penalty[penalty.step <= 15].value > 0).all() and (penalty[penalty.step > 15].value == 0).all()
    assert (run.folder / "tokenizer" / "tokenizer.json").exists()
    again = goldstone.run("mlm_syntax", out=tmp_path / "again", variant="transient", release_step=15, **TINY)
    pd.testing.assert_frame_equal(again.metrics, m, check_exact=True)


def test_blimp_files_replace_generated_pairs(tmp_path):
    lines = [{"sentence_good": "The dog runs .", "sentence_bad": "The dog run .", "UID": "agreement_toy"},
             {"sentence_good": "These dogs run .", "sentence_bad": "This dogs run .", "UID": "determiner_toy"}]
    (tmp_path / "toy.jsonl").write_text("\n".join(__import__("json").dumps(line) for line in lines) + "\n")
    run = goldstone.run("mlm_syntax", out=tmp_path / "r", blimp=str(tmp_path), **{**TINY, "steps": 10})
    m = run.metrics
    assert set(m[m.metric == "accuracy"].phenomenon.dropna()) == {"agreement_toy", "determiner_toy"}


def test_own_text_corpus_trains_and_scores_on_the_treebank(tmp_path):
    text = tmp_path / "corpus.txt"
    train = (treebank_dir() / "en_ewt-ud-train.conllu").read_text(encoding="utf-8").splitlines()
    sentences = [line[len("# text = "):] for line in train if line.startswith("# text = ")][:300]
    text.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    run = goldstone.run("mlm_syntax", out=tmp_path / "r", corpus="text", text_file=str(text), **{**TINY, "steps": 10})
    m = run.metrics
    uas = m[(m.observable == "syntax") & (m.metric == "best_uas")]
    assert len(uas) >= 2 and uas.value.between(0, 1).all()
    assert run.config["corpus"] == "text" and run.manifest["headline"]["final_dev_loss"] > 0


@pytest.mark.parametrize("overrides, message", [
    ({"text_file": ""}, "key 'text_file': corpus=text needs a text file"),
    ({"text_file": "/nonexistent.txt"}, "is not a file"),
    ({"variant": "sas-"}, "key 'variant': sas- regularises attention toward gold trees"),
])
def test_text_corpus_bad_input(tmp_path, overrides, message):
    (tmp_path / "t.txt").write_text("a b c\n")
    from goldstone.core.errors import ConfigError
    with pytest.raises(ConfigError, match=message):
        goldstone.run("mlm_syntax", out=tmp_path / "r", corpus="text", **{"text_file": str(tmp_path / "t.txt"),
                                                                         **overrides})

"""The MLM-syntax study on the synthetic agreement language, on a tiny budget (no treebank needed)."""

import math

import numpy as np
import pandas as pd
import pytest

import goldstone
from goldstone.analysis.onsets import find_drop, find_rise
from goldstone.data.treebank import read_conllu

pytest.importorskip("transformers")
pytest.importorskip("ruptures")

TINY = {"corpus": "synthetic", "sentences": 400, "hidden": 16, "layers": 1, "heads": 2, "steps": 40,
        "batch_size": 8, "eval_every": 10, "eval_sentences": 32, "minimal_pairs": 4}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return goldstone.run("mlm_syntax", out=tmp_path_factory.mktemp("mlm") / "r", **TINY)


def test_synthetic_run_logs_agreement_uas_and_the_named_headlines(tiny_run):
    """The final headlines are the last logged values, and finite. The onset headlines are what the
    detectors find on the logged curves, searched (per step, evaluations being evenly spaced) from 4 x
    the warm-up of steps / 20, a transition already under way at the first step searched not counting:
    NaN with a size of 0 exactly when none is found. (That they are found where there is one:
    `test_headlines_locate_planted_transitions`.)"""
    run = tiny_run
    m = run.metrics
    agreement = m[(m.observable == "syntax") & (m.metric == "agreement_uas")]
    assert sorted(agreement.step) == [0, 10, 20, 30, 40]
    assert ((agreement.value >= 0) & (agreement.value <= 1)).all()
    headline = run.manifest["headline"]
    offset = m[(m.observable == "syntax") & (m.metric == "agreement_offset")].value
    assert math.isfinite(headline["final_best_uas"]) and headline["final_best_uas"] == agreement.value.iloc[-1]
    assert math.isfinite(headline["best_offset_uas"]) and headline["best_offset_uas"] == offset.iloc[-1]
    start = 4 * max(1, TINY["steps"] // 20)
    for metric, detector, onset, size in (("dev_loss", find_drop, "loss_drop_step", "loss_drop_size"),
                                          ("agreement_uas", find_rise, "uas_onset_step", "uas_change")):
        rows = m[(m.metric == metric) & (m.step >= start)]
        found = detector(rows.step.to_numpy(), rows.value.to_numpy(), axis="linear")
        if found is not None and found.start > rows.step.iloc[0]:
            assert headline[onset] == found.onset
            window = rows.set_index("step").value
            assert headline[size] == pytest.approx(abs(window[found.end] - window[found.start]), rel=1e-12)
        else:
            assert math.isnan(headline[onset]) and headline[size] == 0.0, (onset, headline[onset])
    assert 0.1 < offset.iloc[0] < 0.6  # Det right before its noun, the subject right before its verb, often
    assert len(read_conllu(run.folder / "dev.conllu")) == 32
    config = run.config
    assert config["dropout"] == 0.0 and config["lr"] == 1e-3  # the synthetic corpus's defaults
    pairs = m[(m.observable == "minimal_pairs") & (m.metric == "accuracy_all")]
    assert config["pairs_every"] == 4 and sorted(pairs.step) == [0, 40]  # every 4th evaluation and the last
    assert (run.folder / "tokenizer" / "tokenizer.json").exists()  # beside model/, for single_node


def test_best_offset_uas_is_the_offset_baseline_of_every_agreement_arc(tiny_run):
    """Counted from dev.conllu: per agreement relation (det, nsubj, acl:relcl) the arcs whose head is at the
    single best offset k in -3, -2, -1, +1, +2 from the dependent, summed over the relations and divided by
    their arcs (the per-relation best offsets weighted by arc counts). Exact up to float rounding."""
    arcs = {relation: [] for relation in ("det", "nsubj", "acl:relcl")}
    for line in (tiny_run.folder / "dev.conllu").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 10 and fields[7] in arcs:
            arcs[fields[7]].append(int(fields[6]) - int(fields[0]))
    hits = sum(max(offsets.count(k) for k in (-3, -2, -1, 1, 2)) for offsets in arcs.values())
    assert all(arcs.values())
    expected = hits / sum(len(offsets) for offsets in arcs.values())
    assert tiny_run.manifest["headline"]["best_offset_uas"] == pytest.approx(expected, abs=1e-12)


class _Recorder:
    """What `summarise` needs of a run: its metrics, and somewhere to put headlines and figures."""

    def __init__(self, metrics: pd.DataFrame):
        self.metrics, self.headlines = metrics, {}

    def headline(self, name: str, value: float) -> None:
        self.headlines[name] = float(value)

    def figure(self, *args) -> None:
        pass


def test_headlines_locate_planted_transitions():
    """Curves with known transitions on the synthetic corpus's default grid (3000 steps, evaluations every
    50, search from step 600 = 4 x the 150-step warm-up), noise 0.005: the dev loss falls 8 -> 5 over the
    warm-up (steeper and larger than the drop, but before the search starts), stays at 5, and falls
    linearly to 3 over steps 1200-1500; the agreement UAS rises linearly 0.1 -> 0.6 over steps 1800-2000.
    Onsets within one evaluation (50 steps) of 1200 and 1800, sizes within 0.05 of 2 and 0.5. Flat curves
    give NaN onsets and sizes 0."""
    from goldstone.experiments.mlm_syntax import MLMSyntaxConfig, summarise

    cfg = MLMSyntaxConfig(corpus="synthetic", minimal_pairs=0)
    steps = np.arange(0, 3001, 50)
    assert (cfg.steps, cfg.eval_every) == (3000, 50)
    rng = np.random.default_rng(0)
    planted = (np.interp(steps, [0, 300, 1200, 1500, 3000], [8.0, 5.0, 5.0, 3.0, 3.0]),
               np.interp(steps, [0, 1800, 2000, 3000], [0.1, 0.1, 0.6, 0.6]))
    flat = (np.full(len(steps), 5.0), np.full(len(steps), 0.1))
    headlines = []
    for loss, uas in (planted, flat):
        loss, uas = (c + 0.005 * rng.standard_normal(len(steps)) for c in (loss, uas))
        curves = {("mlm", "dev_loss"): loss, ("syntax", "agreement_uas"): uas, ("syntax", "heldout_uas"): uas,
                  ("syntax", "agreement_offset"): np.full(len(steps), 0.3)}
        ctx = _Recorder(pd.DataFrame([{"step": int(step), "observable": observable, "metric": metric,
                                       "value": float(value)}
                                      for (observable, metric), curve in curves.items()
                                      for step, value in zip(steps, curve)]))
        summarise(ctx, cfg)
        headlines.append(ctx.headlines)
        assert ctx.headlines["final_best_uas"] == uas[-1] and ctx.headlines["best_offset_uas"] == 0.3
    found, none = headlines
    assert abs(found["loss_drop_step"] - 1200) <= 50 and found["loss_drop_size"] == pytest.approx(2.0, abs=0.05)
    assert abs(found["uas_onset_step"] - 1800) <= 50 and found["uas_change"] == pytest.approx(0.5, abs=0.05)
    assert math.isnan(none["loss_drop_step"]) and math.isnan(none["uas_onset_step"])
    assert none["loss_drop_size"] == 0.0 and none["uas_change"] == 0.0


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

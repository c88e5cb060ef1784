"""The timeline finds what a person sees, and only that: steps and ramps of known position, no
transition on flat or noisy curves."""

import numpy as np
import pandas as pd
import pytest

from goldstone.analysis.timeline import describe, series_transition, series_transitions, transitions
from goldstone.plotting import audit_timeline

pytest.importorskip("ruptures")

STEPS = np.arange(0, 2100, 100.0)  # 21 evenly spaced checkpoints


@pytest.mark.parametrize("at", [300, 1000, 1700])
@pytest.mark.parametrize("seed", range(3))
def test_a_noisy_step_is_found_at_its_checkpoint(at, seed):
    rng = np.random.default_rng(seed)
    values = np.where(STEPS >= at, 3.0, 1.0) + rng.normal(0, 0.05, len(STEPS))
    found = series_transition(STEPS, values)
    assert found is not None and found["step"] == at
    assert found["start"] <= at - 100 and found["end"] >= at
    assert found["size"] == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize("seed", range(3))
def test_a_ramp_is_found_where_it_starts(seed):
    rng = np.random.default_rng(seed)
    values = np.interp(STEPS, [0, 800, 1200, 2000], [5.0, 5.0, 1.0, 1.0]) + rng.normal(0, 0.05, len(STEPS))
    found = series_transition(STEPS, values)
    assert found is not None and found["size"] < -3.5
    assert 700 <= found["start"] <= 900 and 1100 <= found["end"] <= 1300
    assert found["step"] in (800, 900)


def test_flat_noisy_and_smoothly_drifting_curves_have_no_transition():
    rng = np.random.default_rng(0)
    false = 0
    for _ in range(200):
        false += series_transition(STEPS, 2.0 + rng.normal(0, 0.1, len(STEPS))) is not None
        drift = 2.0 + 0.0005 * STEPS + rng.normal(0, 0.1, len(STEPS))  # a steady trend is not a transition
        false += series_transition(STEPS, drift) is not None
    assert false <= 4  # at most 1 % of 400 curves
    assert series_transition(STEPS, np.full(len(STEPS), 7.0)) is None
    assert series_transition(STEPS[:4], np.array([0.0, 0.0, 1.0, 1.0])) is None  # too few checkpoints


def test_a_frame_of_many_series_gets_exactly_the_planted_transition():
    rng = np.random.default_rng(1)
    rows = []
    for layer in range(4):
        for step in STEPS:
            dead = 40.0 if (layer == 2 and step >= 1200) else 0.0
            rows.append({"step": step, "observable": "neuron_census", "metric": "dead", "layer": layer,
                         "value": dead})
            rows.append({"step": step, "observable": "weight_statistics", "metric": "norm", "layer": layer,
                         "value": 10 + rng.normal(0, 0.1)})
    table = transitions(pd.DataFrame(rows))
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.observable, row.metric, row.layer, row.step, row.before, row.after) == \
        ("neuron_census", "dead", 2, 1200, 0.0, 40.0)
    assert describe(row, ["layer"]) == "at step 1200: neuron census dead (layer 2) rises from 0 to 40"
    fig = audit_timeline(table, steps=STEPS)
    assert fig.axes[0].get_yticklabels()[0].get_text() == "neuron_census dead 2"


def test_an_early_fall_and_a_later_sudden_drop_are_both_found():
    """A warm-up fall, a plateau and a sudden drop (the masked-LM loss of a sudden-drop run)."""
    rng = np.random.default_rng(0)
    steps = np.arange(0, 3050, 50.0)
    loss = np.where(steps < 200, 6 - 3 * steps / 200, 3.0) - np.where(steps >= 1500, 1.0, 0.0)
    found = series_transitions(steps, loss + rng.normal(0, 0.02, len(steps)))
    assert [t["size"] < 0 for t in found] == [True, True]
    assert found[0]["step"] <= 200 and found[1]["step"] == 1500


def test_on_the_sudden_drop_of_every_seed_and_thread_count_the_timeline_finds_what_is_there():
    """The dev loss and agreement-arc UAS of the three synthetic-language seeds on one and on two
    torch threads (logged every 50 steps). The timeline's one large rise of the UAS (more than 0.12)
    starts within one checkpoint of the structure onset `mlm_syntax` reports itself, its drop after
    the warm-up (from step 600, where `mlm_syntax` starts its own search) within two of the loss
    drop (one on five of the six runs; seed 0 on two threads: 1550 against 1450, the two detectors
    resolving a 250-step fall differently); where `mlm_syntax` reports
    no structure onset (seed 1 on two threads, whose UAS climbs from 0.43 to 0.81 between steps 750
    and 1450), the timeline finds the rise all the same."""
    import json
    from pathlib import Path

    runs = json.loads((Path(__file__).parent / "synthetic_drop_curves.json").read_text())["runs"]
    assert sorted((r["seed"], r["threads"]) for r in runs) == [(s, t) for s in range(3) for t in (1, 2)]
    for run in runs:
        steps, which = np.asarray(run["steps"], float), (run["seed"], run["threads"])
        drops = [t for t in series_transitions(steps, np.asarray(run["dev_loss"])) if t["start"] >= 600]
        rises = [t for t in series_transitions(steps, np.asarray(run["agreement_uas"])) if t["size"] > 0.12]
        assert drops and abs(drops[0]["start"] - run["loss_drop_step"]) <= (100 if which == (0, 2) else 50), which
        assert len(rises) == 1, which
        if run["uas_onset_step"] == run["uas_onset_step"]:  # not NaN
            assert abs(rises[0]["start"] - run["uas_onset_step"]) <= 50, which
        else:
            assert which == (1, 2) and 750 <= rises[0]["start"] <= 1450

"""The representation-formation experiment logs the six CRH cosines of every Linear at every
evaluation, equal to a fresh measurement of the saved model, and its headline is their mean."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import goldstone
from goldstone.core.checkpoint import load_checkpoint
from goldstone.core.config import resolve_config
from goldstone.core.frames import series
from goldstone.core.observable import measure
from goldstone.data.classification import load_dataset
from goldstone.experiments.representation_formation import FormationConfig
from goldstone.models.relu_mlp import relu_mlp
from goldstone.observables.representation_alignment import PAIRS, RepresentationAlignment


def test_a_short_run_logs_the_alignments_of_its_saved_model(tmp_path):
    run = goldstone.run("representation_formation", out=tmp_path / "r", steps=40, eval_every=20, checkpoint_every=40,
                        width=32, probe_size=64)
    rows = series(run.metrics, "representation_alignment", "alignment")
    assert sorted(rows.step.unique()) == [0, 20, 40] and set(rows.pair) == set(PAIRS)
    assert sorted(rows.layer.unique()) == ["0", "2", "4"]

    cfg = resolve_config(FormationConfig, run.config)
    data = load_dataset(cfg.dataset)
    model = relu_mlp(data.num_features, cfg.width, cfg.depth, data.num_classes, cfg.batch_norm, cfg.bn_eps)
    model.load_state_dict(load_checkpoint(tmp_path / "r" / "checkpoints" / "step_00000040")[0]["model"])
    (fresh,) = measure(model, [RepresentationAlignment((data.x_train[:64], data.y_train[:64]), F.cross_entropy)])
    last = rows[rows.step == 40].set_index(["layer", "pair"]).value
    for i, layer in enumerate(fresh.names):
        for j, pair in enumerate(PAIRS):
            value = float(fresh.alignment[i, j])
            assert (np.isnan(value) and np.isnan(last[(layer, pair)])) or last[(layer, pair)] == pytest.approx(value, rel=1e-6)
    assert run.manifest["headline"]["mean_alignment"] == pytest.approx(float(np.nanmean(fresh.alignment.numpy())), rel=1e-6)
    assert torch.isnan(fresh.alignment[0, 1]) and not torch.isnan(fresh.alignment[1, 1])

"""The sequential-pixels experiment: tiny runs on the embedded digits and on IDX files."""

import numpy as np
import pytest
import torch

import goldstone
from goldstone.core.errors import ConfigError
from goldstone.data.classification import load_dataset
from goldstone.experiments.seq_pixels import SequenceClassifier, SeqPixelsConfig, pixel_sequences
from goldstone.models.recurrent import parameter_count

TINY = {"width": 8, "steps": 4, "eval_every": 2, "checkpoint_every": 2, "eval_size": 40, "batch_size": 8}


@pytest.mark.parametrize("overrides", [{"group": "ok", "k": 4, "cell": "gru"},
                                       {"architecture": "torch_gru", "baseline_width": "equal_parameters"}])
def test_tiny_runs_log_accuracy_and_parameters(tmp_path, overrides):
    run = goldstone.run("seq_pixels", out=tmp_path / "r", **TINY, **overrides)
    m = run.metrics
    accuracy = m[(m.observable == "eval") & (m.metric == "accuracy")]
    assert accuracy.step.tolist() == [0, 2, 4] and accuracy.value.between(0, 1).all()
    headline = run.manifest["headline"]
    assert headline["parameters"] == parameter_count(SequenceClassifier(SeqPixelsConfig(**TINY, **overrides), 10))


def test_permutation_is_fixed_and_only_reorders_time():
    data = load_dataset("digits")
    (plain, _), (first, _), (again, _) = (pixel_sequences(data, p) for p in (False, True, True))
    assert plain.shape == (len(data.x_train), 64, 1)
    assert torch.equal(first, again) and not torch.equal(first, plain)
    torch.testing.assert_close(first.sort(1).values, plain.sort(1).values)


def test_mnist_without_a_folder_and_idx_of_the_wrong_shape_are_named(tmp_path):
    with pytest.raises(ConfigError, match="data_dir"):
        goldstone.run("seq_pixels", out=tmp_path / "a", dataset="mnist", **TINY)
    header = bytes([0, 0, 0x08, 2]) + (5).to_bytes(4, "big") + (784).to_bytes(4, "big")
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / stem).write_bytes(header + np.zeros(5 * 784, np.uint8).tobytes())
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(bytes([0, 0, 0x08, 1]) + (5).to_bytes(4, "big") + bytes(5))
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte: images must be"):
        goldstone.run("seq_pixels", out=tmp_path / "b", dataset="mnist", data_dir=str(tmp_path), **TINY)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

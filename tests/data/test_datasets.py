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

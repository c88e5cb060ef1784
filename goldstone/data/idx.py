"""IDX files (the MNIST / Fashion-MNIST format), plain or gzipped, read with checks that name the
file at fault."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from goldstone.core.errors import GoldstoneError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Magic: two zero bytes, a type code, the number of dimensions; then big-endian int32 sizes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise GoldstoneError(f"{path}: cannot be read as an IDX file ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or raw[3] == 0:
        raise GoldstoneError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise GoldstoneError(f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz``."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise GoldstoneError(f"{folder}: no IDX file {stem} (or {stem}.gz) in this folder")

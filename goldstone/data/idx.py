"""IDX files (the MNIST / Fashion-MNIST format), plain or gzipped, read with checks that name the
file at fault."""

from __future__ import annotations

import gzip
import math
import zlib
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import numpy as np

from goldstone.core.errors import GoldstoneError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMENSIONS = 32  # numpy's limit (1.x)
CHUNK = 1 << 24


def read_idx(path: str | Path) -> np.ndarray:
    """Magic: two zero bytes, a type code, the number of dimensions; then big-endian int32 sizes. The array
    comes back in native byte order; no more than the header's byte count is ever read."""
    path = Path(path)
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gzipped else nullcontext(raw) as stream:
                return _read(path, stream)
    except (OSError, EOFError, zlib.error) as err:
        raise GoldstoneError(f"{path}: cannot be read as an IDX file ({err})") from err


def _read(path: Path, stream: BinaryIO) -> np.ndarray:
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES or magic[3] == 0:
        raise GoldstoneError(f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'})")
    if magic[3] > MAX_DIMENSIONS:
        raise GoldstoneError(f"{path}: IDX header says {magic[3]} dimensions (at most {MAX_DIMENSIONS})")
    dims = stream.read(4 * magic[3])
    if len(dims) < 4 * magic[3]:
        raise GoldstoneError(f"{path}: IDX header of {magic[3]} dimensions cut short after {4 + len(dims)} bytes")
    shape = tuple(int.from_bytes(dims[i:i + 4], "big") for i in range(0, len(dims), 4))
    dtype = np.dtype(_DTYPES[magic[2]])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    chunks, have = [], 0
    while have <= expected and (chunk := stream.read(min(CHUNK, expected + 1 - have))):
        chunks.append(chunk)
        have += len(chunk)
    if have != expected:
        found = "more" if have > expected else f"only {have}"
        raise GoldstoneError(f"{path}: IDX header says shape {shape} ({expected} bytes of data) "
                             f"but the file has {found}")
    return np.frombuffer(b"".join(chunks), dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def find_idx(folder: Path, stem: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz``."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise GoldstoneError(f"{folder}: no IDX file {stem} (or {stem}.gz) in this folder")

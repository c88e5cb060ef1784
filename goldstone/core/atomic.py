"""Atomic file writes: write to a temporary sibling, flush, then `os.replace`.

A reader (or a resumed run) therefore sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import save_file


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o666 & ~_umask())  # mkstemp (and some writers) make it private; the umask decides
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it is renamed to `path` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def parquet_kind(path: str | os.PathLike) -> str | None:
    """The `kind` `write_parquet` stored in a file, or None (another writer's file, or not parquet)."""
    import pyarrow.parquet as pq

    try:
        kind = (pq.read_schema(path).metadata or {}).get(b"goldstone")
    except Exception:  # pyarrow raises several types for a file that is not parquet
        return None
    return kind.decode() if kind is not None else None


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame, kind: str | None = None) -> None:
    """`frame` as parquet; `kind` is kept in the file's metadata (key "goldstone") to recognise it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if kind is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"goldstone": kind.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                      metadata: dict[str, str] | None = None) -> None:
    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata=metadata)


FIGURE_SOFTWARE = "goldstone"
"""The "Software" entry of every PNG goldstone writes: how a command recognises a figure of its own."""


def write_figure(path: str | os.PathLike, figure: Any) -> None:
    """Save a matplotlib figure atomically; the format follows the suffix (.png, .svg); a PNG
    carries ``Software: goldstone`` in its metadata."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip("."), dpi=110, bbox_inches="tight",
                       metadata={"Date": None} if path.suffix == ".svg" else {"Software": FIGURE_SOFTWARE})


def figure_kind(path: Path) -> str | None:
    """The "Software" entry of a PNG file's metadata (None for anything else)."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            return image.info.get("Software")
    except (OSError, ValueError):
        return None


def write_gif(path: str | os.PathLike, frames: list[Any], seconds_per_frame: float = 0.25) -> None:
    """Save PIL images as a looping GIF atomically."""
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                       duration=round(1000 * seconds_per_frame), loop=0)


def check_output_file(path: str | os.PathLike, suffix: str, ours: Callable[[Path], bool], force: bool = False) -> Path:
    """Refuse, before any work starts, an output path that is a folder, lacks `suffix`, or holds a
    file that `ours` does not recognise as one goldstone wrote for this purpose (unless `force`)."""
    from goldstone.core.errors import GoldstoneError

    path = Path(path)
    if path.suffix != suffix:
        raise GoldstoneError(f"--out {path}: expected a {suffix} file name")
    if path.is_dir():
        raise GoldstoneError(f"--out {path} is a folder; give a {suffix} file name")
    if path.exists() and not force and not ours(path):
        raise GoldstoneError(f"--out {path} exists and was not written by this command; "
                             "refusing to replace it (pass --force to do so)")
    if path.parent.exists() and not path.parent.is_dir():
        raise GoldstoneError(f"--out {path}: {path.parent} is not a folder")
    if path.parent.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise GoldstoneError(f"--out {path}: {path.parent} is not writable")
    return path

"""Text files read as UTF-8, with a binary or undecodable file refused in one line naming the file and line."""

from __future__ import annotations

from pathlib import Path

from goldstone.core.errors import GoldstoneError


def read_text(path: str | Path) -> str:
    """The UTF-8 text of `path` (a byte-order mark allowed). A file that cannot be read, is not UTF-8 or holds
    a NUL byte (a binary file) is refused, naming the line at fault."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise GoldstoneError(f"{path}: cannot read ({err.strerror or err})") from err
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise GoldstoneError(f"{path}:{_line(raw, err.start)}: not UTF-8 text (byte {raw[err.start]:#04x})") from None
    if (nul := raw.find(b"\x00")) >= 0:
        raise GoldstoneError(f"{path}:{_line(raw, nul)}: NUL byte (a binary file, not text)")
    return text


def _line(raw: bytes, index: int) -> int:
    """The 1-based line of byte `index`."""
    return raw.count(b"\n", 0, index) + 1

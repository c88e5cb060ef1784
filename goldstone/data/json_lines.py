"""JSON Lines: one JSON object a line, read with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from goldstone.core.errors import GoldstoneError


def json_objects(path: Path, content: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) of every non-blank line of `content`, read from `path`."""
    for number, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise GoldstoneError(f"{path}:{number}: not a JSON line ({err.msg})") from err
        if not isinstance(record, dict):
            raise GoldstoneError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield number, record

"""Checkpoints: the full training state in one folder, written atomically.

``step_XXXXXXXX/state.safetensors`` holds every tensor (module weights, optimizer moments, RNG
states); ``state.json`` the rest of the nested state with placeholders for the tensors;
``metrics.parquet`` the rows logged so far. Restoring all three makes a resumed run
bitwise identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from goldstone.core.atomic import atomic_dir, write_json, write_parquet, write_safetensors
from goldstone.core.errors import RunFolderError

STATE_TENSORS, STATE_JSON, STATE_METRICS = "state.safetensors", "state.json", "metrics.parquet"
CHECKSUMS = "checksums.json"
"""SHA-256 of every file of a checkpoint, verified before it is restored."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flatten_state(obj: Any, prefix: str = "", tensors: dict[str, torch.Tensor] | None = None):
    """Split a nested state (dicts, lists, tensors, scalars) into tensors and a JSON tree."""
    tensors = {} if tensors is None else tensors
    if torch.is_tensor(obj):
        tensors[prefix] = obj.detach().cpu().clone()
        return {"__tensor__": prefix}, tensors
    if isinstance(obj, dict):
        return {"__dict__": [[k, flatten_state(v, f"{prefix}/{k}", tensors)[0]] for k, v in obj.items()]}, tensors
    if isinstance(obj, (list, tuple)):
        return [flatten_state(v, f"{prefix}/{i}", tensors)[0] for i, v in enumerate(obj)], tensors
    return obj, tensors


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict) and "__tensor__" in tree:
        return tensors[tree["__tensor__"]]
    if isinstance(tree, dict):
        return {k: unflatten_state(v, tensors) for k, v in tree["__dict__"]}
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    return tree


def save_checkpoint(folder: Path, state: dict[str, Any], metrics: pd.DataFrame) -> None:
    """Write one checkpoint folder atomically (all of it appears at once, or none)."""
    tree, tensors = flatten_state(state)
    with atomic_dir(folder) as tmp:
        write_safetensors(tmp / STATE_TENSORS, tensors)
        write_json(tmp / STATE_JSON, tree)
        write_parquet(tmp / STATE_METRICS, metrics)
        write_json(tmp / CHECKSUMS, {name: sha256(tmp / name) for name in (STATE_TENSORS, STATE_JSON, STATE_METRICS)})


def load_checkpoint(folder: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Read a checkpoint folder; a truncated or corrupted file raises `RunFolderError` naming it."""
    def fail(name: str, err: Exception):
        raise RunFolderError(f"checkpoint file {folder / name} is corrupt or truncated ({err}); "
                             "the run folder was left as it is") from err

    if (folder / CHECKSUMS).exists():
        try:
            expected = json.loads((folder / CHECKSUMS).read_text())
        except (OSError, ValueError) as err:
            fail(CHECKSUMS, err)
        for name, digest in expected.items():
            if not (folder / name).is_file() or sha256(folder / name) != digest:
                raise RunFolderError(f"checkpoint file {folder / name} does not match its checksum (changed, "
                                     "replaced or corrupt); the run folder was left as it is")

    try:
        tensors = load_file(str(folder / STATE_TENSORS))
    except (SafetensorError, OSError, ValueError) as err:
        fail(STATE_TENSORS, err)
    try:
        tree = json.loads((folder / STATE_JSON).read_text())
        state = unflatten_state(tree, tensors)
    except (OSError, ValueError, KeyError) as err:
        fail(STATE_JSON, err)
    try:
        metrics = pd.read_parquet(folder / STATE_METRICS)
    except Exception as err:  # pyarrow raises several types for a damaged file
        fail(STATE_METRICS, err)
    return state, metrics

"""Read a model's weights from wherever they were saved, as one ``{name: tensor}`` dict, and load
them into a model.

`read_weights` takes a safetensors file, a run checkpoint folder (``state.safetensors``), a run
folder (its newest checkpoint), a Hugging Face model folder (``model.safetensors``, sharded
``model.safetensors.index.json`` or ``pytorch_model.bin``), or a PEFT LoRA adapter folder, whose
weights come out merged: W = W0 + (alpha / r) B A on top of its base model's weights.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from goldstone.core.checkpoint import STATE_TENSORS
from goldstone.core.errors import GoldstoneError, RunFolderError

RUN_MODEL_PREFIX = "/model/"
"""Run checkpoints hold the model's weights under this prefix (the state's "model" entry)."""


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise RunFolderError(f"{path}: not a readable safetensors file ({err})") from err


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunFolderError(f"{path}: cannot be read as JSON ({err})") from err


def _sharded(folder: Path, index: Path) -> dict[str, torch.Tensor]:
    weight_map = _json(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise RunFolderError(f"{index}: no weight_map")
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        weights.update(_safetensors(folder / shard))
    absent = sorted(set(weight_map) - set(weights))
    if absent:
        raise RunFolderError(f"{index}: {len(absent)} weights are in no shard, e.g. {absent[0]!r}")
    return weights


def _lora_merged(folder: Path, base: str | Path | None) -> dict[str, torch.Tensor]:
    """W0 + scaling * B @ A for every LoRA pair of a PEFT adapter, on top of the base weights."""
    config = _json(folder / "adapter_config.json")
    if config.get("peft_type", "LORA") != "LORA":
        raise RunFolderError(f"{folder}: PEFT type {config.get('peft_type')!r}; only LoRA adapters are merged")
    base = Path(base or config.get("base_model_name_or_path") or "")
    if not base.exists():
        raise RunFolderError(f"{folder}: its base model {str(base)!r} is not a local path; pass base= (the folder "
                             "or file of the base weights)")
    weights = read_weights(base)
    adapter_file = folder / "adapter_model.safetensors"
    adapter = _safetensors(adapter_file) if adapter_file.exists() else _pickled(folder / "adapter_model.bin")
    rank, alpha = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    scaling = alpha / rank ** 0.5 if config.get("use_rslora") else alpha / rank
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        b = adapter[key.replace(".lora_A.", ".lora_B.")]
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        target = _base_key(weights, f"{module}.weight", folder)
        delta = (b.double() @ a.double()) * scaling
        if config.get("fan_in_fan_out"):
            delta = delta.T
        weights[target] = (weights[target].double() + delta).to(weights[target].dtype)
    for key, value in adapter.items():  # modules_to_save: full copies trained with the adapter
        if ".modules_to_save.default." in key:
            name = key.removeprefix("base_model.model.").replace(".modules_to_save.default.", ".")
            weights[_base_key(weights, name, folder)] = value
    return weights


def _base_key(weights: dict[str, torch.Tensor], name: str, folder: Path) -> str:
    """`name` in the base weights, allowing for a task model's prefix (``bert.``) on either side."""
    if name in weights:
        return name
    matches = [k for k in weights if k.endswith("." + name) or name.endswith("." + k)]
    if len(matches) != 1:
        raise RunFolderError(f"{folder}: the adapter changes {name!r}, which the base weights do not hold")
    return matches[0]


def _pickled(path: Path) -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or unsafe pickle
        raise RunFolderError(f"{path}: cannot be read as a PyTorch weights file ({type(err).__name__})") from err


def read_weights(path: str | Path, base: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The weights saved at `path` (see the module docstring); `base` overrides the base model of
    a PEFT adapter."""
    path = Path(path)
    if not path.exists():
        raise RunFolderError(f"{path}: no such file or folder")
    if path.is_file():
        return _pickled(path) if path.suffix in (".bin", ".pt", ".pth") else _safetensors(path)
    if (path / STATE_TENSORS).exists():
        tensors = _safetensors(path / STATE_TENSORS)
        return {k.removeprefix(RUN_MODEL_PREFIX): v for k, v in tensors.items() if k.startswith(RUN_MODEL_PREFIX)}
    checkpoints = sorted((path / "checkpoints").glob("step_*")) if (path / "checkpoints").is_dir() else []
    if checkpoints:
        return read_weights(checkpoints[-1])
    if (path / "adapter_config.json").exists():
        return _lora_merged(path, base)
    if (path / "model.safetensors").exists():
        return _safetensors(path / "model.safetensors")
    if (path / "model.safetensors.index.json").exists():
        return _sharded(path, path / "model.safetensors.index.json")
    if (path / "pytorch_model.bin").exists():
        return _pickled(path / "pytorch_model.bin")
    raise RunFolderError(f"{path}: holds no weights (no state.safetensors, checkpoints/, model.safetensors, "
                         "model.safetensors.index.json, pytorch_model.bin or adapter_config.json)")


def match_names(names: list[str], reference: dict[str, torch.Tensor], what: str = "the reference") -> dict[str, str]:
    """For every name, the reference's key of the same parameter: the same name, or the same name
    under another base prefix (a task model's ``bert.encoder...`` against its base model's
    ``encoder...``, or the other way round); a name with no such key, or with several, is an error."""
    keys, matched = set(reference), {}
    for name in names:
        if name in keys:
            matched[name] = name
            continue
        found = [k for k in keys if k.endswith("." + name) or name.endswith("." + k)]
        if len(found) != 1:
            close = difflib.get_close_matches(name, list(keys), n=1, cutoff=0.3)
            raise GoldstoneError(f"{what} has {'no' if not found else 'more than one'} parameter {name!r}"
                                 + (f" (under another prefix: {', '.join(sorted(found)[:3])})" if found else
                                    f" (closest: {close[0]!r})" if close else ""))
        matched[name] = found[0]
    return matched


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load the weights at `path` into `model`. Tied weights (one tensor under several names)
    may be saved under one name only; any other missing or unexpected key is an error naming it."""
    fit_weights(model, read_weights(path), path)


def fit_weights(model: nn.Module, weights: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load `weights` (read from `path`) into `model`, checked as `load_weights` does."""
    own = model.state_dict()
    storage = {name: t.untyped_storage().data_ptr() for name, t in own.items()}
    present = {storage[k] for k in weights if k in storage}
    missing = [k for k in own if k not in weights and storage[k] not in present]
    buffers = {name for name, _ in model.named_buffers()}  # non-persistent ones (position ids) may be saved too
    unexpected = [k for k in weights if k not in own and k not in buffers]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}"] if unexpected else [])
        raise RunFolderError(f"{path}: weights do not fit {type(model).__name__} ({'; '.join(parts)})")
    weights = {k: v for k, v in weights.items() if k in own}
    wrong = [k for k, v in weights.items() if v.shape != own[k].shape]
    if wrong:
        raise RunFolderError(f"{path}: {wrong[0]!r} has shape {tuple(weights[wrong[0]].shape)} in the file and "
                             f"{tuple(own[wrong[0]].shape)} in the model")
    model.load_state_dict(weights, strict=False)

"""Read a model's weights from wherever they were saved, as one ``{name: tensor}`` dict, and load
them into a model.

`read_weights` takes a safetensors file, a run checkpoint folder (``state.safetensors``), a run
folder (its newest checkpoint), a Hugging Face model folder (``model.safetensors``, sharded
``model.safetensors.index.json`` or ``pytorch_model.bin``), or a PEFT LoRA adapter folder, whose
weights come out merged: W = W0 + (alpha / r) B A on top of its base model's weights. What cannot
be used is refused in one line naming the file: a pickle that is not a state dict (it is unpickled
with weights_only=True), an index naming a missing shard or a tensor its shard lacks, a LoRA
adapter whose r, lora_alpha or A and B do not fit its base. `check_finite` refuses NaN or infinite
weights where a measurement needs finite ones (`read_weights` reads a diverged checkpoint as it is).
"""

from __future__ import annotations

import difflib
import json
import math
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
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunFolderError(f"{path}: cannot be read as JSON ({err})") from err
    if not isinstance(data, dict):
        raise RunFolderError(f"{path}: must hold a JSON object, got {type(data).__name__}")
    return data


def _sharded(folder: Path, index: Path) -> dict[str, torch.Tensor]:
    """The shards a ``model.safetensors.index.json`` names, each holding every tensor the index puts in it."""
    weight_map = _json(index).get("weight_map")
    shards = weight_map.values() if isinstance(weight_map, dict) else [None]
    if not all(isinstance(shard, str) and Path(shard).name == shard for shard in shards):
        raise RunFolderError(f"{index}: weight_map must map tensor names to shard files in the same folder")
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(set(shards)):
        if not (folder / shard).is_file():
            raise RunFolderError(f"{index}: names the shard {shard!r}, which is missing")
        tensors = _safetensors(folder / shard)
        absent = [name for name, where in weight_map.items() if where == shard and name not in tensors]
        if absent:
            raise RunFolderError(f"{folder / shard}: lacks {absent[0]!r}, which {index.name} puts there")
        weights.update(tensors)
    return weights


def _lora_rank(config: dict, path: Path) -> tuple[int, float]:
    """r and the scaling alpha / r (alpha / sqrt(r) with rsLoRA) of a LoRA adapter config read from
    `path`: r a whole number >= 1, lora_alpha a finite number >= 0, one rank for every module."""
    rank, alpha = config.get("r", 8), config.get("lora_alpha", 8)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise RunFolderError(f"{path}: r = {rank!r}; the LoRA rank must be a whole number >= 1")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not (math.isfinite(alpha) and alpha >= 0):
        raise RunFolderError(f"{path}: lora_alpha = {alpha!r}; it must be a finite number >= 0")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise RunFolderError(f"{path}: rank_pattern / alpha_pattern (a rank per module) are not supported")
    return rank, alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank


def _lora_merged(folder: Path, base: str | Path | None) -> dict[str, torch.Tensor]:
    """W0 + scaling * B @ A for every LoRA pair of a PEFT adapter, on top of the base weights; A must be
    (r, d_in) and B (d_out, r) for a base weight W0 (d_out, d_in) (its transpose with fan_in_fan_out)."""
    config_file = folder / "adapter_config.json"
    config = _json(config_file)
    if config.get("peft_type", "LORA") != "LORA":
        raise RunFolderError(f"{folder}: PEFT type {config.get('peft_type')!r}; only LoRA adapters are merged")
    rank, scaling = _lora_rank(config, config_file)
    base = base or config.get("base_model_name_or_path")
    if not (isinstance(base, (str, Path)) and str(base) and Path(base).exists()
            and not (Path(base) / "adapter_config.json").exists()):
        raise RunFolderError(f"{folder}: its base model {base!r} is not a local model folder or file; pass base= (the "
                             "folder or file of the base weights)")
    weights = read_weights(base)
    adapter_file = folder / "adapter_model.safetensors"
    if not adapter_file.exists():
        adapter_file = folder / "adapter_model.bin"
    adapter = read_weights(adapter_file)
    for key in adapter:
        for own, other in ((".lora_A.", ".lora_B."), (".lora_B.", ".lora_A.")):
            if own in key and key.replace(own, other) not in adapter:
                raise RunFolderError(f"{adapter_file}: {key!r} has no {key.replace(own, other)!r}")
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        b_key = key.replace(".lora_A.", ".lora_B.")
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        target = _base_key(weights, f"{module}.weight", folder)
        shape = tuple(weights[target].shape)
        if len(shape) != 2:
            raise RunFolderError(f"{adapter_file}: {key!r} adapts {target!r}, which is {shape}, not a matrix")
        d_out, d_in = shape[::-1] if config.get("fan_in_fan_out") else shape
        b = adapter[b_key]
        for name, tensor, expected in ((key, a, (rank, d_in)), (b_key, b, (d_out, rank))):
            if tuple(tensor.shape) != expected:
                raise RunFolderError(f"{adapter_file}: {name!r} is {tuple(tensor.shape)}, not {expected} (r = {rank}, "
                                     f"{target!r} is {shape})")
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
    """A PyTorch state dict, unpickled with weights_only=True (tensors and plain containers, never code)."""
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or unsafe pickle
        raise RunFolderError(f"{path}: cannot be read as a PyTorch weights file ({type(err).__name__})") from err
    if not isinstance(weights, dict):
        raise RunFolderError(f"{path}: holds a {type(weights).__name__}, not a state dict (names to tensors)")
    wrong = [k for k, v in weights.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if wrong:
        raise RunFolderError(f"{path}: entry {wrong[0]!r} ({type(weights[wrong[0]]).__name__}) is not a tensor under "
                             "a name")
    return weights


def check_finite(weights: dict[str, torch.Tensor], source: str | Path) -> None:
    """Refuse, in one line naming `source` and the tensor, weights that hold NaN or infinities."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise RunFolderError(f"{source}: {name!r} holds {bad} NaN or infinite values (of {tensor.numel()})")


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

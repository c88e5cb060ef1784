"""Where things live inside Hugging Face transformer models, declared once per architecture.

An `Adapter` names, as dotted module paths, the blocks, attention, projections, MLP and embeddings of one
family of architectures. The functions below read weights, attention probabilities and per-head outputs
through it, so that an observable written once works on every registered architecture. A new
architecture is one small file in goldstone/models/adapters/ that declares an `Adapter` and `register`s it.

Shapes: B batch, T tokens, H attention (query) heads, d = d_head, `hidden` the model width.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import


@dataclass(frozen=True)
class Adapter:
    """Module paths and config attribute names for one architecture family.

    `layers` and `embeddings` are relative to the base model (the model without task heads); the other paths
    are relative to one block of `layers`. Projections may be `nn.Linear` or Hugging Face `Conv1D`.

    - `attention`: the self-attention module; its input is the hidden state that Q/K/V project, and it
      returns the attention probabilities when the model runs with `output_attentions=True`.
    - `output_projection`: the projection whose input is the concatenation of the H head outputs.
    - `query`/`key`/`value`: separate projections, or else `fused_qkv`: one projection whose output is the
      contiguous blocks [q | k | v].
    - `mlp_in`/`mlp_out`: the MLP's first and last projections; `mlp_gate`: the gate of a gated MLP.
    - `head_dim_attr`: config attribute for d_head when it is not hidden / H; `num_kv_heads_attr`: config
      attribute for the number of key/value heads under grouped-query attention.
    """

    model_types: tuple[str, ...]
    layers: str
    embeddings: str
    attention: str
    output_projection: str
    mlp_in: str
    mlp_out: str
    query: str | None = None
    key: str | None = None
    value: str | None = None
    fused_qkv: str | None = None
    mlp_gate: str | None = None
    num_layers_attr: str = "num_hidden_layers"
    num_heads_attr: str = "num_attention_heads"
    hidden_size_attr: str = "hidden_size"
    head_dim_attr: str | None = None
    num_kv_heads_attr: str | None = None

    def __post_init__(self) -> None:
        separate = [self.query, self.key, self.value]
        if not (self.fused_qkv is None and None not in separate
                or self.fused_qkv is not None and separate == [None, None, None]):
            raise GoldstoneError(f"adapter for {self.model_types}: declare either query, key and value or fused_qkv")


ADAPTERS: dict[str, Adapter] = {}
"""Registered adapters by Hugging Face `config.model_type`."""

BLOCK_ROLES = ("attention", "output_projection", "query", "key", "value", "fused_qkv", "mlp_in", "mlp_gate", "mlp_out")
"""The `Adapter` fields that name a module inside one block (the `role` of `submodule`)."""


def register(adapter: Adapter) -> Adapter:
    """Serve every model type of `adapter`; returns it so that a file can declare and register in one line."""
    taken = [t for t in adapter.model_types if t in ADAPTERS]
    if taken:
        raise GoldstoneError(f"model type {taken[0]!r} already has an adapter")
    ADAPTERS.update(dict.fromkeys(adapter.model_types, adapter))
    return adapter


def adapter_for(model: nn.Module) -> Adapter:
    """The adapter serving `model.config.model_type`."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type is None:
        raise GoldstoneError(f"{type(model).__name__} is not a Hugging Face transformers model (no config.model_type)")
    if model_type not in ADAPTERS:
        raise GoldstoneError(f"no adapter for model type {model_type!r} (supported: {', '.join(sorted(ADAPTERS))}); "
                             "declare yours with goldstone.models.adapters.register(Adapter(model_types=("
                             f"{model_type!r},), layers=..., ...)) before use")
    return ADAPTERS[model_type]


def base_model(model: nn.Module) -> nn.Module:
    """`model` without its task heads (Hugging Face's `model.base_model`; the model itself when it has none)."""
    return getattr(model, "base_model", model)


def resolve_path(root: nn.Module, path: str) -> nn.Module:
    try:
        return root.get_submodule(path)
    except AttributeError as err:
        raise GoldstoneError(f"{type(root).__name__} has no module {path!r}: its adapter does not fit it") from err


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of `model`, in order."""
    return list(resolve_path(base_model(model), adapter_for(model).layers))


def submodule(model: nn.Module, layer: int, role: str) -> nn.Module:
    """The module playing `role` (one of `BLOCK_ROLES`, e.g. "output_projection") in block `layer`."""
    if role not in BLOCK_ROLES:
        raise GoldstoneError(f"unknown role {role!r} (roles: {', '.join(BLOCK_ROLES)})")
    path = getattr(adapter_for(model), role)
    if path is None:
        raise GoldstoneError(f"{type(model).__name__} has no {role!r} module (see its adapter)")
    blocks = block_modules(model)
    if not 0 <= layer < len(blocks):
        raise GoldstoneError(f"layer {layer} is out of range: {type(model).__name__} has {len(blocks)} layers")
    return resolve_path(blocks[layer], path)


def config_int(model: nn.Module, attr: str) -> int:
    return int(getattr(model.config, attr))


def num_layers(model: nn.Module) -> int:
    """The number of transformer blocks."""
    return config_int(model, adapter_for(model).num_layers_attr)


def num_heads(model: nn.Module) -> int:
    """The number of attention (query) heads per layer."""
    return config_int(model, adapter_for(model).num_heads_attr)


def num_key_value_heads(model: nn.Module) -> int:
    """The number of key/value heads per layer: fewer than `num_heads` under grouped-query attention."""
    attr = adapter_for(model).num_kv_heads_attr
    return config_int(model, attr) if attr and getattr(model.config, attr, None) else num_heads(model)


def head_dim(model: nn.Module) -> int:
    """d_head, the width of one head."""
    adapter = adapter_for(model)
    if adapter.head_dim_attr and getattr(model.config, adapter.head_dim_attr, None):
        return config_int(model, adapter.head_dim_attr)
    return config_int(model, adapter.hidden_size_attr) // num_heads(model)


def _require_eager(model: nn.Module) -> None:
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation != "eager":
        raise GoldstoneError(f"{type(model).__name__} uses {implementation!r} attention, which gives no attention "
                             "probabilities: load it with attn_implementation=\"eager\" (see load_eager) "
                             "or call model.set_attn_implementation(\"eager\")")


def attention_probabilities(model: nn.Module, inputs: Mapping[str, Any]) -> list[Tensor]:
    """Run the base model on `inputs` (e.g. a tokenizer's output) and return each layer's (B, H, T, T)
    attention probabilities. Needs eager attention; runs in the caller's grad mode (use eval mode, or
    dropout reaches the probabilities)."""
    adapter_for(model)
    _require_eager(model)
    outputs = base_model(model)(**inputs, output_attentions=True)
    attentions = getattr(outputs, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        raise GoldstoneError(f"{type(base_model(model)).__name__} returned no attention probabilities")
    return list(attentions)


def load_eager(path_or_name: str | os.PathLike, model_class: Any = None, **kwargs: Any) -> nn.Module:
    """Load a pretrained model with eager attention, in eval mode. `path_or_name` is a local folder holding
    config.json or a hub name; `model_class` defaults to `transformers.AutoModel`; `kwargs` go to `from_pretrained`."""
    transformers = optional_import("transformers", "hf", "load_eager")
    path = Path(path_or_name)
    if path.is_dir() and not (path / "config.json").is_file():
        raise GoldstoneError(f"{path} has no config.json: point load_eager at the folder that holds the model's config")
    model_class = model_class or transformers.AutoModel
    try:
        model = model_class.from_pretrained(str(path_or_name), attn_implementation="eager", **kwargs)
    except Exception as err:  # truncated safetensors, refused pickles, bad configs: many types, one message
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise GoldstoneError(f"cannot load the model in {str(path_or_name)!r}: {reason}") from err
    return model.eval()

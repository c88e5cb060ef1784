"""Where things live inside Hugging Face transformer models, declared once per architecture.

An `Adapter` names, as dotted module paths, the blocks, attention, projections, MLP and embeddings of one
family of architectures. The functions below read weights, attention probabilities and per-head outputs
through it, so that an observable written once works on every registered architecture. A new
architecture is one small file in goldstone/models/adapters/ that declares an `Adapter` and `register`s it.

Shapes: B batch, T tokens, H attention (query) heads, d = d_head, `hidden` the model width.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
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
                             "a new architecture is one small file in goldstone/models/adapters/")
    return ADAPTERS[model_type]


def base_model(model: nn.Module) -> nn.Module:
    """`model` without its task heads (Hugging Face's `model.base_model`; the model itself when it has none)."""
    return getattr(model, "base_model", model)


def _resolve(root: nn.Module, path: str) -> nn.Module:
    try:
        return root.get_submodule(path)
    except AttributeError as err:
        raise GoldstoneError(f"{type(root).__name__} has no module {path!r}: its adapter does not fit it") from err


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of `model`, in order."""
    return list(_resolve(base_model(model), adapter_for(model).layers))


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
    return _resolve(blocks[layer], path)


def _config_int(model: nn.Module, attr: str) -> int:
    return int(getattr(model.config, attr))


def num_layers(model: nn.Module) -> int:
    """The number of transformer blocks."""
    return _config_int(model, adapter_for(model).num_layers_attr)


def num_heads(model: nn.Module) -> int:
    """The number of attention (query) heads per layer."""
    return _config_int(model, adapter_for(model).num_heads_attr)


def num_key_value_heads(model: nn.Module) -> int:
    """The number of key/value heads per layer: fewer than `num_heads` under grouped-query attention."""
    attr = adapter_for(model).num_kv_heads_attr
    return _config_int(model, attr) if attr and getattr(model.config, attr, None) else num_heads(model)


def head_dim(model: nn.Module) -> int:
    """d_head, the width of one head."""
    adapter = adapter_for(model)
    if adapter.head_dim_attr and getattr(model.config, adapter.head_dim_attr, None):
        return _config_int(model, adapter.head_dim_attr)
    return _config_int(model, adapter.hidden_size_attr) // num_heads(model)


def _weight(module: nn.Module) -> Tensor:
    """A projection's weight as (out_features, in_features), detached; HF `Conv1D` stores it transposed."""
    from transformers.pytorch_utils import Conv1D

    weight = module.weight.detach()
    return weight.T if isinstance(module, Conv1D) else weight


def _bias(module: nn.Module) -> Tensor | None:
    return None if module.bias is None else module.bias.detach()


def qkvo_weights(model: nn.Module, layer: int) -> dict[str, Tensor]:
    """Attention weights of `layer` split by head, whatever their storage (Linear, Conv1D, fused).

    q: (H, d, hidden); k, v: (H_kv, d, hidden) with H_kv = `num_key_value_heads` (H except under
    grouped-query attention, where query head h reads key/value head h // (H / H_kv)); o: (hidden, H, d).
    Biases, where the model has them: q_bias (H, d), k_bias and v_bias (H_kv, d), o_bias (hidden,).
    Tensors are detached views of the parameters: clone before editing.
    """
    heads, kv_heads, d = num_heads(model), num_key_value_heads(model), head_dim(model)
    sizes = [heads * d, kv_heads * d, kv_heads * d]
    if adapter_for(model).fused_qkv:
        fused = submodule(model, layer, "fused_qkv")
        weights = _weight(fused).split(sizes)
        bias = _bias(fused)
        biases = (None,) * 3 if bias is None else bias.split(sizes)
    else:
        projections = [submodule(model, layer, role) for role in ("query", "key", "value")]
        weights = [_weight(p) for p in projections]
        biases = [_bias(p) for p in projections]
    out_projection = submodule(model, layer, "output_projection")
    o = _weight(out_projection)
    result = {"o": o.unflatten(1, (heads, d))}
    for name, weight, bias, n in zip("qkv", weights, biases, (heads, kv_heads, kv_heads)):
        result[name] = weight.unflatten(0, (n, d))
        if bias is not None:
            result[f"{name}_bias"] = bias.unflatten(0, (n, d))
    if out_projection.bias is not None:
        result["o_bias"] = _bias(out_projection)
    return result


def mlp_weights(model: nn.Module, layer: int) -> dict[str, Tensor]:
    """MLP weights of `layer` as (out_features, in_features): in (d_ff, hidden), out (hidden, d_ff), and gate
    (d_ff, hidden) for gated MLPs; in_bias, out_bias, gate_bias where present. Detached views of the parameters."""
    roles = {"in": "mlp_in", "out": "mlp_out"} | ({"gate": "mlp_gate"} if adapter_for(model).mlp_gate else {})
    result = {}
    for name, role in roles.items():
        module = submodule(model, layer, role)
        result[name] = _weight(module)
        if module.bias is not None:
            result[f"{name}_bias"] = _bias(module)
    return result


def embedding_weights(model: nn.Module) -> Tensor:
    """The token embedding matrix (vocab, hidden), detached."""
    return _resolve(base_model(model), adapter_for(model).embeddings).weight.detach()


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
    except OSError as err:
        raise GoldstoneError(f"cannot load {str(path_or_name)!r}: {str(err).splitlines()[0]}") from err
    return model.eval()


@contextlib.contextmanager
def _pre_hooks(hooks: Iterable[tuple[nn.Module, Callable]]) -> Iterator[None]:
    """Register forward pre-hooks while the context is open; remove them on exit, even on error."""
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_pre_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _split_heads(x: Tensor, heads: int, d: int) -> Tensor:
    if x.shape[-1] != heads * d:
        raise GoldstoneError(f"output projection input has width {x.shape[-1]}, expected {heads} heads x {d}")
    return x.unflatten(-1, (heads, d))


@contextlib.contextmanager
def capture_head_outputs(model: nn.Module, layers: Iterable[int], detach: bool = True) -> Iterator[dict[int, Tensor]]:
    """Record, per layer, the per-head outputs (B, T, H, d) entering the output projection.

    The yielded dict holds the last forward pass run inside the context and stays readable after it closes;
    the hooks are removed on exit, even on error.
    """
    heads, d = num_heads(model), head_dim(model)
    cache: dict[int, Tensor] = {}

    def make_hook(layer: int) -> Callable:
        def hook(_module: nn.Module, args: tuple) -> None:
            x = _split_heads(args[0], heads, d)
            cache[layer] = x.detach() if detach else x
        return hook

    layers = list(dict.fromkeys(layers))
    with _pre_hooks([(submodule(model, layer, "output_projection"), make_hook(layer)) for layer in layers]):
        yield cache


def _check_broadcast(name: str, tensor: Tensor, shape: torch.Size) -> None:
    try:
        fits = torch.broadcast_shapes(tensor.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise GoldstoneError(f"{name} of shape {tuple(tensor.shape)} does not broadcast to head outputs {tuple(shape)}")


@contextlib.contextmanager
def silence_heads(model: nn.Module, layer: int, mask: Tensor, means: Tensor | None = None) -> Iterator[None]:
    """Silence heads or single nodes of `layer` while the context is open.

    The output projection sees the head outputs x (B, T, H, d) as x * mask, or x * mask + means * (1 - mask)
    when `means` is given (mean ablation). `mask` (1 keeps, 0 silences) and `means` broadcast to (B, T, H, d):
    a mask of shape (H, 1) silences whole heads, (H, d) single nodes, and (B, 1, H, 1) a different choice per
    batch row, so that many ablations run in one batched pass. The hook is removed on exit, even on error.
    """
    heads, d = num_heads(model), head_dim(model)

    def hook(_module: nn.Module, args: tuple) -> tuple:
        return (_silence(_split_heads(args[0], heads, d), mask, means).flatten(-2), *args[1:])

    with _pre_hooks([(submodule(model, layer, "output_projection"), hook)]):
        yield


def _silence(x: Tensor, mask: Tensor, means: Tensor | None) -> Tensor:
    """x * mask, or x * mask + means * (1 - mask): units where mask is 0 are zeroed or set to their mean."""
    _check_broadcast("mask", mask, x.shape)
    keep = mask.to(x)
    if means is None:
        return x * keep
    _check_broadcast("means", means, x.shape)
    return x * keep + means.to(x) * (1 - keep)


UNIT_SITES = ("heads", "attention", "mlp")
"""Where the nodes of a block are read ("Single-Nodal Spontaneous Symmetry Breaking in NLP Models"): the
concatenated head outputs before the output projection (H x d nodes, head h = nodes h*d .. h*d + d - 1),
the attention sub-block's output after the projection, or the feed-forward output (both `hidden` nodes,
before the residual sum)."""


def _site(model: nn.Module, layer: int, site: str) -> tuple[nn.Module, bool]:
    """The module of `site` and whether the site is its input (True) or its output."""
    if site not in UNIT_SITES:
        raise GoldstoneError(f"unknown site {site!r} (sites: {', '.join(UNIT_SITES)})")
    if site == "mlp":
        return submodule(model, layer, "mlp_out"), False
    return submodule(model, layer, "output_projection"), site == "heads"


def site_hook(model: nn.Module, layer: int, site: str) -> str:
    """The `goldstone.core.hooks.capture` name that records the (B, T, units) activations of `site` in `layer`."""
    from goldstone.core.hooks import INPUT

    module, is_input = _site(model, layer, site)
    name = next(n for n, m in model.named_modules() if m is module)
    return name + INPUT if is_input else name


def num_units(model: nn.Module, site: str) -> int:
    """The number of nodes at `site`: H x d for "heads", the hidden size otherwise."""
    _site(model, 0, site)
    return num_heads(model) * head_dim(model) if site == "heads" else _config_int(model, adapter_for(model).hidden_size_attr)


@contextlib.contextmanager
def silence_units(model: nn.Module, layer: int, site: str, mask: Tensor, means: Tensor | None = None) -> Iterator[None]:
    """Silence nodes of `site` in `layer` while the context is open: its (B, T, units) activations x become
    x * mask, or x * mask + means * (1 - mask) (mean ablation), `mask` and `means` broadcasting to x.
    The hook is removed on exit, even on error."""
    module, is_input = _site(model, layer, site)
    if is_input:
        with _pre_hooks([(module, lambda _m, args: (_silence(args[0], mask, means), *args[1:]))]):
            yield
        return
    handle = module.register_forward_hook(lambda _m, _args, out: _silence(out, mask, means))
    try:
        yield
    finally:
        handle.remove()

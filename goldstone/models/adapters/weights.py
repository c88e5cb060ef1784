"""Weight views through an adapter: per-layer Q/K/V/O and MLP weights (per head where they split),
and the token embeddings, as (out_features, in_features) tensors whatever the module type."""

from __future__ import annotations

from torch import Tensor, nn

from goldstone.models.adapters.architecture import (adapter_for, base_model, head_dim, num_heads, num_key_value_heads,
                                                    resolve_path, submodule)


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
    return resolve_path(base_model(model), adapter_for(model).embeddings).weight.detach()

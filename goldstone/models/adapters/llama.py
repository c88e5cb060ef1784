"""Llama: pre-RMSNorm causal decoder with rotary positions, grouped-query attention and a gated MLP."""

from goldstone.models.adapters.architecture import Adapter, register

LLAMA = register(Adapter(
    model_types=("llama",),
    layers="layers",
    embeddings="embed_tokens",
    attention="self_attn",
    query="self_attn.q_proj",
    key="self_attn.k_proj",
    value="self_attn.v_proj",
    output_projection="self_attn.o_proj",
    mlp_in="mlp.up_proj",
    mlp_gate="mlp.gate_proj",
    mlp_out="mlp.down_proj",
    head_dim_attr="head_dim",
    num_kv_heads_attr="num_key_value_heads",
))

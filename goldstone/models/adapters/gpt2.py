"""GPT-2: pre-LN causal decoder; Q/K/V fused in one Conv1D (weights stored as (in, out))."""

from goldstone.models.adapters.architecture import Adapter, register

GPT2 = register(Adapter(
    model_types=("gpt2",),
    layers="h",
    embeddings="wte",
    attention="attn",
    fused_qkv="attn.c_attn",
    output_projection="attn.c_proj",
    mlp_in="mlp.c_fc",
    mlp_out="mlp.c_proj",
    num_layers_attr="n_layer",
    num_heads_attr="n_head",
    hidden_size_attr="n_embd",
))

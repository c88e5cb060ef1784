"""DistilBERT: post-LN encoder whose self-attention module holds Q/K/V and the output projection."""

from goldstone.models.adapters.architecture import Adapter, register

DISTILBERT = register(Adapter(
    model_types=("distilbert",),
    layers="transformer.layer",
    embeddings="embeddings.word_embeddings",
    attention="attention",
    query="attention.q_lin",
    key="attention.k_lin",
    value="attention.v_lin",
    output_projection="attention.out_lin",
    mlp_in="ffn.lin1",
    mlp_out="ffn.lin2",
    num_layers_attr="n_layers",
    num_heads_attr="n_heads",
    hidden_size_attr="dim",
))

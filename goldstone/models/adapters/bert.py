"""BERT, and MiniLM checkpoints (their model_type is "bert"): post-LN encoder with separate Q/K/V Linears."""

from goldstone.models.adapters.architecture import Adapter, register

BERT = register(Adapter(
    model_types=("bert",),
    layers="encoder.layer",
    embeddings="embeddings.word_embeddings",
    attention="attention.self",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    output_projection="attention.output.dense",
    mlp_in="intermediate.dense",
    mlp_out="output.dense",
))

"""Architecture adapters: where blocks, attention, projections and embeddings live in Hugging Face models.

Importing this package registers every adapter; a new architecture is one small file here that declares an
`Adapter` and calls `register`, plus its import below.
"""

from goldstone.models.adapters import bert, distilbert, gpt2, llama, roberta  # noqa: F401  (each registers itself)
from goldstone.models.adapters.base import (
    ADAPTERS,
    BLOCK_ROLES,
    UNIT_SITES,
    Adapter,
    adapter_for,
    attention_probabilities,
    base_model,
    block_modules,
    capture_head_outputs,
    embedding_weights,
    head_dim,
    load_eager,
    mlp_weights,
    num_heads,
    num_key_value_heads,
    num_layers,
    num_units,
    qkvo_weights,
    register,
    silence_heads,
    silence_units,
    site_hook,
    submodule,
)

__all__ = [
    "ADAPTERS",
    "BLOCK_ROLES",
    "UNIT_SITES",
    "Adapter",
    "adapter_for",
    "attention_probabilities",
    "base_model",
    "block_modules",
    "capture_head_outputs",
    "embedding_weights",
    "head_dim",
    "load_eager",
    "mlp_weights",
    "num_heads",
    "num_key_value_heads",
    "num_layers",
    "num_units",
    "qkvo_weights",
    "register",
    "silence_heads",
    "silence_units",
    "site_hook",
    "submodule",
]

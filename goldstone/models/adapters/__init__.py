"""Architecture adapters: where blocks, attention, projections and embeddings live in Hugging Face models.

Importing this package registers every adapter. A new architecture is one small file here that declares an
`Adapter` and calls `register` (plus its import below), or, from your own code, ``register(Adapter(...))``
before use. `architecture` maps module paths, `weights` reads weight views, `interventions` records and
silences nodes.
"""

from goldstone.models.adapters import bert, distilbert, gpt2, llama, roberta  # noqa: F401  (each registers itself)
from goldstone.models.adapters.architecture import (
    ADAPTERS,
    BLOCK_ROLES,
    Adapter,
    adapter_for,
    attention_probabilities,
    base_model,
    block_modules,
    head_dim,
    load_eager,
    num_heads,
    num_key_value_heads,
    num_layers,
    register,
    submodule,
)
from goldstone.models.adapters.interventions import (
    UNIT_SITES,
    capture_head_outputs,
    num_units,
    silence_heads,
    silence_units,
    site_hook,
)
from goldstone.models.adapters.weights import embedding_weights, mlp_weights, qkvo_weights

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

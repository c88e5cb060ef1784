"""Experiments, one module each: a config dataclass and a function of a `RunContext`, registered
with `@experiment` and installed as an entry point (``pyproject.toml``). No experiment imports
another: what two share lives in a lower layer (models, training, data)."""

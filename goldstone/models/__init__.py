"""Models: equivariant layers and the networks built from them."""

from goldstone.models.deep_mlp import DeepMLP
from goldstone.models.equivariant import GenericLinear, OkLinear, RadialActivation, U1Linear

__all__ = ["DeepMLP", "GenericLinear", "OkLinear", "RadialActivation", "U1Linear"]

"""Goldstone: a laboratory for symmetry breaking and phase transitions in neural-network learning."""

from goldstone.api import list_experiments, run, sweep

__version__ = "0.1.0"
__all__ = ["list_experiments", "run", "sweep", "__version__"]

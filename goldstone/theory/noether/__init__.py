"""Noether's learning dynamics: symmetry groups of a model's parameters, their detection, and the
theory of how finite-step SGD breaks their conservation laws."""

from goldstone.theory.noether.detection import Symmetries, detect_symmetries
from goldstone.theory.noether.families import KINDS, ChargeMap, Family, Member, SymmetryGroup

__all__ = ["KINDS", "ChargeMap", "Family", "Member", "Symmetries", "SymmetryGroup", "detect_symmetries"]

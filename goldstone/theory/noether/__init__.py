"""Noether's learning dynamics: the symmetry groups of a model's parameters (families, members,
generators) and the theory of how finite-step SGD breaks their conservation laws (`recursions`).
Groups are found in a model by `goldstone.observables.symmetry_detection.detect_symmetries`."""

from goldstone.theory.noether.families import KINDS, ChargeMap, Family, Member, SymmetryGroup

__all__ = ["KINDS", "ChargeMap", "Family", "Member", "SymmetryGroup"]

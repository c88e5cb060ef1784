"""Observables: each accumulates with update(), returns a typed Result from compute()."""

from goldstone.observables.jacobian import JacobianSpectrum, ProtectedJacobian
from goldstone.observables.order_parameter import OrderParameter
from goldstone.observables.overlap import Overlap

__all__ = ["JacobianSpectrum", "OrderParameter", "Overlap", "ProtectedJacobian"]

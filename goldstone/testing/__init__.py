"""Test helpers for your own models and runs: equivariance checks (e3nn-style), a definition-level
head-UAS reference, and a kill-and-resume check (`goldstone.testing.kill_resume`)."""

from goldstone.testing.equivariance import Invariant, assert_equivariant, equivariance_error
from goldstone.testing.head_uas import head_uas_reference

__all__ = ["Invariant", "assert_equivariant", "equivariance_error", "head_uas_reference"]

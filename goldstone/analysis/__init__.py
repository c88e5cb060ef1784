"""Analysis of logged training curves: change points and transition onsets."""

from goldstone.analysis.onsets import Transition, detect_changepoints, find_drop, find_rise, lag, onset_bands

__all__ = ["Transition", "detect_changepoints", "find_drop", "find_rise", "lag", "onset_bands"]

"""Analysis of logged results and recorded states: change points and transition onsets,
specialisation and crossover of units, Lyapunov spectra, phase retention, winding numbers and
vortex tracks, entanglement of attention maps and weight updates, treebank UAS."""

from goldstone.analysis.onsets import Transition, detect_changepoints, find_drop, find_rise, lag, onset_bands

__all__ = ["Transition", "detect_changepoints", "find_drop", "find_rise", "lag", "onset_bands"]

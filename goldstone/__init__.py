"""Goldstone: a laboratory for symmetry breaking and phase transitions in neural-network learning.

The public API, importable from here (each name is imported when first used, so ``import
goldstone`` stays fast):

- attach to your own training: `Monitor`, `trainer_callback`, `scan_checkpoints`, `measure`; read
  the tidy frames they give with `series`;
- write your own observable: `Observable`, `ParameterObservable`, `Probe`, `Result`;
- observables: `GradientNorms`, `WeightNorms`, `OrderParameter`, `Overlap`, `ProtectedJacobian`,
  `JacobianSpectrum`, `HeadUAS`, `MinimalPairAccuracy`, `UnitActivations`, `UnitPerformance`, `HeadSpecialisation`, `NeuronCensus`,
  `NoetherCharges`, `WeightStatistics`, `AttentionPatterns`, `LossCurvature`, `RepresentationDrift`,
  `RepresentationAlignment`;
- functions of a model, its weights or its states: `detect_symmetries`, `neuron_census`,
  `neural_collapse`, `linear_cka`, `entanglement_profile`, `read_weights`, `unit_performance`
  (with `UnitGroups`, `fit_readout`), `phase_retention`, `protected_direction`,
  `gated_winding_numbers`, `track_vortices`; `assert_equivariant` tests a layer; `minilm_path`
  locates the packaged MiniLM;
- experiments: `run`, `sweep`, `list_experiments`, `load` (a run or sweep folder, read back);
  every finding on your own model or run: `audit`;
- figures from tidy frames, your own runs' included: `goldstone.plotting` (`phase_diagram`,
  `curves`, `head_heatmap`, `audit_timeline`), imported when first used.
"""

import importlib

__version__ = "0.1.0"

_HOMES = {
    "Monitor": "goldstone.core.monitor",
    "trainer_callback": "goldstone.core.monitor",
    "scan_checkpoints": "goldstone.core.monitor",
    "measure": "goldstone.core.observable",
    "accumulate": "goldstone.core.observable",
    "Observable": "goldstone.core.observable",
    "Probe": "goldstone.core.observable",
    "Result": "goldstone.core.result",
    "series": "goldstone.core.frames",
    "GoldstoneError": "goldstone.core.errors",
    "read_weights": "goldstone.core.weights",
    "ParameterObservable": "goldstone.observables",
    "GradientNorms": "goldstone.observables",
    "WeightNorms": "goldstone.observables",
    "OrderParameter": "goldstone.observables",
    "Overlap": "goldstone.observables",
    "ProtectedJacobian": "goldstone.observables",
    "JacobianSpectrum": "goldstone.observables",
    "HeadUAS": "goldstone.observables",
    "MinimalPairAccuracy": "goldstone.observables",
    "UnitPerformance": "goldstone.observables",
    "HeadSpecialisation": "goldstone.observables",
    "NeuronCensus": "goldstone.observables",
    "NoetherCharges": "goldstone.observables",
    "WeightStatistics": "goldstone.observables",
    "AttentionPatterns": "goldstone.observables",
    "LossCurvature": "goldstone.observables",
    "RepresentationAlignment": "goldstone.observables",
    "RepresentationDrift": "goldstone.observables",
    "neuron_census": "goldstone.observables",
    "neural_collapse": "goldstone.observables",
    "linear_cka": "goldstone.observables",
    "UnitActivations": "goldstone.observables",
    "UnitGroups": "goldstone.observables.unit_performance",
    "fit_readout": "goldstone.observables.unit_performance",
    "unit_performance": "goldstone.observables.unit_performance",
    "detect_symmetries": "goldstone.observables",
    "entanglement_profile": "goldstone.observables.entanglement",
    "phase_retention": "goldstone.analysis.phase_retention",
    "protected_direction": "goldstone.observables.jacobian",
    "gated_winding_numbers": "goldstone.analysis.vortices",
    "track_vortices": "goldstone.analysis.vortex_tracks",
    "assert_equivariant": "goldstone.testing",
    "minilm_path": "goldstone.models.pretrained",
    "audit": "goldstone.lab.audit",
    "run": "goldstone.api",
    "sweep": "goldstone.api",
    "load": "goldstone.api",
    "list_experiments": "goldstone.api",
}

_SUBMODULES = {"plotting": "goldstone.plotting"}
"""Public modules reached as attributes (``goldstone.plotting.curves``), imported when first used."""

__all__ = [*_HOMES, *_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])  # which binds it here
    if name not in _HOMES:
        raise AttributeError(f"module 'goldstone' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

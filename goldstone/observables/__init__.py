"""Observables: each accumulates with update(), returns a typed Result from compute()."""

from goldstone.observables.alignment import cross_layer_alignment, linear_cka, neuron_balance
from goldstone.observables.attention_patterns import AttentionPatterns
from goldstone.observables.head_uas import HeadUAS
from goldstone.observables.jacobian import JacobianSpectrum, ProtectedJacobian
from goldstone.observables.loss_curvature import LossCurvature
from goldstone.observables.neural_collapse import neural_collapse
from goldstone.observables.neuron_census import NeuronCensus, neuron_census
from goldstone.observables.noether_charges import NoetherCharges
from goldstone.observables.order_parameter import OrderParameter
from goldstone.observables.overlap import Overlap
from goldstone.observables.parameters import GradientNorms, ParameterObservable, WeightNorms
from goldstone.observables.pseudo_likelihood import MinimalPairAccuracy
from goldstone.observables.representation_alignment import RepresentationAlignment
from goldstone.observables.representation_drift import RepresentationDrift
from goldstone.observables.symmetry_detection import Symmetries, detect_symmetries
from goldstone.observables.unit_performance import HeadSpecialisation, UnitActivations, UnitPerformance
from goldstone.observables.weight_statistics import WeightStatistics

__all__ = ["AttentionPatterns", "GradientNorms", "HeadSpecialisation", "HeadUAS", "JacobianSpectrum", "LossCurvature", "MinimalPairAccuracy", "NeuronCensus", "NoetherCharges", "OrderParameter", "Overlap", "ParameterObservable",
           "ProtectedJacobian", "RepresentationAlignment", "RepresentationDrift", "Symmetries", "UnitActivations", "UnitPerformance", "WeightNorms", "WeightStatistics", "cross_layer_alignment", "detect_symmetries", "linear_cka", "neural_collapse",
           "neuron_balance", "neuron_census"]

"""How specialised and how distinct units are: symmetry breaking among attention heads.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter): after training each
head is expert on its own limited subset of labels, which it is not at initialisation. From the label sets L_u
(a (G, K) bool matrix, e.g. the recognised labels of `goldstone.observables.label_clusters`):

- labels per unit:    mean |L_u|;
- specialisation:     1 - mean |L_u| / K (1: each unit covers nothing, 0: every unit covers every label);
- overlap:            mean over unit pairs u < v with L_u | L_v non-empty of |L_u & L_v| / |L_u | L_v| (Jaccard);
- coverage entropy:   H(c / sum c) / log K, c_a the number of units whose set holds label a (1: the units
                      cover the labels evenly);
- distinct sets:      the number of different non-empty label sets / G.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from goldstone.core.result import Result


@dataclasses.dataclass
class SpecialisationResult(Result):
    observable = "specialisation"
    labels_per_unit: float = 0.0
    specialisation: float = 0.0
    overlap: float = 0.0
    coverage_entropy: float = 0.0
    distinct_sets: float = 0.0


def specialisation(label_sets: torch.Tensor) -> SpecialisationResult:
    """The measures above for (G, K) label sets."""
    sets = label_sets.bool()
    g, k = sets.shape
    size = sets.sum(-1).double()
    both = sets.double() @ sets.double().T
    union = size.unsqueeze(0) + size.unsqueeze(1) - both
    pairs = torch.triu(torch.ones(g, g, dtype=torch.bool), diagonal=1) & (union > 0)
    overlap = float((both[pairs] / union[pairs]).mean()) if pairs.any() else math.nan
    coverage = sets.sum(0).double()
    if coverage.sum() > 0 and k > 1:
        p = coverage / coverage.sum()
        entropy = float(-(p[p > 0] * p[p > 0].log()).sum() / math.log(k))
    else:
        entropy = math.nan
    nonempty = sets[sets.any(-1)]
    distinct = len(torch.unique(nonempty, dim=0)) / g if len(nonempty) else 0.0
    return SpecialisationResult(labels_per_unit=float(size.mean()), specialisation=float(1 - size.mean() / k),
                                overlap=overlap, coverage_entropy=entropy, distinct_sets=distinct)

"""Clusters, noise and signal-to-noise of a unit's label x output matrix.

"Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross, Koresh, Kanter), after the same
lab's "Advanced deep architecture pruning using single filter performance". For a unit's matrix V[a, k]
(summed readout field on output k over the inputs of true label a):

- normalised matrix:   Vn = V / max_{a,k} |V[a, k]|;  thresholded T = Vn >= threshold (0.3 in their code);
- recognised labels:   a with T[a, a] (the diagonal above threshold); labels per unit = their number;
- clusters:            greedy: seed with the unclustered recognised label of largest Vn[a, a], then add, in
                       decreasing Vn[b, b], each recognised label that keeps the cluster's square block of T
                       all above threshold; repeat until every recognised label is in a cluster;
- noise:               the number of above-threshold elements of T outside the cluster squares;
- SNR:                 mean of Vn over the cluster squares / mean of Vn over the noise elements
                       (inf without noise, nan without clusters).

Everything is batched over units (G, K, K); the greedy search loops over labels only.
"""

from __future__ import annotations

import dataclasses

import torch

THRESHOLD = 0.3


@dataclasses.dataclass
class LabelClusters:
    """Per unit (G units, K labels): recognised (G, K) bool, cluster (G, K) cluster id or -1, noise (G,) count,
    snr (G,), and the normalised matrix (G, K, K)."""
    normalised: torch.Tensor
    recognised: torch.Tensor
    cluster: torch.Tensor
    noise: torch.Tensor
    snr: torch.Tensor

    def sizes(self) -> torch.Tensor:
        """Sizes of all clusters of all units, as one flat tensor."""
        ids = self.cluster[self.cluster >= 0]
        units = torch.nonzero(self.cluster >= 0)[:, 0]
        keys = units * self.cluster.shape[1] + ids
        return torch.unique(keys, return_counts=True)[1]


def normalise(matrix: torch.Tensor) -> torch.Tensor:
    """V / max |V| per unit (a unit whose matrix is all zero stays zero)."""
    scale = matrix.abs().amax(dim=(-2, -1), keepdim=True)
    return matrix / torch.where(scale > 0, scale, torch.ones_like(scale))


def label_clusters(matrix: torch.Tensor, threshold: float = THRESHOLD) -> LabelClusters:
    """Recognised labels, greedy clusters, noise and SNR of (G, K, K) label x output matrices."""
    normalised = normalise(matrix.double())
    above = normalised >= threshold
    mutual = above & above.transpose(-2, -1)
    diag = torch.diagonal(normalised, dim1=-2, dim2=-1)
    recognised = torch.diagonal(above, dim1=-2, dim2=-1)
    order = torch.argsort(torch.where(recognised, diag, -torch.inf), dim=-1, descending=True, stable=True)
    units = torch.arange(matrix.shape[0])
    cluster = torch.full(recognised.shape, -1, dtype=torch.long)
    for round_ in range(matrix.shape[-1]):
        free = recognised & (cluster < 0)
        if not free.any():
            break
        members = torch.zeros_like(free)
        for position in range(matrix.shape[-1]):
            label = order[:, position]
            candidate = free[units, label]
            fits = (mutual[units, label] | ~members).all(-1)  # block stays above threshold with `label` added
            join = candidate & fits
            members[units[join], label[join]] = True
            free[units[join], label[join]] = False
        cluster[members] = round_
    same = (cluster.unsqueeze(-1) == cluster.unsqueeze(-2)) & (cluster >= 0).unsqueeze(-1)
    noisy = above & ~same
    noise = noisy.sum((-2, -1))
    signal = _mean(normalised, same)
    snr = torch.where(noise > 0, signal / _mean(normalised, noisy), torch.where(same.any((-2, -1)), torch.inf, torch.nan))
    return LabelClusters(normalised, recognised, cluster, noise, snr)


def _mean(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    count = where.sum((-2, -1))
    total = torch.where(where, values, 0).sum((-2, -1))
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan)

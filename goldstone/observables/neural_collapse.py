"""Neural collapse NC1-NC4 ("Prevalence of Neural Collapse during the Terminal Phase of Deep
Learning Training", Papyan, Han and Donoho, 2020), from penultimate features and the classifier.

With class means mu_c, a centre mu_G, M = [mu_c - mu_G] (K x p), Sigma_B = M^T M / K and Sigma_W the
within-class covariance (1/N). The centre is a convention that matters only for imbalanced classes:
``centre="class_means"`` (the default) takes the mean of the class means, Papyan, Han and Donoho's
global mean for their balanced sets; ``centre="samples"`` the sample-weighted mean of all features,
as `tding1/Neural-Collapse`'s code computes it. With unequal class counts NC1, NC2 (means) and NC3
differ between the two.

- NC1 = Tr(Sigma_W Sigma_B^+) / K (pseudo-inverse, divided by K, as `tding1/Neural-Collapse`; the
  Papyan/Han notebooks invert the top K-1 eigenpairs and often drop the /K), with the robust
  companions Tr(Sigma_W) / Tr(Sigma_B) and the class-distance-normalised variance (CDNV, mean over
  class pairs of (Var_i + Var_j) / (2 |mu_i - mu_j|^2));
- NC2: equinorm Std_c |mu_c - mu_G| / Avg_c |mu_c - mu_G| (and for the classifier rows w_c),
  equiangularity Std_{c != c'} cos, maximal angle Avg_{c != c'} |cos + 1/(K - 1)|;
- NC3 = |W^T / |W|_F - M^T / |M|_F|_F^2 (squared, as the Papyan/Han code);
- NC4 = share of examples whose classifier prediction differs from the nearest class mean.
"""

from __future__ import annotations

import dataclasses

import torch

from goldstone.core.errors import GoldstoneError
from goldstone.core.result import Result, dims


@dataclasses.dataclass
class NeuralCollapseResult(Result):
    """NC1-NC4 (see the module docstring); the fields of the classifier are None without one."""
    observable = "neural_collapse"
    nc1: torch.Tensor = dims()
    nc1_trace_ratio: torch.Tensor = dims()
    nc1_cdnv: torch.Tensor = dims()
    equinorm_means: torch.Tensor = dims()
    equiangular_means: torch.Tensor = dims()
    max_angle_means: torch.Tensor = dims()
    equinorm_weights: torch.Tensor = dims()
    equiangular_weights: torch.Tensor = dims()
    max_angle_weights: torch.Tensor = dims()
    nc3: torch.Tensor = dims()
    nc4: torch.Tensor = dims()


def _cosine_stats(vectors: torch.Tensor) -> tuple[float, float, float]:
    """(equinorm, equiangularity, maximal-angle deviation) of the rows of `vectors`."""
    k = len(vectors)
    norms = vectors.norm(dim=1)
    unit = vectors / norms[:, None].clamp_min(1e-300)
    cos = unit @ unit.T
    off = cos[~torch.eye(k, dtype=torch.bool)]
    return (float(norms.std() / norms.mean()), float(off.std()), float((off + 1 / (k - 1)).abs().mean()))


CENTRES = ("class_means", "samples")


def neural_collapse(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None,
                    bias: torch.Tensor | None = None, centre: str = "class_means") -> NeuralCollapseResult:
    """NC1-NC4 of `features` (N, p) with integer `labels` (N,), and the classifier `weight` (K, p)
    and `bias` (K,) for NC2 (weights), NC3 and NC4; `centre`: "class_means" or "samples" (see the
    module docstring)."""
    if centre not in CENTRES:
        raise ValueError(f"centre must be one of {', '.join(CENTRES)}, got {centre!r}")
    features, labels = features.detach().double(), labels.detach().long()
    classes, counts = labels.unique(return_counts=True)
    if len(classes) < 2:
        raise GoldstoneError(f"neural collapse needs at least two classes; the labels hold {len(classes)}")
    if int(counts.min()) < 2:
        lonely = int(classes[counts.argmin()])
        raise GoldstoneError(f"neural collapse: class {lonely} has a single example (within-class variance is "
                             "undefined); give at least two per class")
    k, n = len(classes), len(features)
    index = torch.searchsorted(classes, labels)
    means = torch.zeros(k, features.shape[1], dtype=torch.float64).index_add_(0, index, features) / counts[:, None]
    m = means - (means.mean(0) if centre == "class_means" else features.mean(0))
    within = features - means[index]
    sigma_w = within.T @ within / n
    sigma_b = m.T @ m / k
    variances = torch.zeros(k, dtype=torch.float64).index_add_(0, index, within.pow(2).sum(1)) / counts
    gaps = torch.cdist(means, means).pow(2)
    pairs = torch.triu_indices(k, k, 1)
    cdnv = (variances[pairs[0]] + variances[pairs[1]]) / (2 * gaps[pairs[0], pairs[1]].clamp_min(1e-300))
    equinorm, equiangular, max_angle = _cosine_stats(m)
    out = {"nc1": float(torch.trace(sigma_w @ torch.linalg.pinv(sigma_b, hermitian=True)) / k),
           "nc1_trace_ratio": float(torch.trace(sigma_w) / torch.trace(sigma_b)), "nc1_cdnv": float(cdnv.mean()),
           "equinorm_means": equinorm, "equiangular_means": equiangular, "max_angle_means": max_angle}
    if weight is not None:
        w = weight.detach().double()[classes]
        if w.shape[1] != features.shape[1]:
            raise GoldstoneError(f"neural collapse: the classifier has {w.shape[1]} inputs but the features have "
                                 f"{features.shape[1]} dimensions")
        out["equinorm_weights"], out["equiangular_weights"], out["max_angle_weights"] = _cosine_stats(w)
        out["nc3"] = float((w / w.norm() - m / m.norm()).pow(2).sum())
        logits = features @ weight.detach().double().T + (bias.detach().double() if bias is not None else 0)
        nearest = classes[torch.cdist(features, means).argmin(1)]
        out["nc4"] = float((logits.argmax(1) != nearest).double().mean())
    return NeuralCollapseResult(**{name: torch.tensor(value, dtype=torch.float64) for name, value in out.items()})

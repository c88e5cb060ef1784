"""Area-law fits of entanglement profiles: which form describes how the entropy of a cut grows
with its position ("Artificial Entanglement in the Fine-Tuning of Large Language Models", Chen
et al., 2026; the Calabrese-Cardy form of an open critical chain), with bootstrap intervals.
"""

from __future__ import annotations

import math

import torch


AREA_LAW_FORMS = ("area", "area_log", "calabrese_cardy", "volume")
"""F0 S = s0; F1 S = s0 + b ln min(l, n - l); F2 S = s0 + (c/6) ln[(2n/pi) sin(pi l/n)] (open chain);
F3 S = s0 + v min(l, n - l), for cut l of n sites."""


def _fit_forms(profiles: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per form: (s0, slope, AIC) of the least-squares fits to every profile (batch x cuts) at once."""
    s = profiles.to(torch.float64)
    n = s.shape[-1] + 1
    cut = torch.arange(1, n, dtype=torch.float64)
    shorter = torch.minimum(cut, n - cut)
    features = {"area": None, "area_log": torch.log(shorter),
                "calabrese_cardy": torch.log(2 * n / math.pi * torch.sin(math.pi * cut / n)) / 6, "volume": shorter}
    out = {}
    for name, feature in features.items():
        design = torch.ones(n - 1, 1, dtype=torch.float64)
        if feature is not None:
            design = torch.cat([design, feature[:, None]], 1)
        coefficients = s @ torch.linalg.pinv(design).T  # (batch, K)
        rss = (coefficients @ design.T - s).pow(2).sum(-1)
        k = design.shape[1]
        aic = (n - 1) * torch.log(rss.clamp_min(1e-300) / (n - 1)) + 2 * k
        slope = coefficients[:, 1] if k > 1 else torch.zeros(len(s), dtype=torch.float64)
        out[name] = (coefficients[:, 0], slope, rss, aic)
    return out


def area_law_fits(profile: torch.Tensor) -> dict[str, dict[str, float]]:
    """Least-squares fits of the four forms to a profile over cuts l = 1 .. n - 1, each with its
    coefficients, residual sum of squares and AIC = N ln(RSS / N) + 2 K (lower is better; N cuts, K
    coefficients). For "calabrese_cardy" the slope is reported as the effective central charge c."""
    fits = _fit_forms(profile.detach().reshape(1, -1))
    return {name: {"s0": float(s0), "slope": float(slope), "rss": float(rss), "aic": float(aic)}
            for name, (s0, slope, rss, aic) in fits.items()}


def area_law_bootstrap(profiles: torch.Tensor, draws: int = 1000, seed: int = 0,
                       level: float = 0.95) -> dict[str, dict[str, float]]:
    """`area_law_fits` of the mean of `profiles` (samples x cuts, e.g. one row per text chunk) with
    percentile bootstrap intervals over the samples: per form its fit at the mean, the interval of
    its slope, and the share `wins` of resamples in which it has the lowest AIC."""
    p = profiles.detach().to(torch.float64).reshape(-1, profiles.shape[-1])
    g = torch.Generator().manual_seed(seed)
    resampled = p[torch.randint(len(p), (draws, len(p)), generator=g)].mean(1)
    fits = _fit_forms(resampled)
    winners = torch.stack([fits[form][3] for form in AREA_LAW_FORMS]).argmin(0)
    quantiles = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    out = area_law_fits(p.mean(0))
    for i, form in enumerate(AREA_LAW_FORMS):
        low, high = torch.quantile(fits[form][1], quantiles).tolist()
        out[form].update(slope_low=low, slope_high=high, wins=float((winners == i).double().mean()))
    return out

"""When SGD noise collapses a product f = u w x onto its symmetric state u = w = 0: the exact
Lyapunov exponent of the linearised dynamics, for any batch size.

"Stochastic Collapse: How Gradient Noise Attracts SGD Dynamics Towards Simpler Subnetworks" (Chen,
Kunin et al., 2023). On the loss 1/2 (u w x - y)^2 with y = beta x + sigma eps, one SGD step on a batch
of B examples moves v = u + w by v <- (1 + eta m - eta u w q) v, with m the batch mean of x y and q
that of x^2; near the symmetric state v <- (1 + eta m) v (and u - w by 1 - eta m). Given
S = sum_i x_i^2 (chi-square, B degrees of freedom), m ~ N(beta S / B, sigma^2 S / B^2). The
symmetric state attracts, and the run collapses, iff the Lyapunov exponent

    lambda = max(E log|1 + eta m|, E log|1 - eta m|) < 0,

computed here exactly: the Gaussian expectation in closed form (`expected_log_abs_normal`), the one
over S by generalised Gauss-Laguerre quadrature. To second order in eta, E log|1 + eta m| =
eta beta - (eta^2 / 2) E[m^2] with E[m^2] = beta^2 + (2 beta^2 + sigma^2) / B: the per-example moment
(3 beta^2 + sigma^2) / B is exact only at B = 1.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma, gammaln, roots_genlaguerre, xlogy

NODES = 128
"""Gauss-Laguerre nodes over S: the exponent agrees with adaptive quadrature to 1e-12 near the
boundary and to 2e-6 deep in the collapse region (B = 1, eta = 6 eta*)."""
SERIES_LIMIT = 200.0
"""Above this half non-centrality mu^2 / 2 s^2 the asymptotic series replaces the Poisson sum."""


def expected_log_abs_normal(mu, s) -> np.ndarray:
    """E ln|X| for X ~ N(mu, s^2), elementwise. X^2 / s^2 is non-central chi-square with one degree of
    freedom, a Poisson(h = mu^2 / 2 s^2) mixture of chi-square(1 + 2j), so
    E ln|X| = 1/2 [ln(2 s^2) + sum_j Poisson(j; h) psi(j + 1/2)]; for h > `SERIES_LIMIT`,
    ln|mu| - t^2 / 2 - 3 t^4 / 4 - 5 t^6 / 2 with t = s / mu (error below 1e-9); ln|mu| at s = 0."""
    mu, s = np.broadcast_arrays(np.asarray(mu, float), np.asarray(s, float))
    out = np.empty(mu.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(s > 0, mu ** 2 / (2 * s ** 2), np.inf)
    series = half <= SERIES_LIMIT
    if series.any():
        h = half[series][:, None]
        j = np.arange(int(SERIES_LIMIT + 12 * np.sqrt(SERIES_LIMIT) + 40))
        weights = np.exp(xlogy(j, h) - h - gammaln(j + 1))
        out[series] = 0.5 * (np.log(2 * s[series] ** 2) + (weights * digamma(j + 0.5)).sum(1))
    far = ~series
    t2 = np.divide(s[far] ** 2, mu[far] ** 2, out=np.zeros(far.sum()), where=s[far] > 0)
    out[far] = np.log(np.abs(mu[far])) - t2 / 2 - 3 * t2 ** 2 / 4 - 5 * t2 ** 3 / 2
    return out


def lyapunov_exponent(lr, beta: float, noise: float, batch: int) -> np.ndarray:
    """lambda(eta) per SGD step (see the module docstring), elementwise in `lr`."""
    lr = np.atleast_1d(np.asarray(lr, float))
    t, weights = roots_genlaguerre(NODES, batch / 2 - 1)
    squares = 2 * t  # S = sum of B squared standard normals, at the quadrature nodes
    weights = weights / weights.sum()
    mean = lr[:, None] * beta * squares / batch
    spread = lr[:, None] * noise * np.sqrt(squares) / batch
    grow = (expected_log_abs_normal(1 + mean, spread) * weights).sum(1)
    shrink = (expected_log_abs_normal(1 - mean, spread) * weights).sum(1)
    return np.maximum(grow, shrink)


def second_order_exponent(lr, beta: float, noise: float, batch: int) -> np.ndarray:
    """eta beta - (eta^2 / 2) (beta^2 + (2 beta^2 + sigma^2) / B): `lyapunov_exponent` to second order."""
    lr = np.asarray(lr, float)
    return lr * beta - lr ** 2 / 2 * (beta ** 2 + (2 * beta ** 2 + noise ** 2) / batch)


def collapse_boundary(beta: float, noise: float, batch: int) -> float:
    """The smallest learning rate eta* where `lyapunov_exponent` turns negative: collapse above it
    (up to the much larger eta where |eta m| >> 1 makes the exponent positive again: divergence)."""
    guess = 2 * beta / (beta ** 2 + (2 * beta ** 2 + noise ** 2) / batch)
    grid = np.geomspace(guess / 10, guess * 10, 81)
    exponent = lyapunov_exponent(grid, beta, noise, batch)
    first = int(np.argmax(exponent < 0))
    if exponent[first] >= 0:
        raise ValueError(f"no collapse for beta={beta}, noise={noise}, batch={batch} near eta = {guess:.3g}")
    return brentq(lambda lr: float(lyapunov_exponent(lr, beta, noise, batch)[0]), grid[first - 1], grid[first],
                  xtol=1e-12)

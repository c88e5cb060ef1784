"""Mean-field signal propagation in deep networks of O(k) / U(1) equivariant blocks.

Implements the large-width theory of "Spontaneous Symmetry Breaking and Goldstone
Modes for Deep Information Propagation" (Iqbal, Keller, Song, Miyato, Welling).

Network: features split into blocks of size ``k`` (``k = 2`` is U(1), complex
pairs), linear layers ``W = w (x) I_k`` without bias, radial nonlinearity
``g(v) = tanh(|v|) v / |v|`` per block.  With the order parameter
``c = mean_blocks |v|^2`` a pre-activation block is ``h = sigma_w sqrt(c) zeta``,
where ``u = |zeta|`` follows the normalised chi law with ``k`` degrees of freedom,

    p_k(u) = 2 (k/2)^(k/2) / Gamma(k/2) u^(k-1) exp(-k u^2 / 2),   E u^2 = 1.

All functions take scalar or array ``sigma_w`` and return the broadcast shape
(numpy scalars for scalar input).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq
from scipy.special import (
    gammaincc,
    gammainccinv,
    gammaincinv,
    gammaln,
    roots_genlaguerre,
    roots_hermite,
    roots_legendre,
)

from goldstone.theory.arguments import reals, whole

SIGMA_W_CRITICAL = 1.0
"""Critical weight scale: c* = 0 for sigma_w <= 1 and c* > 0 above."""

CRITICAL_EXPONENT = 1.0
"""Exponent beta in c* ~ (sigma_w - 1)^beta as sigma_w -> 1+ (so |v| ~ (sigma_w - 1)^(1/2))."""

# tanh(x) == 1 and sech(x)^2 < 1e-17 in double precision for x >= _SATURATION.
_SATURATION = 20.0
# Probability mass of the chi law neglected on either side of the quadrature range.
_CHI_TAIL = 1e-20
_N_LEGENDRE = 128
_LEGENDRE_NODES, _LEGENDRE_WEIGHTS = roots_legendre(_N_LEGENDRE)


# ----------------------------------------------------------------------------- checks


def _check_sigma(sigma_w: ArrayLike) -> np.ndarray:
    sigma = np.asarray(sigma_w, dtype=float)
    bad = sigma[~(sigma > 0)]
    if bad.size:
        raise ValueError(f"sigma_w must be > 0, got {bad.flat[0]}")
    if not np.all(np.isfinite(sigma)):
        raise ValueError(f"sigma_w must be finite, got {sigma[~np.isfinite(sigma)].flat[0]}")
    return sigma


# ------------------------------------------------------------------- chi-law quadrature


@lru_cache(maxsize=None)
def _chi_support(k: int) -> tuple[float, float]:
    """Range [u_lo, u_max] holding all but 2 * _CHI_TAIL of the chi-law mass."""
    u_lo = np.sqrt(2.0 * gammaincinv(k / 2, _CHI_TAIL) / k)
    u_max = np.sqrt(2.0 * gammainccinv(k / 2, _CHI_TAIL) / k)
    return float(u_lo), float(u_max)


def _chi_pdf(u: np.ndarray, k: int) -> np.ndarray:
    """Normalised chi density p_k(u) (E u^2 = 1), for u > 0."""
    log_norm = np.log(2.0) + (k / 2) * np.log(k / 2) - gammaln(k / 2)
    return np.exp(log_norm + (k - 1) * np.log(u) - k * u**2 / 2)


def _chi_upper_moment(m: int, u0: np.ndarray, k: int) -> np.ndarray:
    """E[u^m ; u > u0] for the normalised chi law (regularised upper gamma function)."""
    log_moment = (m / 2) * np.log(2.0 / k) + gammaln((k + m) / 2) - gammaln(k / 2)
    return np.exp(log_moment) * gammaincc((k + m) / 2, k * u0**2 / 2)


def _chi_expectation(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, k: int, m: int
) -> np.ndarray:
    """E_u[func(u, a u)] for u ~ p_k, broadcast over the array ``a >= 0``.

    Gauss-Legendre on [u_lo, u_hi] with u_hi = min(u_max, _SATURATION / a), so the
    tanh kink near u ~ 1/a is always resolved by a fixed number of nodes.  Beyond
    u_hi the integrand must equal func(u_hi, a u_hi) (u / u_hi)^m, i.e. tanh(a u) has
    saturated; that tail is added in closed form.
    """
    u_lo, u_max = _chi_support(k)
    with np.errstate(divide="ignore"):
        u_hi = np.clip(_SATURATION / a, u_lo, u_max)
    half = 0.5 * (u_hi - u_lo)[..., None]
    u = u_lo + half * (1.0 + _LEGENDRE_NODES)
    body = np.sum(half * _LEGENDRE_WEIGHTS * _chi_pdf(u, k) * func(u, a[..., None] * u), axis=-1)
    tail = func(u_hi, a * u_hi) * u_hi ** (-m) * _chi_upper_moment(m, u_hi, k)
    return body + tail


def _tanhc(x: np.ndarray) -> np.ndarray:
    """tanh(x) / x with the limit 1 at x = 0."""
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, np.tanh(safe) / safe)


def _tanh_squared(u: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.tanh(x) ** 2


def _u_tanh(u: np.ndarray, x: np.ndarray) -> np.ndarray:
    return u * np.tanh(x)


def _slope_integrand(u: np.ndarray, x: np.ndarray) -> np.ndarray:
    decay = np.exp(-2.0 * np.abs(x))  # sech^2 x = 4 e^{-2|x|} / (1 + e^{-2|x|})^2, no overflow
    return u**2 * _tanhc(x) * 4.0 * decay / (1.0 + decay) ** 2


def _c_map(c: np.ndarray, sigma: np.ndarray, k: int) -> np.ndarray:
    return _chi_expectation(_tanh_squared, sigma * np.sqrt(c), k, 0)


def _fixed_point_residual(c: float, sigma: float, k: int) -> float:
    return float(_c_map(np.asarray(c), sigma, k)) - c


def _c_map_derivative(c: np.ndarray, sigma: np.ndarray, k: int) -> np.ndarray:
    """dF/dc = sigma^2 E[u^2 sech^2(a u) tanh(a u) / (a u)], a = sigma sqrt(c)."""
    return sigma**2 * _chi_expectation(_slope_integrand, sigma * np.sqrt(c), k, 2)


def _depth_scale(chi: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(chi < 1.0, -1.0 / np.log(chi), np.inf)


# ------------------------------------------------------------------------ public API


def c_map(c: ArrayLike, sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """Length map c' = F(c) = E_u[tanh^2(sigma_w sqrt(c) u)], u ~ normalised chi_k.

    For k = 2 this is Eq. 8 of the paper,
    c^{l+1} = 2 int_0^inf du u exp(-u^2) tanh^2(u sigma_W sqrt(c^l)).
    Evaluated by fixed 128-node Gauss-Legendre quadrature (relative error ~1e-14).
    """
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    c = reals("c", c, 0)
    return _c_map(c, sigma, k)[()]


def fixed_point(sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """Non-trivial fixed point c* = F(c*) of the length map; 0 for sigma_w <= 1.

    Since tanh^2(x) >= x^2 - 2 x^4 / 3, F(c) > c on (0, c_exp / 2] with c_exp the
    near-critical estimate, and F(1) < 1; brentq on that bracket excludes c = 0.
    """
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    out = np.zeros(sigma.shape)
    lower = 0.5 * np.asarray(fixed_point_expansion(sigma, k))
    for idx in np.ndindex(sigma.shape):
        if sigma[idx] > SIGMA_W_CRITICAL:
            lo = float(lower[idx])
            out[idx] = brentq(
                _fixed_point_residual,
                lo,
                1.0,
                args=(sigma[idx], k),
                xtol=1e-15 * lo,
                rtol=4 * np.finfo(float).eps,
            )
    return out[()]


def fixed_point_expansion(sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """Near-critical fixed point c* ~ 3 (sigma_w^2 - 1) / (2 (1 + 2/k) sigma_w^4).

    Zero for sigma_w <= 1.  From F(c) = sigma^2 c - (2/3)(1 + 2/k) sigma^4 c^2 + O(c^3),
    using E u^4 = 1 + 2/k.
    """
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    ordered = np.maximum(sigma, SIGMA_W_CRITICAL)  # 0 at and below the critical point
    return (3.0 * (ordered**-2.0 - ordered**-4.0) / (2.0 * (1.0 + 2.0 / k)))[()]


def iterate_c_map(c0: ArrayLike, sigma_w: ArrayLike, depth: int, k: int = 2) -> np.ndarray:
    """Trajectory c^l = F^l(c0) for l = 0..depth; shape (depth + 1, *broadcast(c0, sigma_w))."""
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    c = reals("c0", c0, 0)
    depth = whole("depth", depth, 0)
    c, sigma = np.broadcast_arrays(c, sigma)
    trajectory = [c.copy()]
    for _ in range(depth):
        trajectory.append(_c_map(trajectory[-1], sigma, k))
    return np.stack(trajectory)


def c_map_slope(sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """chi_c = F'(c*), slope of the length map at its stable fixed point (sigma_w^2 if c* = 0)."""
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    c_star = np.asarray(fixed_point(sigma, k))
    return np.where(c_star > 0, _c_map_derivative(c_star, sigma, k), sigma**2)[()]


def depth_scale_c(sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """xi_c = -1 / ln(chi_c), the depth over which c^l relaxes to c* (inf at chi_c >= 1)."""
    return _depth_scale(np.asarray(c_map_slope(sigma_w, k)))[()]


@lru_cache(maxsize=8)
def _overlap_grid(k: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tensor Gauss grid (u, x, w, weight) for zeta_a = u e1, xi = x e1 + w e_perp.

    Generalised Gauss-Laguerre in t_u = k u^2 / 2 ~ Gamma(k/2) and t_w = k w^2 / 2 ~
    Gamma((k-1)/2); Gauss-Hermite in x ~ N(0, 1/k).  Weights sum to one.
    """
    t_u, w_u = roots_genlaguerre(n, k / 2 - 1)
    y, w_x = roots_hermite(n)
    t_w, w_w = roots_genlaguerre(n, (k - 3) / 2)
    u = np.sqrt(2.0 * t_u / k)[:, None, None]
    x = (np.sqrt(2.0 / k) * y)[None, :, None]
    w = np.sqrt(2.0 * t_w / k)[None, None, :]
    weight = (
        (w_u / w_u.sum())[:, None, None]
        * (w_x / w_x.sum())[None, :, None]
        * (w_w / w_w.sum())[None, None, :]
    )
    for arr in (u, x, w, weight):
        arr.setflags(write=False)
    return u, x, w, weight


def _overlap(rho: float, a: float, grid: tuple[np.ndarray, ...]) -> float:
    """q' = E[g(a zeta_a) . g(a zeta_b)], zeta_b = rho zeta_a + sqrt(1 - rho^2) xi."""
    u, x, w, weight = grid
    s = np.sqrt(1.0 - rho**2)
    y = rho * u + s * x
    r_b = np.sqrt(y**2 + (s * w) ** 2)
    return float(np.sum(weight * (np.tanh(a * u) * y) * (np.tanh(a * r_b) / r_b)))


def overlap_map(
    rho: ArrayLike, sigma_w: ArrayLike, k: int = 2, n_nodes: int = 96
) -> np.ndarray | float:
    """Correlation map rho -> rho' = q' / c* at the length fixed point (sigma_w > 1).

    q' = E[g(a zeta_a) . g(a zeta_b)], a = sigma_w sqrt(c*), zeta_b = rho zeta_a +
    sqrt(1 - rho^2) xi, reduced to g_a . g_b = tanh(a u) tanh(a r_b) (rho u + s x) / r_b
    and integrated on an ``n_nodes``^3 Gauss-Laguerre x Hermite x Laguerre grid.
    For U(1) this is the magnitude of the complex overlap.  Accuracy degrades as
    a grows (tanh kink at |h| ~ 1/a): with the default 96 nodes the error is
    <~1e-10 for sigma_w <= 2 and ~1e-8 at sigma_w = 3; raise ``n_nodes`` beyond.
    Memory and time scale as n_nodes^3 per element.
    """
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    rho = np.asarray(rho, dtype=float)
    if not np.all(np.abs(rho) <= 1.0):
        raise ValueError(f"rho must lie in [-1, 1], got {rho[~(np.abs(rho) <= 1.0)].flat[0]}")
    if np.any(sigma <= SIGMA_W_CRITICAL):
        raise ValueError(
            f"sigma_w must be > {SIGMA_W_CRITICAL} for overlap_map (non-trivial fixed point c* > 0), "
            f"got {sigma[sigma <= SIGMA_W_CRITICAL].flat[0]}"
        )
    n_nodes = whole("n_nodes", n_nodes, 2)
    rho, sigma = np.broadcast_arrays(rho, sigma)
    c_star = np.asarray(fixed_point(sigma, k))
    a = sigma * np.sqrt(c_star)
    grid = _overlap_grid(k, n_nodes)
    out = np.empty(rho.shape)
    for idx in np.ndindex(rho.shape):
        out[idx] = _overlap(rho[idx], a[idx], grid) / c_star[idx]
    return out[()]


def overlap_slope(sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """chi_q = d rho'/d rho at rho = 0, equal to alpha^2 / c*.

    Here alpha = E_u[u tanh(a u)] with a = sigma_w sqrt(c*) is the first Gaussian-projection
    (Stein) coefficient of g; chi_q <= 1 by Cauchy-Schwarz and chi_q -> 1 as sigma_w -> 1+.
    For sigma_w <= 1 (c* = 0) the linear regime gives chi_q = sigma_w^2.
    """
    k = whole("k", k, 2)
    sigma = _check_sigma(sigma_w)
    c_star = np.asarray(fixed_point(sigma, k))
    alpha = _chi_expectation(_u_tanh, sigma * np.sqrt(c_star), k, 1)
    ordered = c_star > 0
    ratio = np.divide(alpha**2, c_star, out=np.zeros_like(c_star), where=ordered)
    return np.where(ordered, ratio, sigma**2)[()]


def depth_scale_overlap(sigma_w: ArrayLike, k: int = 2) -> np.ndarray | float:
    """xi_q = -1 / ln(chi_q), the depth over which input correlations decay (inf at chi_q >= 1)."""
    return _depth_scale(np.asarray(overlap_slope(sigma_w, k)))[()]

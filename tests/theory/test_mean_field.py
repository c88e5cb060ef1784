"""Tests for the mean-field theory of radial-tanh O(k)/U(1) networks.

Reference: "Spontaneous Symmetry Breaking and Goldstone Modes for Deep Information
Propagation" (Iqbal, Keller, Song, Miyato, Welling).
"""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammainccinv, gammaln, ive, roots_hermite, roots_legendre
from threadpoolctl import threadpool_limits

from goldstone.theory import (
    CRITICAL_EXPONENT,
    SIGMA_W_CRITICAL,
    c_map,
    c_map_slope,
    depth_scale_c,
    depth_scale_overlap,
    fixed_point,
    fixed_point_expansion,
    iterate_c_map,
    overlap_map,
    overlap_slope,
)


def _chi_quad(f, k: int) -> float:
    """E_u[f(u)] for the normalised chi law with k degrees of freedom, by adaptive quad."""
    log_norm = np.log(2.0) + (k / 2) * np.log(k / 2) - gammaln(k / 2)

    def integrand(u):
        return np.exp(log_norm + (k - 1) * np.log(u) - k * u**2 / 2) * f(u)

    return quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-13, limit=200)[0]


# ------------------------------------------------------------------------ length map


@pytest.mark.parametrize("sigma", [0.8, 1.05, 1.5, 3.0, 10.0])
@pytest.mark.parametrize("c", [1e-6, 0.1, 0.7, 1.0])
def test_c_map_matches_paper_eq8(sigma, c):
    # Eq. 8: c' = 2 int_0^inf du u exp(-u^2) tanh^2(u sigma_W sqrt(c)); relative tol 1e-8.
    def integrand(u):
        return 2 * u * np.exp(-(u**2)) * np.tanh(u * sigma * np.sqrt(c)) ** 2

    expected = quad(integrand, 0, np.inf, epsabs=0, epsrel=1e-13, limit=200)[0]
    assert c_map(c, sigma) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("k", [3, 4, 8])
def test_c_map_general_k_matches_chi_quad(k):
    for sigma, c in [(1.1, 0.05), (2.0, 0.8), (5.0, 1.0)]:
        expected = _chi_quad(lambda u: np.tanh(sigma * np.sqrt(c) * u) ** 2, k)
        assert c_map(c, sigma, k) == pytest.approx(expected, rel=1e-10)


def test_c_map_small_c_is_linear():
    # F(c) = sigma^2 c - (2/3)(1 + 2/k) sigma^4 c^2 + O(c^3).
    for k in (2, 4):
        c, sigma = 1e-4, 1.3
        expected = sigma**2 * c - (2 / 3) * (1 + 2 / k) * sigma**4 * c**2
        assert c_map(c, sigma, k) == pytest.approx(expected, rel=1e-7)
    assert c_map(0.0, 2.0) == 0.0


def test_c_map_broadcasts():
    out = c_map(np.array([[0.1], [0.5]]), np.array([1.5, 2.0, 3.0]))
    assert out.shape == (2, 3)
    assert out[1, 2] == pytest.approx(c_map(0.5, 3.0), rel=1e-14)
    assert np.ndim(c_map(0.5, 2.0)) == 0


# ----------------------------------------------------------------------- fixed point


@pytest.mark.parametrize("k", [2, 4])
def test_fixed_point_is_fixed(k):
    sigmas = np.array([1.001, 1.01, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0])
    c_star = fixed_point(sigmas, k)
    assert c_star.shape == sigmas.shape
    assert np.all(c_star > 0)
    np.testing.assert_allclose(c_map(c_star, sigmas, k), c_star, rtol=1e-10, atol=0)
    assert np.all(np.diff(c_star) > 0)


def test_fixed_point_vanishes_at_and_below_critical():
    assert SIGMA_W_CRITICAL == 1.0
    for sigma in (0.5, 0.9, 1.0):
        assert fixed_point(sigma) == 0.0
        assert fixed_point(sigma, k=4) == 0.0
    np.testing.assert_array_equal(fixed_point(np.array([0.5, 1.0])), [0.0, 0.0])


def test_iterate_c_map_subcritical_decay_and_supercritical_convergence():
    trajectory = iterate_c_map(1.0, 0.8, 500)
    assert trajectory.shape == (501,)
    assert trajectory[0] == 1.0
    assert trajectory[-1] < 1e-3
    assert np.all(np.diff(trajectory) < 0)
    batch = iterate_c_map([1.0, 0.01], 1.5, 200, k=4)
    assert batch.shape == (201, 2)
    np.testing.assert_allclose(batch[-1], fixed_point(1.5, 4), rtol=1e-10)


@pytest.mark.parametrize("k", [2, 4])
def test_expansion_becomes_exact_near_criticality(k):
    sigmas = np.array([1.2, 1.1, 1.05, 1.01, 1.001])
    error = np.abs(fixed_point_expansion(sigmas, k) / fixed_point(sigmas, k) - 1)
    assert np.all(np.diff(error) < 0)
    assert error[-1] < 0.01
    assert fixed_point_expansion(0.9, k) == 0.0


def test_critical_exponent_from_exact_fixed_point():
    assert CRITICAL_EXPONENT == 1.0
    eps = np.array([1e-3, 1e-4])
    c_star = fixed_point(1 + eps)
    slope = np.diff(np.log(c_star)) / np.diff(np.log(eps))
    assert slope[0] == pytest.approx(CRITICAL_EXPONENT, abs=2e-3)


def test_larger_k_gives_larger_near_critical_fixed_point():
    # c* ~ 3 (sigma^2 - 1) / (2 (1 + 2/k) sigma^4): the quartic term weakens as k grows.
    for sigma in (1.001, 1.01, 1.05):
        c2, c4, c8 = (fixed_point(sigma, k) for k in (2, 4, 8))
        assert c2 < c4 < c8
    ratio = fixed_point(1.001, 4) / fixed_point(1.001, 2)
    assert ratio == pytest.approx((1 + 2 / 2) / (1 + 2 / 4), rel=1e-3)


def test_c_map_slope_and_depth_scale():
    for k in (2, 4):
        for sigma in (1.01, 1.5, 3.0):
            c_star, h = fixed_point(sigma, k), 1e-5
            numerical = (c_map(c_star * (1 + h), sigma, k) - c_map(c_star * (1 - h), sigma, k)) / (
                2 * h * c_star
            )
            assert c_map_slope(sigma, k) == pytest.approx(numerical, rel=1e-7)
            assert 0 < c_map_slope(sigma, k) < 1
    np.testing.assert_allclose(c_map_slope(np.array([0.5, 0.9])), [0.25, 0.81], rtol=1e-14)
    assert depth_scale_c(1.0) == np.inf
    assert depth_scale_c(0.5) == pytest.approx(-1 / np.log(0.25), rel=1e-12)
    # Near sigma -> 1+ the slope is 1 - (sigma^2 - 1) + ..., so xi_c ~ 1 / (sigma^2 - 1).
    assert depth_scale_c(1.001) * (1.001**2 - 1) == pytest.approx(1.0, rel=0.01)


# ----------------------------------------------------------------------- overlap map


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("sigma", [1.25, 2.0])
def test_overlap_map_endpoints_and_oddness(k, sigma):
    values = overlap_map(np.array([-1.0, -0.4, 0.0, 0.4, 1.0]), sigma, k)
    assert abs(values[2]) < 1e-12
    assert values[4] == pytest.approx(1.0, abs=1e-8)
    assert values[0] == pytest.approx(-1.0, abs=1e-8)
    assert values[1] == pytest.approx(-values[3], abs=1e-12)


@pytest.mark.parametrize("k", [2, 4])
def test_overlap_map_is_monotone_and_contracting(k):
    rho = np.linspace(0.0, 1.0, 11)
    values = overlap_map(rho, 1.5, k)
    assert np.all(np.diff(values) > 0)
    # rho* = 0 is stable and rho* = 1 repels: 0 < rho' < rho in between.
    assert np.all((values[1:-1] > 0) & (values[1:-1] < rho[1:-1]))


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("sigma", [1.1, 1.5, 2.0])
def test_overlap_slope_matches_numerical_derivative(k, sigma):
    h = 1e-3
    plus, minus = overlap_map(np.array([h, -h]), sigma, k)
    assert overlap_slope(sigma, k) == pytest.approx((plus - minus) / (2 * h), abs=1e-4)


def test_overlap_slope_tends_to_one_at_criticality():
    for k in (2, 4):
        sigmas = np.array([3.0, 2.0, 1.5, 1.2, 1.1, 1.05, 1.01, 1.001])
        chi_q = overlap_slope(sigmas, k)
        assert np.all(chi_q < 1)
        assert np.all(np.diff(chi_q) > 0)
        assert 1 - chi_q[-1] < 1e-3
        xi_q = depth_scale_overlap(sigmas, k)
        assert np.all(np.diff(xi_q) > 0)
    np.testing.assert_allclose(overlap_slope(np.array([0.5, 0.9])), [0.25, 0.81], rtol=1e-15)
    assert depth_scale_overlap(1.0) == np.inf
    assert depth_scale_overlap(0.5) == pytest.approx(-1 / np.log(0.25), rel=1e-12)


def _overlap_cartesian_k2(rho: float, sigma: float, n: int = 40) -> float:
    """rho' for k = 2 on a plain Gauss-Hermite grid over (zeta_a, xi) in R^4."""
    c_star = fixed_point(sigma, 2)
    a = sigma * np.sqrt(c_star)
    y, w = roots_hermite(n)  # weight exp(-y^2): components N(0, 1/2) as needed for k = 2
    w = w / w.sum()
    shapes = [(-1, 1, 1, 1), (1, -1, 1, 1), (1, 1, -1, 1), (1, 1, 1, -1)]
    a1, a2, x1, x2 = (y.reshape(shape) for shape in shapes)
    w1, w2, w3, w4 = (w.reshape(shape) for shape in shapes)
    weight = w1 * w2 * w3 * w4
    s = np.sqrt(1 - rho**2)
    b1, b2 = rho * a1 + s * x1, rho * a2 + s * x2
    r_a, r_b = np.hypot(a1, a2), np.hypot(b1, b2)
    g_dot = np.tanh(a * r_a) / r_a * np.tanh(a * r_b) / r_b * (a1 * b1 + a2 * b2)
    return float(np.sum(weight * g_dot)) / c_star


def _overlap_bessel(rho: float, sigma: float, k: int, n: int = 200) -> float:
    """rho' from the radial reduction: integrating the relative angle of zeta_a, zeta_b gives
    E[cos theta | r_a, r_b] = I_{k/2}(z) / I_{k/2-1}(z), z = k rho r_a r_b / (1 - rho^2);
    evaluated on a 2-D Gauss-Legendre grid (independent of the module's Laguerre/Hermite grid)."""
    c_star = fixed_point(sigma, k)
    a = sigma * np.sqrt(c_star)
    r_max = np.sqrt(2 * gammainccinv(k / 2, 1e-20) / k)
    x, w = roots_legendre(n)
    r, w = r_max * (x + 1) / 2, w * r_max / 2
    r_a, r_b = r[:, None], r[None, :]
    s2 = 1 - rho**2
    z = k * rho * r_a * r_b / s2
    base = (
        w[:, None] * w[None, :] * (r_a * r_b) ** (k - 1) * z ** (1 - k / 2)
        * np.exp(-k * (r_a**2 + r_b**2 - 2 * rho * r_a * r_b) / (2 * s2))
    )
    q = np.sum(base * ive(k / 2, z) * np.tanh(a * r_a) * np.tanh(a * r_b))
    return float(q / np.sum(base * ive(k / 2 - 1, z))) / c_star


@pytest.mark.parametrize("rho", [0.3, 0.9])
def test_overlap_map_matches_cartesian_grid_k2(rho):
    assert overlap_map(rho, 1.5) == pytest.approx(_overlap_cartesian_k2(rho, 1.5), abs=1e-5)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("sigma", [1.25, 2.0, 3.0])
def test_overlap_map_matches_bessel_reduction(k, sigma):
    for rho in (0.3, 0.7, 0.99):
        assert overlap_map(rho, sigma, k) == pytest.approx(
            _overlap_bessel(rho, sigma, k), abs=1e-5
        )


# ------------------------------------------------------------------------- errors


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="sigma_w must be > 0, got -1.0"):
        c_map(0.5, -1.0)
    with pytest.raises(ValueError, match="sigma_w must be > 0, got 0.0"):
        fixed_point(np.array([1.5, 0.0]))
    with pytest.raises(ValueError, match="sigma_w must be > 0"):
        overlap_slope(float("nan"))
    with pytest.raises(ValueError, match="k must be a whole number >= 2"):
        fixed_point(1.5, k=1)
    with pytest.raises(ValueError, match="k must be a whole number >= 2"):
        c_map(0.5, 1.5, k=2.5)
    with pytest.raises(ValueError, match="c must be finite and >= 0"):
        c_map(-0.1, 1.5)
    with pytest.raises(ValueError, match="depth must be a whole number >= 0"):
        iterate_c_map(1.0, 1.5, -1)
    with pytest.raises(ValueError, match="rho must lie in"):
        overlap_map(1.5, 2.0)
    with pytest.raises(ValueError, match="sigma_w must be > 1.0 for overlap_map"):
        overlap_map(0.5, 0.9)


# ------------------------------------------------------- finite-width simulation


def _simulate_c(k: int, sigmas: np.ndarray, seeds=(0, 1, 2), width=1024, depth=60, batch=8):
    """Order parameter c^l, shape (seed, layer, sigma, input), of deep random networks.

    Width ``width`` real features in blocks of k, layers W = w (x) I_k (for k = 2 a complex
    w with E|w_ij|^2 = sigma^2 / (width / 2), i.e. U(1)), radial tanh, inputs with c^0 = 1.
    All sigma values share the same standard-normal weights, rescaled.
    """
    n_blocks = width // k
    complex_blocks = k == 2
    n_components = 1 if complex_blocks else k
    entry_variance = 2.0 if complex_blocks else 1.0  # E|w_ij|^2 of the draws below
    gain = np.asarray(sigmas)[None, :, None, None] / np.sqrt(entry_variance * n_blocks)
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(seed)

        def draw(*shape):
            if complex_blocks:
                return rng.standard_normal((*shape, 2)).view(np.complex128)[..., 0]
            return rng.standard_normal(shape)

        v = draw(n_blocks, n_components, batch)
        v = v / np.sqrt(np.mean(np.sum(np.abs(v) ** 2, axis=1), axis=0))
        v = np.repeat(v[:, None], len(sigmas), axis=1)  # (block, sigma, component, input)
        trajectory = []
        for _ in range(depth):
            h = gain * (draw(n_blocks, n_blocks) @ v.reshape(n_blocks, -1)).reshape(v.shape)
            norm = np.sqrt(np.sum(np.abs(h) ** 2, axis=2, keepdims=True))
            v = np.tanh(norm) * h / norm
            trajectory.append(np.mean(np.sum(np.abs(v) ** 2, axis=2), axis=0))
        runs.append(trajectory)
    return np.array(runs)


@pytest.mark.parametrize("k", [2, 4])
def test_finite_width_simulation_matches_fixed_point(k):
    sigmas = np.array([0.8, 1.25, 1.5, 2.0, 3.0])
    with threadpool_limits(limits=1):  # tiny matmuls: avoid BLAS oversubscription
        c = _simulate_c(k, sigmas)
    assert c.shape == (3, 60, 5, 8)
    assert np.all(c[:, -1, 0, :] < 1e-3)  # sigma_w = 0.8: ordered phase absent, c -> 0
    # Averaged over the last 20 layers, inputs and seeds.  For k = 4 (real w) the block
    # covariance is only isotropic on average; its finite-width anisotropy lowers c by
    # about 1.5% at sigma_w = 1.25 and width 1024 (it shrinks like 1 / width).  The complex
    # U(1) layers used for k = 2 keep every block exactly isotropic.
    measured = c[:, -20:, 1:, :].mean(axis=(0, 1, 3))
    np.testing.assert_allclose(measured, fixed_point(sigmas[1:], k), rtol=0.02)

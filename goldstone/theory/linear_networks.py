"""Deep linear networks: learning dynamics and weight-decay fixed points, per teacher mode.

Population loss 1/2 |W_L ... W_1 - T|_F^2 with whitened inputs, T = U diag(s) V^T. From a small,
balanced init each teacher mode i is learned on its own, its strength a_i = u_i^T W v_i obeying
(gradient-flow time t = eta * steps)

    da/dt = L a^{2 - 2/L} (s - a)          ("Exact solutions to the nonlinear dynamics of
                                            learning in deep linear neural networks", Saxe et al.
                                            2014, for L = 2; Arora et al. 2018 for depth L)

so for L = 2 a(t) = s a0 e^{2st} / (s - a0 + a0 e^{2st}) and the half-time is ln(s/a0 - 1) / (2s):
modes are learned one after another ("saddle to saddle", Jacot et al. 2021), with the loss on the
k-th plateau 1/2 sum_{j>k} s_j^2. With weight decay lambda (grad += lambda theta), the balanced
penalty is L lambda / 2 sum sigma^{2/L}: at depth 2 the nuclear norm, so sigma_i = max(s_i - lambda, 0)
(a staircase of continuous transitions at lambda = s_i); at depth L >= 3 each mode jumps to 0
(first order) where the broken minimum stops being the global one, and the broken branch ends at
a spinodal ("Symmetry Induces Structure and Constraint of Learning", Ziyin 2024).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq


def plateau_losses(s: np.ndarray) -> np.ndarray:
    """1/2 sum_{j>k} s_j^2 for k = 0 .. len(s): the loss with the k strongest modes learned."""
    s = np.sort(np.asarray(s, float))[::-1]
    tail = np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]])
    return 0.5 * tail


def mode_strength(t: np.ndarray, s: float, a0: float, depth: int) -> np.ndarray:
    """a(t) from da/dt = L a^{2-2/L} (s - a), a(0) = a0 > 0 (logistic for L = 2)."""
    t = np.asarray(t, float)
    if depth == 2:
        grow = np.exp(np.clip(2 * s * t, None, 700))
        return s * a0 * grow / (s - a0 + a0 * grow)
    solution = solve_ivp(lambda _, a: depth * np.abs(a) ** (2 - 2 / depth) * (s - a), (0, float(t.max())), [a0],
                         t_eval=t, rtol=1e-8, atol=1e-14, method="LSODA")
    return solution.y[0]


def half_time(s: float, a0: float, depth: int) -> float:
    """Gradient-flow time at which a(t) = s / 2."""
    if depth == 2:
        return math.log(s / a0 - 1) / (2 * s)
    # integrate dt = da / (L a^{2-2/L} (s - a)) from a0 to s/2
    grid = np.geomspace(a0, s / 2, 4001)
    rate = depth * grid ** (2 - 2 / depth) * (s - grid)
    return float(np.trapezoid(1 / rate, grid))


def _penalised(sigma: float, s: float, weight_decay: float, depth: int) -> float:
    return 0.5 * (sigma - s) ** 2 + 0.5 * depth * weight_decay * sigma ** (2 / depth)


def regularised_singular_value(s: float, weight_decay: float, depth: int) -> float:
    """The end-to-end singular value at the global minimum of 1/2 (sigma - s)^2 + (L lambda / 2) sigma^{2/L}."""
    if depth == 2:
        return max(s - weight_decay, 0.0)
    broken = broken_branch(s, weight_decay, depth)
    if broken is None:
        return 0.0
    return broken if _penalised(broken, s, weight_decay, depth) < _penalised(0.0, s, weight_decay, depth) else 0.0


def broken_branch(s: float, weight_decay: float, depth: int) -> float | None:
    """The largest stationary sigma > 0 (sigma - s + lambda sigma^{2/L - 1} = 0), or None past the spinodal."""
    if weight_decay == 0:
        return s
    stationary = lambda x: x - s + weight_decay * x ** (2 / depth - 1)  # noqa: E731
    peak = (weight_decay * (1 - 2 / depth)) ** (depth / (2 * depth - 2)) if depth > 2 else 0.0
    if depth > 2 and stationary(peak) > 0:
        return None
    return brentq(stationary, max(peak, 1e-300), s + weight_decay + 1.0)


def spinodal(s: float, depth: int) -> float:
    """The weight decay at which the broken branch of a depth-L (>= 3) mode disappears."""
    return brentq(lambda lam: 1.0 if broken_branch(s, lam, depth) is None else -1.0, 1e-12, s ** (2 - 2 / depth) * 4)


def jump(s: float, depth: int) -> float:
    """The weight decay at which the global minimum of a depth-L (>= 3) mode jumps to 0."""
    return brentq(lambda lam: (regularised_singular_value(s, lam, depth) > 0) - 0.5, 1e-12, spinodal(s, depth))

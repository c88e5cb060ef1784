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

from goldstone.theory.arguments import real, reals, whole


def plateau_losses(s: np.ndarray) -> np.ndarray:
    """1/2 sum_{j>k} s_j^2 for k = 0 .. len(s): the loss with the k strongest modes learned (s: the
    teacher's singular values, read flat)."""
    s = np.sort(reals("s", s, 0).ravel())[::-1]
    tail = np.concatenate([np.cumsum((s ** 2)[::-1])[::-1], [0.0]])
    return 0.5 * tail


def _mode(s: float, a0: float, depth: int) -> tuple[float, float, int]:
    """A mode's teacher strength s > 0, start a0 > 0 and depth L >= 1, checked."""
    return real("s", s, 0, strict=True), real("a0", a0, 0, strict=True), whole("depth", depth)


def mode_strength(t: np.ndarray, s: float, a0: float, depth: int) -> np.ndarray:
    """a(t) from da/dt = L a^{2-2/L} (s - a), a(0) = a0 > 0, for times t >= 0; for L = 2 the logistic
    a = s / (1 + (s/a0 - 1) e^{-2st}), its factor computed in logarithms so that it never overflows."""
    t = reals("t", t, 0)
    s, a0, depth = _mode(s, a0, depth)
    if depth == 2:
        with np.errstate(divide="ignore"):  # s == a0: log 0 = -inf, the factor 0
            return s / (1 + np.sign(s - a0) * np.exp(np.log(abs(s - a0)) - math.log(a0) - 2 * s * t))
    times, where = np.unique(np.append(t, 0.0), return_inverse=True)
    span = (0.0, max(times[-1], 1.0))  # LSODA crawls over a tiny span
    solution = solve_ivp(lambda _, a: depth * np.abs(a) ** (2 - 2 / depth) * (s - a), span, [a0], t_eval=times,
                         rtol=1e-8, atol=1e-14, method="LSODA")
    if not solution.success:
        raise RuntimeError(f"mode_strength: the ODE solver failed ({solution.message})")
    return solution.y[0][where[:-1]].reshape(t.shape)


def half_time(s: float, a0: float, depth: int) -> float:
    """Gradient-flow time at which a(t) = s / 2, for 0 < a0 < s: ln(s/a0 - 1) / (2s) at L = 2, the
    integral of da / (L a^{2-2/L} (s - a)) from a0 to s/2 otherwise (over ln a); negative for a0 > s/2 (the
    mode passed s/2 before t = 0)."""
    s, a0, depth = _mode(s, a0, depth)
    if a0 >= s:
        raise ValueError(f"a0 must be < s (the mode grows from a0 towards s), got a0={a0!r}, s={s!r}")
    if depth == 2:
        return (math.log(s - a0) - math.log(a0)) / (2 * s)
    grid = np.geomspace(a0, s / 2, 4001)  # in ln a: dt / d ln a = a^{2/L - 1} / (L (s - a)), no underflow
    with np.errstate(over="ignore"):
        time = float(np.trapezoid(grid ** (2 / depth - 1) / (depth * (s - grid)), np.log(grid)))
    if not math.isfinite(time):
        raise ValueError(f"a0 and s: the half-time from a0={a0!r} at s={s!r} exceeds the largest float64")
    return time


def _penalised(sigma: float, s: float, weight_decay: float, depth: int) -> float:
    return 0.5 * (sigma - s) ** 2 + 0.5 * depth * weight_decay * sigma ** (2 / depth)


def _decayed(s: float, weight_decay: float, depth: int) -> tuple[float, float, int]:
    """A mode's teacher strength s >= 0, weight decay lambda >= 0 and depth L >= 1, checked."""
    return real("s", s, 0), real("weight_decay", weight_decay, 0), whole("depth", depth)


def regularised_singular_value(s: float, weight_decay: float, depth: int) -> float:
    """The end-to-end singular value at the global minimum of 1/2 (sigma - s)^2 + (L lambda / 2) sigma^{2/L}."""
    s, weight_decay, depth = _decayed(s, weight_decay, depth)
    if depth == 2:
        return max(s - weight_decay, 0.0)
    broken = broken_branch(s, weight_decay, depth)
    if broken is None:
        return 0.0
    return broken if _penalised(broken, s, weight_decay, depth) < _penalised(0.0, s, weight_decay, depth) else 0.0


def broken_branch(s: float, weight_decay: float, depth: int) -> float | None:
    """The largest stationary sigma > 0 (sigma - s + lambda sigma^{2/L - 1} = 0), or None where there is
    none: past the spinodal at L >= 3, for lambda >= s at L = 2."""
    s, weight_decay, depth = _decayed(s, weight_decay, depth)
    if weight_decay == 0:
        return s
    stationary = lambda x: x - s + weight_decay * x ** (2 / depth - 1)  # noqa: E731
    lowest = max((weight_decay * (1 - 2 / depth)) ** (depth / (2 * depth - 2)) if depth > 2 else 0.0, 1e-300)
    if stationary(lowest) > 0:  # the minimum of the stationarity condition over sigma > 0
        return None
    return brentq(stationary, lowest, s + weight_decay + 1.0)


def _scale(s: float, depth: int) -> tuple[float, int]:
    """s^{2 - 2/L} and L for a mode s > 0 at depth L >= 3: the weight decays of its transition scale so,
    since sigma = s y and lambda = s^{2 - 2/L} mu leave a problem in y and mu alone."""
    s, depth = real("s", s, 0, strict=True), whole("depth", depth, 3)
    return s ** (2 - 2 / depth), depth


def spinodal(s: float, depth: int) -> float:
    """The weight decay at which the broken branch of a depth-L (>= 3) mode disappears."""
    scale, depth = _scale(s, depth)
    return scale * brentq(lambda mu: 1.0 if broken_branch(1.0, mu, depth) is None else -1.0, 0.0, 4.0)


def jump(s: float, depth: int) -> float:
    """The weight decay at which the global minimum of a depth-L (>= 3) mode jumps to 0."""
    scale, depth = _scale(s, depth)
    return scale * brentq(lambda mu: (regularised_singular_value(1.0, mu, depth) > 0) - 0.5, 0.0, spinodal(1.0, depth))

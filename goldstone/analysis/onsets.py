"""Onsets of abrupt transitions in training curves logged at checkpoints.

Implements the change-point analysis of "Sudden Drops in the Loss: Syntax Acquisition, Phase
Transitions, and Simplicity Bias in MLMs" (Chen, Shwartz-Ziv, Cho, Leavitt, Saphra, ICLR 2024):
the window of the steep loss drop, the structure onset (start of the steepest rise of the best
head's UAS), the capabilities onset (start of the steepest rise of minimal-pair accuracy), their
lag, and bootstrap bands over seeds.

Checkpoints are usually on a log-spaced grid of steps. Change points are located by index of the
given grid and mapped back to its steps; rates are measured per unit of log-step, so on a
log-spaced grid "piecewise linear in the index" and "piecewise linear in log-step" coincide.

Automatic penalty: pen = (q + 2) * sigma^2 * ln(n) for a change of q parameters (q = 1 for a
level, 2 for a line, 1 for a kink of `find_drop`'s continuous fit), the leading term of the
modified BIC (Zhang & Siegmund, "A modified Bayes information criterion with applications to the
analysis of comparative genomic hybridization data"). On pure-noise curves of 60 points it calls a
change about once in twenty; the plain BIC, (q + 1) sigma^2 ln(n), about once in seven. sigma is
estimated robustly from the k-th differences d of the curve, k = 1 for piecewise-constant and
k = 2 for piecewise-linear models, which remove the trend everywhere but at the change points:
sigma = MAD(d) / (0.6745 * sqrt(C(2k, k))), as the k-th differences of white noise have variance
C(2k, k) sigma^2. It is floored at the float32 resolution of the curve, eps32 * max|values| (logged
metrics are rarely more precise), so that a noise-free curve still gets a positive penalty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from math import comb
from types import ModuleType

import numpy as np
from numpy.typing import ArrayLike

from goldstone.core.errors import GoldstoneError
from goldstone.core.extras import optional_import

_MAD_TO_SIGMA = 0.6745  # MAD of a standard normal
_MIN_POINTS = 4


def _prefix_sums(*terms: np.ndarray) -> list[list[float]]:
    """Row i: the sums of each term over the first i points (Python floats: fast scalar access)."""
    return np.vstack([np.zeros(len(terms)), np.cumsum(np.column_stack(terms), axis=0)]).tolist()


class _LevelCost:
    """RSS about the segment mean, in O(1) from prefix sums (ruptures' "l2" cost, faster)."""

    model = "l2"
    min_size = 1

    def fit(self, signal: np.ndarray) -> _LevelCost:
        """`signal` is (n,): value."""
        self.signal = signal
        y = signal - signal.mean()
        self.sums = _prefix_sums(np.ones_like(y), y, y * y)
        return self

    def error(self, start: int, end: int) -> float:
        n, sy, syy = (b - a for a, b in zip(self.sums[start], self.sums[end]))
        return max(syy - sy * sy / n, 0.0)


class _LineCost:
    """RSS about the least-squares line in log-step, in O(1) from prefix sums (ruptures' "linear"
    cost with covariates (1, log-step) gives the same but solves a least-squares problem per call)."""

    model = "linear"
    min_size = 2

    def fit(self, signal: np.ndarray) -> _LineCost:
        """`signal` is (n, 2): value, log-step."""
        self.signal = signal
        y, x = (signal - signal.mean(axis=0)).T
        self.sums = _prefix_sums(np.ones_like(x), x, y, x * x, x * y, y * y)
        return self

    def error(self, start: int, end: int) -> float:
        n, sx, sy, sxx, sxy, syy = (b - a for a, b in zip(self.sums[start], self.sums[end]))
        vxx, vxy, vyy = sxx - sx * sx / n, sxy - sx * sy / n, syy - sy * sy / n
        return max(vyy - vxy * vxy / vxx, 0.0)


# Segment models of `detect_changepoints`: cost and parameters per segment.
_MODELS = {"l2": (_LevelCost, 1), "linear": (_LineCost, 2)}


@cache
def _ruptures() -> tuple[ModuleType, dict[str, type]]:
    """ruptures (the 'hf' extra), imported on first use, and the costs above as its `BaseCost`s."""
    rpt = optional_import("ruptures", "hf", "change-point detection")
    base = optional_import("ruptures.base", "hf", "change-point detection").BaseCost
    return rpt, {model: type(cost.__name__, (cost, base), {}) for model, (cost, _) in _MODELS.items()}


@dataclass(frozen=True)
class Transition:
    """A drop (or rise) window [start, end] in steps; `onset` is the step where it begins."""

    start: float
    end: float
    onset: float


# ----------------------------------------------------------------------------- checks


def _grid(steps: ArrayLike) -> np.ndarray:
    grid = np.asarray(steps)
    if grid.ndim != 1 or grid.dtype.kind not in "iuf":
        raise GoldstoneError(f"steps must be a 1-D sequence of numbers, got shape {grid.shape} of {grid.dtype}")
    if len(grid) < _MIN_POINTS:
        raise GoldstoneError(f"steps has {len(grid)} checkpoints; at least {_MIN_POINTS} are needed")
    if not np.all(np.isfinite(grid)):
        raise GoldstoneError("steps contains NaN or infinity")
    rises = np.diff(grid) > 0
    if not np.all(rises):
        i = int(np.argmin(rises))
        raise GoldstoneError(f"steps must be strictly increasing: steps[{i + 1}] = {grid[i + 1]} follows {grid[i]}")
    return grid


def _curve(grid: np.ndarray, values: ArrayLike, name: str) -> np.ndarray:
    curve = np.asarray(values, dtype=float)
    if curve.shape != grid.shape:
        raise GoldstoneError(f"{name} has shape {curve.shape}; expected ({len(grid)},), one value per step")
    finite = np.isfinite(curve)
    if not np.all(finite):
        raise GoldstoneError(f"{name} is NaN or infinite at step {grid[np.argmin(finite)]}")
    return curve


def _log_steps(grid: np.ndarray) -> np.ndarray:
    if grid[0] <= 0:
        raise GoldstoneError(f"steps must be positive for log-step coordinates, got steps[0] = {grid[0]}")
    return np.log(grid.astype(float))


def _coordinates(grid: np.ndarray, axis: str) -> np.ndarray:
    """Where rates are measured: log-step ("log", for log-spaced checkpoints) or step ("linear",
    for evenly spaced ones, where log-step rates would favour any late jump)."""
    if axis not in ("log", "linear"):
        raise GoldstoneError(f"axis must be 'log' or 'linear', got {axis!r}")
    return _log_steps(grid) if axis == "log" else grid.astype(float)


# ------------------------------------------------------------------- change points


def _penalty(curve: np.ndarray, q: int, k: int) -> float:
    """Modified-BIC penalty (q + 2) sigma^2 ln(n), sigma from the MAD of the k-th differences."""
    d = np.diff(curve, n=k)
    sigma = np.median(np.abs(d - np.median(d))) / (_MAD_TO_SIGMA * np.sqrt(comb(2 * k, k)))
    sigma = max(sigma, np.finfo(np.float32).eps * np.max(np.abs(curve)))
    return (q + 2) * sigma**2 * np.log(len(curve))


def _breakpoints(grid: np.ndarray, curve: np.ndarray, model: str, n_bkps: int | None, min_size: int,
                 axis: str = "log") -> list[int]:
    """Indices of the first point of every segment after the first."""
    if model not in _MODELS:
        raise GoldstoneError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
    if isinstance(min_size, bool) or int(min_size) != min_size or not 1 <= min_size <= len(grid) // 2:
        raise GoldstoneError(f"min_size must be an integer from 1 to {len(grid) // 2}, got {min_size!r}")
    rpt, costs = _ruptures()
    cost, q = costs[model], _MODELS[model][1]
    signal = curve if model == "l2" else np.column_stack([curve, _coordinates(grid, axis)])
    if n_bkps is None:
        algo = rpt.Pelt(custom_cost=cost(), min_size=min_size, jump=1).fit(signal)
        return algo.predict(pen=_penalty(curve, q, q))[:-1]
    if isinstance(n_bkps, bool) or int(n_bkps) != n_bkps or n_bkps < 1:
        raise GoldstoneError(f"n_bkps must be a positive integer or None, got {n_bkps!r}")
    try:
        return rpt.Dynp(custom_cost=cost(), min_size=min_size, jump=1).fit(signal).predict(n_bkps=int(n_bkps))[:-1]
    except rpt.exceptions.BadSegmentationParameters:
        raise GoldstoneError(f"n_bkps={n_bkps} is too many for {len(grid)} points with min_size={min_size}") from None


def detect_changepoints(
    steps: ArrayLike, values: ArrayLike, n_bkps: int | None = None, model: str = "l2", min_size: int = 2
) -> list[float]:
    """Change points of a 1-D curve, as the steps at which each new segment starts.

    `model` is "l2" (piecewise constant) or "linear" (piecewise linear in log-step; needs positive
    steps). With `n_bkps=None` the number of change points is chosen by `ruptures.Pelt` with the
    automatic modified-BIC penalty of this module; otherwise `ruptures.Dynp` finds exactly `n_bkps`.
    Segments hold at least `min_size` points of the grid. Method of "Sudden Drops in the Loss:
    Syntax Acquisition, Phase Transitions, and Simplicity Bias in MLMs" (Chen et al., ICLR 2024).
    """
    grid = _grid(steps)
    curve = _curve(grid, values, "values")
    return [grid[i].item() for i in _breakpoints(grid, curve, model, n_bkps, min_size)]


# --------------------------------------------------------------- steepest transition


def _hinge_fit(design: np.ndarray, curve: np.ndarray, knots: list[int]) -> tuple[np.ndarray, float]:
    """Least-squares continuous piecewise-linear fit with kinks at grid points `knots`: fitted
    values and RSS. `design` holds the columns 1, x and (x - x[k])_+ for every grid point k."""
    basis = design[:, [0, 1, *(k + 2 for k in knots)]]
    fitted = basis @ np.linalg.lstsq(basis, curve, rcond=None)[0]
    return fitted, float(np.sum((curve - fitted) ** 2))


def _prune(design: np.ndarray, curve: np.ndarray, knots: list[int], pen: float) -> list[int]:
    """Backward elimination: drop knots while that lowers RSS + pen * (number of knots)."""
    score = _hinge_fit(design, curve, knots)[1] + pen * len(knots)
    while knots:
        trials = [knots[:i] + knots[i + 1 :] for i in range(len(knots))]
        scores = [_hinge_fit(design, curve, t)[1] + pen * len(t) for t in trials]
        best = int(np.argmin(scores))
        if scores[best] > score:
            break
        knots, score = trials[best], scores[best]
    return knots


def _refine(design: np.ndarray, curve: np.ndarray, knots: list[int]) -> list[int]:
    """Coordinate descent: move each knot between its neighbours to where the RSS is least."""
    rss = _hinge_fit(design, curve, knots)[1]
    moved = True
    while moved:
        moved = False
        for j in range(len(knots)):
            left = knots[j - 1] + 1 if j else 1
            right = knots[j + 1] if j + 1 < len(knots) else len(curve) - 1
            for k in range(left, right):
                trial = knots[:j] + [k] + knots[j + 1 :]
                trial_rss = _hinge_fit(design, curve, trial)[1]
                if trial_rss < rss:
                    knots, rss, moved = trial, trial_rss, True
    return knots


def _transition(steps: ArrayLike, values: ArrayLike, name: str, sign: float, axis: str = "log") -> Transition | None:
    """Steepest decline of sign * values (see `find_drop`)."""
    grid = _grid(steps)
    curve = sign * _curve(grid, values, name)
    x = _coordinates(grid, axis)
    design = np.column_stack([np.ones_like(x), x, np.maximum(x[:, None] - x[None, :], 0.0)])
    bkps = _breakpoints(grid, curve, "linear", None, 2, axis)
    # Each discontinuous change point becomes a pair of kinks, one parameter each; pruning and
    # moving them lowers RSS + pen * knots at every change until neither changes anything.
    pen = _penalty(curve, 1, 2)
    knots = sorted({k for b in bkps for k in (b - 1, b)})
    while True:
        updated = _refine(design, curve, _prune(design, curve, knots, pen))
        if updated == knots:
            break
        knots = updated
    if not knots:
        return None
    vertices = np.array([0, *knots, len(x) - 1])
    fit = _hinge_fit(design, curve, knots)[0][vertices]
    rates = np.diff(fit) / np.diff(x[vertices])
    steepest = int(np.argmin(rates))
    steep = rates <= rates[steepest] / 2
    first = last = steepest
    while first > 0 and steep[first - 1]:
        first -= 1
    while last + 1 < len(rates) and steep[last + 1]:
        last += 1
    if fit[first] - fit[last + 1] <= np.sqrt(pen):
        return None
    start, end = float(grid[vertices[first]]), float(grid[vertices[last + 1]])
    return Transition(start=start, end=end, onset=start)


def find_drop(steps: ArrayLike, loss: ArrayLike, axis: str = "log") -> Transition | None:
    """The window of steepest decline of `loss` per log-step (per step with `axis="linear"`, for
    evenly spaced checkpoints), or None if there is no transition.

    Method: `ruptures.Pelt` segments the curve as piecewise linear in log-step ("linear" model,
    automatic penalty); every change point becomes a pair of kinks of a continuous piecewise-linear
    least-squares fit, whose kinks are then pruned (modified-BIC penalty for one parameter each)
    and moved to their best grid points until neither changes the fit. Piecewise linear, not
    constant: a drop spread over several checkpoints is a ramp, which a constant fit splits into a
    staircase with no change point at its start. Continuous: the jumps between separately fitted
    lines are artefacts of curvature and noise that would pose as the steepest decline, while a
    true jump survives as a one-interval piece. The window is the run of adjacent pieces falling at
    least half as fast as the steepest (full width at half maximum of the rate), so it does not
    shrink to one piece when low noise lets the fit resolve the curvature of the drop; `onset` =
    `start`, resolved to a piece of the fit (about a grid point for a drop over a few checkpoints,
    about its width for a broad one). None when no kink survives or the window falls by no more
    than sqrt(pen), the change that one kink's penalty buys. Steps must be positive; the steepest
    decline wins, so cut an early warm-up fall from the curve if it is not the one of interest.
    For "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in
    MLMs" (Chen et al., ICLR 2024).
    """
    return _transition(steps, loss, "loss", 1.0, axis)


def find_rise(steps: ArrayLike, values: ArrayLike, axis: str = "log") -> Transition | None:
    """The window of steepest rise of `values` per log-step, or per step with `axis="linear"`
    (`find_drop` of the negated curve).

    Structure onset: `find_rise` of the best head's UAS; capabilities onset: of minimal-pair (BLiMP)
    accuracy, after "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and
    Simplicity Bias in MLMs" (Chen et al., ICLR 2024). None when no rise is found.
    """
    return _transition(steps, values, "values", -1.0, axis)


# ------------------------------------------------------------------------- summaries


def onset_bands(
    steps: ArrayLike,
    curves: ArrayLike,
    detector: Callable[[ArrayLike, ArrayLike], Transition | None] = find_rise,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.9,
) -> dict:
    """Mean onset over seeds with a percentile-bootstrap band (seeds resampled with replacement).

    `curves` is (seeds, checkpoints); `detector` maps (steps, curve) to a Transition or None.
    Onsets are averaged in log-step (geometric mean of steps), like the log-spaced grid. Returns
    {"onset": mean onset, "band": (low, high) at `level`, "onsets": per-seed onsets (NaN where the
    detector found none), "n_detected": seeds with an onset}; seeds without one are left out.
    With a single detected seed the band is (nan, nan): one seed gives a point estimate and no
    spread; with none, the onset is NaN too. For "Sudden Drops in the Loss: Syntax Acquisition,
    Phase Transitions, and Simplicity Bias in MLMs" (Chen et al., ICLR 2024).
    """
    grid = _grid(steps)
    table = np.asarray(curves, dtype=float)
    if table.ndim != 2 or table.shape[1] != len(grid):
        raise GoldstoneError(f"curves must be (seeds, {len(grid)}), one row per seed; got shape {table.shape}")
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise GoldstoneError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise GoldstoneError(f"level must lie strictly between 0 and 1, got {level!r}")
    for i, row in enumerate(table):
        _curve(grid, row, f"curves[{i}]")
    transitions = [detector(grid, row) for row in table]
    onsets = np.array([np.nan if t is None else t.onset for t in transitions])
    logs = np.log(onsets[~np.isnan(onsets)])
    onset = float(np.exp(logs.mean())) if len(logs) else float("nan")
    band = (float("nan"), float("nan"))
    if len(logs) > 1:
        draws = np.random.default_rng(seed).integers(0, len(logs), size=(int(n_boot), len(logs)))
        low, high = np.exp(np.quantile(logs[draws].mean(axis=1), [(1 - level) / 2, (1 + level) / 2]))
        band = (float(low), float(high))
    return {"onset": onset, "band": band, "onsets": onsets, "n_detected": len(logs)}


def lag(steps: ArrayLike, loss: ArrayLike, uas: ArrayLike) -> float:
    """Structure onset minus loss-drop onset, in steps: `find_rise(uas).onset - find_drop(loss).onset`.

    After "Sudden Drops in the Loss: Syntax Acquisition, Phase Transitions, and Simplicity Bias in
    MLMs" (Chen et al., ICLR 2024), where the UAS spike and the loss drop coincide.
    """
    drop = _transition(steps, loss, "loss", 1.0)
    if drop is None:
        raise GoldstoneError("loss has no drop: no change point survives the automatic penalty")
    rise = _transition(steps, uas, "uas", -1.0)
    if rise is None:
        raise GoldstoneError("uas has no rise: no change point survives the automatic penalty")
    return rise.onset - drop.onset

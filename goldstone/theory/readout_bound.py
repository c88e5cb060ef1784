"""Hard upper bound on how many labels a node subset can predict through a fixed readout.

Follows "Single-Nodal Spontaneous Symmetry Breaking in NLP Models" (Rosner, Gross,
Koresh, Kanter), where a subset S of the last hidden layer is kept and the rest
silenced, so the logits are

    z = W_S h_S + b,        h_S in R^n, n = |S|.

Label k is the strict argmax for some h_S iff there is h with

    (W_k - W_j) . h + (b_k - b_j) > 0    for all j != k,

i.e. iff the lifted point (W_k|S, b_k) in R^(n+1) is the unique maximiser of a linear
functional (h, 1) whose last component is positive: a vertex of the UPPER convex hull
of the lifted points {(W_j|S, b_j)}.  Without bias h can be rescaled freely, so the
condition is that W_k|S is a vertex of the convex hull of {W_j|S} in R^n.  The number
of such labels bounds the number of distinct labels the subset can ever predict, no
matter what values the hidden nodes take.

Exactly duplicated points tie wherever they win, so neither copy is ever the strict
argmax; of points with identical W and different b only the larger b can win.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linprog
from scipy.spatial import ConvexHull, QhullError

from goldstone.core.errors import GoldstoneError

METHODS = ("auto", "hull", "lp")
HULL_MAX_DIM = 6  # "auto" uses qhull for n <= HULL_MAX_DIM, linear programs above
TOL = 1e-9  # on data normalised to unit scale: facet-normal bias component, LP margin t


def _as_array(x: ArrayLike, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, possibly on GPU or requiring grad
        x = x.detach().cpu().numpy()
    array = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise GoldstoneError(f"{name} contains NaN or infinite values")
    return array


def _checked(weight: ArrayLike, bias: ArrayLike | None, method: str) -> tuple[np.ndarray, np.ndarray | None]:
    w = _as_array(weight, "weight")
    if w.ndim != 2 or w.shape[0] == 0:
        raise GoldstoneError(f"weight must be a 2-D array (K labels, n nodes) with K >= 1, got shape {w.shape}")
    if method not in METHODS:
        raise GoldstoneError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if bias is None:
        return w, None
    b = _as_array(bias, "bias")
    if b.shape != (w.shape[0],):
        raise GoldstoneError(f"bias must have shape ({w.shape[0]},) to match weight {w.shape}, got {b.shape}")
    return w, b


def _normalised(w: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre and rescale W and b separately; the reachable set is invariant under both.

    A common shift or positive scale of the W rows is absorbed by h, one of b changes no
    argmax; a constant bias is dropped (it is the no-bias problem).
    """
    w = w - w.mean(axis=0)
    w_scale = np.abs(w).max(initial=0.0)
    if w_scale > 0:
        w = w / w_scale
    if b is None or np.ptp(b) == 0:
        return w, None
    b = b - b.mean()
    return w, b / np.abs(b).max()


def _duplicated(points: np.ndarray) -> np.ndarray:
    """True for rows that occur more than once."""
    _, inverse, counts = np.unique(points, axis=0, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)] > 1


def _reachable_hull(w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Vertices of the upper hull of (W, b), or of the hull of W without bias; raises QhullError."""
    k, n = w.shape
    if b is None and n == 1:
        x = w[:, 0]
        reachable = (x == x.max()) | (x == x.min())
        return reachable & ~_duplicated(w)
    points = w if b is None else np.column_stack([w, b])
    if points.shape[1] < 2:
        raise QhullError("the hull method needs at least one node when a bias is given")
    hull = ConvexHull(points)
    reachable = np.zeros(k, dtype=bool)
    if b is None:
        reachable[hull.vertices] = True
    else:
        upper = hull.equations[:, n] > TOL  # outward unit normal (n_W, n_b) with n_b > 0
        reachable[np.unique(hull.simplices[upper])] = True
    return reachable & ~_duplicated(points)


def _reachable_lp(w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Per label: max t s.t. (W_j - W_k).h + t <= b_k - b_j (j != k), t <= 1; reachable iff t > TOL."""
    k, n = w.shape
    b = np.zeros(k) if b is None else b
    cost = np.zeros(n + 1)
    cost[-1] = -1.0
    bounds = [(None, None)] * n + [(None, 1.0)]
    reachable = np.zeros(k, dtype=bool)
    for label in range(k):
        others = np.arange(k) != label
        a_ub = np.column_stack([w[others] - w[label], np.ones(k - 1)])
        result = linprog(cost, A_ub=a_ub, b_ub=b[label] - b[others], bounds=bounds, method="highs")
        if result.status != 0:
            raise GoldstoneError(f"linear program for label {label} failed: {result.message}")
        reachable[label] = -result.fun > TOL
    return reachable


def reachable_labels(weight: ArrayLike, bias: ArrayLike | None = None, method: str = "auto") -> np.ndarray:
    """Labels k that are the strict argmax of ``weight @ h + bias`` for some h in R^n.

    Per "Single-Nodal Spontaneous Symmetry Breaking in NLP Models": k is reachable iff
    (W_k, b_k) is a vertex of the upper convex hull of {(W_j, b_j)} (with bias), or W_k a
    vertex of the convex hull of {W_j} (without). ``weight`` is (K, n), ``bias`` (K,) or
    None; numpy arrays or torch tensors. ``method``: "hull" (scipy ConvexHull), "lp" (one
    scipy linprog per label), or "auto" (hull for 1 <= n <= 6 and K >= n + 2, LP otherwise
    or when the points do not span a full-dimensional hull). Returns a bool array (K,).
    """
    w, b = _checked(weight, bias, method)
    k, n = w.shape
    if k == 1:
        return np.ones(1, dtype=bool)
    w, b = _normalised(w, b)
    if method == "lp":
        return _reachable_lp(w, b)
    if method == "hull":
        try:
            return _reachable_hull(w, b)
        except QhullError as error:
            raise GoldstoneError(
                f"method='hull' needs points spanning a full-dimensional hull (K={k}, n={n}); "
                f"use method='lp' or 'auto' ({str(error).splitlines()[0]})"
            ) from error
    if 1 <= n <= HULL_MAX_DIM and k >= n + 2:
        try:
            return _reachable_hull(w, b)
        except QhullError:
            pass
    return _reachable_lp(w, b)


def readout_bound(weight: ArrayLike, bias: ArrayLike | None = None, method: str = "auto") -> int:
    """Number of reachable labels, ``reachable_labels(weight, bias, method).sum()``.

    A hard upper bound on the distinct labels a node subset predicts through the fixed
    readout ("Single-Nodal Spontaneous Symmetry Breaking in NLP Models").
    """
    return int(reachable_labels(weight, bias, method).sum())


def predicted_labels(weight: ArrayLike, bias: ArrayLike | None, inputs: ArrayLike) -> np.ndarray:
    """Labels that are the strict argmax of ``inputs @ weight.T + bias`` for at least one input row.

    ``inputs`` is (N, n). An input whose top logit is tied counts for no label, matching
    the strict argmax of ``reachable_labels``, so the result is always a subset of it.
    Returns a bool array (K,).
    """
    w, b = _checked(weight, bias, "auto")
    h = _as_array(inputs, "inputs")
    if h.ndim != 2 or h.shape[1] != w.shape[1]:
        raise GoldstoneError(f"inputs must have shape (N, {w.shape[1]}) to match weight {w.shape}, got {h.shape}")
    k = w.shape[0]
    logits = h @ w.T + (0.0 if b is None else b)
    winners = logits.argmax(axis=1)
    if k > 1:
        top_two = np.partition(logits, k - 2, axis=1)[:, k - 2:]
        winners = winners[top_two[:, 1] > top_two[:, 0]]
    predicted = np.zeros(k, dtype=bool)
    predicted[winners] = True
    return predicted

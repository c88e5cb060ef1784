"""Checks of the numbers the closed forms and the measurements built on them are given: a value that
is not a number is a TypeError, one out of range (NaN and infinities included) a ValueError, each
starting with the name of the argument."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def real(name: str, value, low: float = -math.inf, high: float = math.inf, strict: bool = False) -> float:
    """`value` as a float: a finite number in [low, high] ((low, high] when `strict`)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and (value > low if strict else value >= low) and value <= high):
        bounds = f" {'>' if strict else '>='} {low:g}" if low > -math.inf else ""
        bounds += f"{' and' if bounds else ''} <= {high:g}" if high < math.inf else ""
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return float(value)


def whole(name: str, value, low: int = 1) -> int:
    """`value` as an int: a whole number >= low (an integral float such as 3.0 counts)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a whole number, got {type(value).__name__}")
    if not (isinstance(value, Integral) or (math.isfinite(value) and float(value).is_integer())) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def wholes(name: str, values, low: int = 1) -> list[int]:
    """`values` (a sequence) as a list of ints, each a whole number >= low."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of whole numbers, got {type(values).__name__}")
    values = list(values)
    try:
        return [whole(name, v, low) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be whole numbers >= {low}, got {values!r}") from None


def reals(name: str, values, low: float = -math.inf) -> np.ndarray:
    """`values` (a number, a sequence, a numpy array or a tensor) as a float64 array, finite and >= low."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers, got {type(values).__name__}") from None
    bad = array[~(np.isfinite(array) & (array >= low))]
    if bad.size:
        raise ValueError(f"{name} must be finite{f' and >= {low:g}' if low > -math.inf else ''}, got {bad.flat[0]}")
    return array


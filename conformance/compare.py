"""The one comparison routine and the one failure format of the suite.

:func:`score` compares an array an implementation returned with the float64 reference.
Each element's error ratio is ``|actual - expected| / allowed`` (``allowed`` is the
per-element absolute error the oracle derived from a forward error bound); an element with
``allowed == 0`` must be exact (ratio 0 when equal, inf otherwise) and a NaN where a number is
expected is inf. The array passes when its worst ratio is at most 1. Every category that
compares values (output, gradient, regularizer, constraint, the initializer's Gram matrix)
goes through it.

Every failure is described the same way (after NumPy's ``assert_array_compare`` and
array-api-tests): shape and dtype first, then the number of mismatched elements, the worst
index, the worst absolute and relative difference, the two values there, and the call that
produced them::

    out.shape=(2, 5, 5, 3), but should be (2, 4, 4, 3) [Conv2D(filters=3, kernel_size=3, strides=2, padding='same') on x.shape=(2, 8, 8, 1) float32]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from conv_conformance.oracle.tolerance import SAFETY

__all__ = ["Score", "score", "strict_allowed", "error_ratios"]


@dataclass
class Score:
    """The outcome of comparing one returned array with its reference.

    ``shape_ok`` False means values were not compared (``ratio`` is None).
    ``worst`` locates the largest error ratio: index, expected, actual, allowed.
    """

    name: str
    shape_ok: bool
    ratio: float | None = None
    mismatches: int = 0
    worst: dict | None = None
    message: str = ""
    #: worst ratio against the strict precision class (None: values not compared)
    strict_ratio: float | None = None

    @property
    def passed(self) -> bool:
        return self.shape_ok and self.ratio is not None and self.ratio <= 1.0

    @property
    def strict_passed(self) -> bool:
        """Passed and within the strict class too (a pass outside it is a quality warning)."""
        return self.passed and (self.strict_ratio is None or self.strict_ratio <= 1.0)


def error_ratios(actual: np.ndarray, expected: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """|actual - expected| / allowed per element: 0 where equal (NaN equals NaN), inf where
    ``allowed`` is 0 or the difference is NaN."""
    with np.errstate(all="ignore"):
        diff = np.abs(actual - expected)
        ratio = np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1.0), np.inf)
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
        ratio = np.where(same, 0.0, ratio)
        return np.where(np.isnan(ratio), np.inf, ratio)


_ML_FLOATS = ("bfloat16", "float8_e4m3fn", "float8_e5m2")


def _not_an_array(actual: Any) -> str:
    """What is wrong with a returned value as an array ("" if nothing): None, a Python list or
    scalar, a masked array (masked elements have no value) or an object array."""
    if actual is None:
        return "None"
    if isinstance(actual, np.ma.MaskedArray):
        return f"a masked array ({int(np.ma.count_masked(actual))} elements masked)"
    if not (isinstance(actual, np.ndarray) or hasattr(actual, "__array__")
            or hasattr(actual, "__array_interface__")):
        return f"a {type(actual).__name__}"
    try:
        kind = np.asarray(actual).dtype.kind
    except Exception as exc:  # noqa: BLE001 - an __array__ that raises
        return f"not convertible to an array ({type(exc).__name__}: {exc})"
    return "an object array" if kind == "O" else ""


def strict_allowed(allowed: Any, strict: Any = None) -> np.ndarray:
    """The strict precision class's allowed errors: ``strict`` when the oracle gives it
    (``Materialized.strict_output`` / ``strict_gradients``), else today's model's bound
    without its safety factor, ``allowed / oracle.tolerance.SAFETY`` (docs/certification.md)."""
    if strict is not None:
        return np.asarray(strict, dtype=np.float64)
    return np.asarray(allowed, dtype=np.float64) / SAFETY


def score(name: str, actual: Any, expected: np.ndarray, allowed: Any, *, call: Any,
          strict: Any = None) -> Score:
    """Score ``actual`` against ``expected`` with per-element absolute tolerance ``allowed``.

    ratio = |actual - expected| / allowed per element (allowed 0: exact; NaN: inf);
    passes when the worst ratio is <= 1. ``name`` is how the array is called in
    messages (``out``, ``grad['kernel']``) and ``call`` the layer call that made it.
    ``strict_ratio`` is the worst ratio against :func:`strict_allowed` (``strict``
    or ``allowed / SAFETY``): a pass with strict_ratio > 1 is a quality warning.
    """
    expected = np.asarray(expected, dtype=np.float64)
    not_array = _not_an_array(actual)
    if not_array:
        return Score(name, False, message=f"{name} is {not_array}, but should be an array of shape "
                                               f"{expected.shape} [{call}]")
    raw = np.asarray(actual)
    dtype = str(raw.dtype)
    if raw.shape != expected.shape:
        return Score(name, False, message=f"{name}.shape={raw.shape}, but should be "
                                               f"{expected.shape} [{call}]")
    # ml_dtypes' bfloat16 (and float8 types) are kind "V" in NumPy but real floating dtypes
    if raw.dtype.kind != "f" and raw.dtype.name not in _ML_FLOATS:
        return Score(name, True, message=f"{name}.dtype={dtype}, but should be a real "
                                              f"floating dtype [{call}]")
    got = raw.astype(np.float64)
    tol = np.broadcast_to(np.asarray(allowed, dtype=np.float64), expected.shape)
    if expected.size == 0:
        return Score(name, True, ratio=0.0, strict_ratio=0.0)
    ratio = error_ratios(got, expected, tol)
    strict_tol = np.broadcast_to(strict_allowed(allowed, strict), expected.shape)
    strict_ratio = float(np.max(error_ratios(got, expected, strict_tol)))
    flat = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
    worst_ratio = float(ratio[index])
    worst = {"index": list(index), "expected": float(expected[index]),
             "actual": float(got[index]), "allowed": float(tol[index])}
    bad = ratio > 1.0
    mismatches = int(np.count_nonzero(bad))
    if not mismatches:
        return Score(name, True, ratio=worst_ratio, worst=worst, strict_ratio=strict_ratio)
    with np.errstate(all="ignore"):
        diff = np.abs(got - expected)[bad]
        rel = diff / np.abs(expected[bad])
    diff, rel = (np.where(np.isnan(d), np.inf, d) for d in (diff, rel))
    lines = [
        f"{name} differs from the reference beyond the allowed error [{call}]",
        f" {name}.shape={raw.shape}, dtype={dtype}",
        f" Mismatched elements: {mismatches} / {ratio.size} ({100 * mismatches / ratio.size:.3g}%)",
        f" Worst error ratio: {worst_ratio:.6g} at index {index}",
        f"  actual:   {worst['actual']!r}",
        f"  expected: {worst['expected']!r}",
        f"  allowed:  {worst['allowed']!r}",
        f" Max absolute difference among violations: {np.max(diff):.6g}",
        f" Max relative difference among violations: {np.max(rel):.6g}",
    ]
    return Score(name, True, ratio=worst_ratio, mismatches=mismatches, worst=worst,
                      message="\n".join(lines), strict_ratio=strict_ratio)

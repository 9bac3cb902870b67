"""Allowed errors of the training-time categories, derived like the forward bounds of
:mod:`oracle.tolerance` (Higham's standard model, ``gamma(n) = n u / (1 - n u)``).

* **regularizer**: a penalty is a sum of ``m`` non-negative rounded products, so its error is
  within ``gamma(m + 3)`` of its value (:func:`penalty_allowed`). The activity penalty reads the
  layer's output, which carries its own allowed error ``e``, and sums over ``y.size`` terms
  (:func:`activity_allowed`). The penalties' gradient is the output gradient ``dP/dy`` carried
  through the layer's VJP: the tolerance model's bound for that VJP plus ``|J|^T |dg|`` for the
  error ``dg`` of ``dP/dy`` (:func:`regularization_vjp_allowed`); a weight penalty's own
  gradient adds ``gamma(3) (l1 + 2 l2 |w|)``.
* **constraint**: NonNeg and unconstrained weights exactly; a norm constraint within
  ``gamma(m) + 10 u + |fl(eps) - eps| / (eps + n)`` of the result's magnitude, for ``m`` entries
  per norm and Keras's epsilon as the dtype holds it (:func:`constraint_allowed`).
* **initializer**: Orthogonal's Gram matrix ``W^T W = gain^2 I`` within a Householder-QR bound
  ``gain^2 (8 max(rows, cols) + 8) u`` (:func:`orthogonal_allowed`).

Each bound carries a factor 1.01 for the rounding of its own evaluation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.reference.activations import activate_vjp
from conv_conformance.reference.constraints import EPSILON, norm_axes

from . import tolerance

__all__ = ["unit_roundoff_of", "scalar_gamma", "penalty_allowed", "activity_allowed",
           "regularization_vjp_allowed", "constraint_allowed", "orthogonal_allowed"]


def unit_roundoff_of(dtype: Any) -> float:
    """The unit roundoff of a NumPy dtype (or name); float64's for a dtype the suite does not draw in."""
    name = np.dtype(dtype).name
    return tolerance.unit_roundoff(name if name in tolerance.DTYPES else "float64")


def scalar_gamma(n: float, u: float) -> float:
    """gamma_n = n u / (1 - n u) as a float (inf where n u >= 1/2)."""
    return float(tolerance.gamma(n, u))


def penalty_allowed(regularizer: dict, weight: np.ndarray, u: float) -> float:
    """A weight penalty: a sum of n non-negative terms, each a rounded product: gamma(n + 3) of it."""
    return scalar_gamma(weight.size + 3, u) * reference.penalty(regularizer, weight) * 1.01


def activity_allowed(regularizer: dict, expected_output: np.ndarray, allowed_output: np.ndarray, u: float) -> float:
    """The activity penalty, mean over the batch of the output's penalty, with the output's error."""
    y, e = np.asarray(expected_output, np.float64), np.asarray(allowed_output, np.float64)
    b = y.shape[0]
    if not b:
        return 0.0
    l1, l2 = regularizer["config"].get("l1", 0.0), regularizer["config"].get("l2", 0.0)
    big = np.abs(y) + e
    moved = l1 * np.sum(e) + l2 * np.sum(2 * np.abs(y) * e + e * e)
    rounding = scalar_gamma(y.size + 4, u) * (l1 * np.sum(big) + l2 * np.sum(big * big))
    return float((moved + rounding) / b * 1.01)


def _linear(spec: dict) -> dict:
    return {"class_name": spec["class_name"], "config": {**spec["config"], "activation": "linear"}}


def _activation_slope(name: str, z: np.ndarray, e: np.ndarray, dg: np.ndarray) -> np.ndarray:
    """A bound of |J_act|^T |dg| at the pre-activation z (error e), in the layer's output layout."""
    if name == "linear":
        return dg
    row = -1  # softmax-like activations act on the last axis
    if name in ("softmax", "log_softmax", "sparsemax"):
        return np.broadcast_to(np.sum(dg, axis=row, keepdims=True), z.shape) * 2.0
    if name == "glu":
        half = z.shape[row] // 2
        a, ea = z[..., :half], e[..., :half]
        return np.concatenate([dg, (np.abs(a) + ea) / 4 * dg], axis=row)
    ones = np.ones_like(z)
    slopes = [np.abs(activate_vjp(name, t, ones)) for t in (z - e, z, z + e)]
    return np.maximum.reduce(slopes) * dg * 1.01


def regularization_vjp_allowed(spec: dict, x: np.ndarray, w: dict, regularizers: dict,
                               expected_output: np.ndarray, allowed_output: np.ndarray,
                               dtype: str) -> dict[str, np.ndarray]:
    """The allowed error of the gradient of the penalties' sum, per ``"inputs"`` and weight."""
    u = tolerance.unit_roundoff(dtype)
    out = {"inputs": np.zeros_like(x), **{k: np.zeros_like(a) for k, a in w.items()}}
    act = spec["config"].get("activity_regularizer")
    if act and x.shape[0]:
        g = reference.activity_output_grad(spec, x, w)
        _, rounding = tolerance.allowed_errors(spec, x, w, g, dtype)
        y, e = np.asarray(expected_output, np.float64), np.asarray(allowed_output, np.float64)
        l1, l2 = act["config"].get("l1", 0.0), act["config"].get("l2", 0.0)
        b = y.shape[0]
        dg = (2 * l2 * e + 2 * l1 * (np.abs(y) <= e) + scalar_gamma(3, u) * np.abs(g) * b) / b
        lin = _linear(spec)
        z = reference.forward(lin, x, w)
        ez, _ = tolerance.allowed_errors(lin, x, w, None, dtype)
        d = _activation_slope(spec["config"]["activation"], z, ez, dg)
        prop = reference.vjp(lin, np.abs(x), {k: np.abs(a) for k, a in w.items()}, d)
        for k in out:
            out[k] = out[k] + rounding[k] + prop[k] * 1.01
    for k, reg in regularizers.items():
        l1, l2 = reg["config"].get("l1", 0.0), reg["config"].get("l2", 0.0)
        out[k] = out[k] + scalar_gamma(3, u) * (l1 + 2 * l2 * np.abs(w[k]))
    return out


def constraint_allowed(constraint: dict | None, w: np.ndarray, dtype: str) -> np.ndarray:
    """The allowed error of a constrained weight: 0 (exact) without a norm constraint."""
    if constraint is None or constraint["class_name"] == "NonNeg":
        return np.zeros(w.shape)
    u = tolerance.unit_roundoff(dtype)
    axes = norm_axes(constraint, w.ndim)
    count = int(np.prod([w.shape[a] for a in axes]))
    n = np.sqrt(np.sum(w * w, axis=axes, keepdims=True))
    cfg = constraint["config"]
    if constraint["class_name"] == "UnitNorm":
        mag = np.ones_like(n)
    elif constraint["class_name"] == "MaxNorm":
        mag = np.clip(n, 0, abs(cfg["max_value"]))
    else:
        mag = abs(cfg["rate"]) * np.clip(n, cfg["min_value"], cfg["max_value"]) + abs(1 - cfg["rate"]) * n
    with np.errstate(divide="ignore", invalid="ignore"):
        # the epsilon as the dtype holds it (float16: a subnormal 19% off)
        eps_error = abs(float(np.asarray(EPSILON, dtype=np.float32 if dtype == "bfloat16" else dtype)) - EPSILON)
        if dtype == "bfloat16":
            eps_error += EPSILON * u
        rel = scalar_gamma(count, u) + 10 * u + np.where(n > 0, eps_error / (EPSILON + n), 1.0)
    return np.abs(w) * np.abs(mag) / (EPSILON + n) * rel * 1.01


def orthogonal_allowed(gain: float, rows: int, cols: int, u: float) -> float:
    """The allowed error of each entry of an Orthogonal weight's Gram matrix (Householder QR)."""
    return gain ** 2 * (8 * max(rows, cols) + 8) * u

"""Keras 3's weight constraints, applied as an optimizer step applies them.

With ``n = sqrt(sum(w**2, axis, keepdims=True))`` and ``eps`` Keras's
``backend.epsilon()`` (1e-7), in the denominator, outside the square root:

* ``MaxNorm(max_value=2, axis=0)``: ``w * clip(n, 0, max_value) / (eps + n)``
* ``MinMaxNorm(min_value=0, max_value=1, rate=1, axis=0)``:
  ``w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (eps + n)``
* ``UnitNorm(axis=0)``: ``w / (eps + n)``
* ``NonNeg()``: ``maximum(w, 0)`` (Keras >= 3.15; +0.0 for negative w)

The axis is the user's: Keras never picks one for a layer.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidConfig, known_config, serialized_object

__all__ = ["CONSTRAINTS", "EPSILON", "normalize_constraint", "apply_constraint", "norm_axes"]

#: Keras's default backend.epsilon().
EPSILON = 1e-7
#: Keras 3 class name -> config keys and defaults (get_config order).
CONSTRAINTS: dict[str, dict[str, Any]] = {
    "MaxNorm": {"max_value": 2.0, "axis": 0},
    "MinMaxNorm": {"min_value": 0.0, "max_value": 1.0, "rate": 1.0, "axis": 0},
    "UnitNorm": {"axis": 0},
    "NonNeg": {},
}
_ALIASES = {"MaxNorm": "MaxNorm", "max_norm": "MaxNorm", "MinMaxNorm": "MinMaxNorm",
            "min_max_norm": "MinMaxNorm", "UnitNorm": "UnitNorm", "unit_norm": "UnitNorm",
            "NonNeg": "NonNeg", "non_neg": "NonNeg"}


def _value(layer: str, arg: str, key: str, value: Any) -> Any:
    if key == "axis":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, (list, tuple)) and value and \
                all(isinstance(a, int) and not isinstance(a, bool) for a in value):
            return list(value)
        raise InvalidConfig(layer, f"{arg}.axis", "must be an integer or a non-empty list of integers", value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidConfig(layer, f"{arg}.{key}", "must be a finite number", value)
    return float(value)


def normalize_constraint(layer: str, arg: str, value: Any) -> dict | None:
    """A constraint argument in Keras 3's serialization (None stays None)."""
    if value is None:
        return None
    name, config = serialized_object(layer, arg, value, "constraint")
    cls = _ALIASES.get(name)
    if cls is None:
        raise InvalidConfig(layer, arg, f"must name one of the constraints {sorted(CONSTRAINTS)} (or "
                            "max_norm, min_max_norm, unit_norm, non_neg)", value)
    defaults = CONSTRAINTS[cls]
    config = known_config(layer, arg, cls, config, defaults, value)
    return {"class_name": cls, "config": {k: _value(layer, arg, k, config.get(k, d)) for k, d in defaults.items()}}


def norm_axes(constraint: dict, ndim: int) -> tuple[int, ...]:
    """The axes a norm constraint sums over for a weight of rank ndim (InvalidConfig if out of range)."""
    axis = constraint["config"]["axis"]
    axes = [axis] if isinstance(axis, int) else list(axis)
    if any(not -ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) != len(axes):
        raise InvalidConfig(constraint["class_name"], "axis", f"must be distinct axes of a rank-{ndim} weight",
                            axis)
    return tuple(a % ndim for a in axes)


def apply_constraint(constraint: dict, w: Any, epsilon: float = EPSILON) -> np.ndarray:
    """The weight after the constraint, float64."""
    w = np.asarray(w, dtype=np.float64)
    cls, cfg = constraint["class_name"], constraint["config"]
    if cls == "NonNeg":
        return np.maximum(w, 0.0)
    n = np.sqrt(np.sum(np.square(w), axis=norm_axes(constraint, w.ndim), keepdims=True))
    if cls == "UnitNorm":
        return w / (epsilon + n)
    if cls == "MaxNorm":
        desired = np.clip(n, 0.0, cfg["max_value"])
    else:
        desired = cfg["rate"] * np.clip(n, cfg["min_value"], cfg["max_value"]) + (1.0 - cfg["rate"]) * n
    return w * (desired / (epsilon + n))

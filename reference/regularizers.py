"""Keras 3's weight and activity regularizers: penalties and their gradients.

``L1(l1)``: ``l1 * sum|x|``; ``L2(l2)``: ``l2 * sum x**2`` (no half);
``L1L2(l1, l2)``: both, a term skipped when its factor is 0. Gradient
``l1 * sign(x) + 2 * l2 * x`` (``sign(0) = 0``, as TensorFlow's gradient of abs).
Factors are validated as Keras 3's ``validate_float_arg``: an int or float,
finite, >= 0 (None means the class default: 0.01 for L1 and L2, 0 for L1L2).

The activity penalty of one call is the regularizer of the layer's output
(after the activation) divided by the batch size (Keras >= 3.14 and Keras 2;
0 for an empty batch). OrthogonalRegularizer takes rank-2 inputs only: on a
conv kernel (rank >= 3), bias (rank 1) or conv output (rank >= 3) Keras
raises, so the reference rejects it with InvalidConfig.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidConfig, known_config, serialized_object

__all__ = ["REGULARIZERS", "normalize_regularizer", "penalty", "penalty_grad"]

#: Keras 3 class name -> config keys and their defaults.
REGULARIZERS: dict[str, dict[str, float]] = {"L1": {"l1": 0.01}, "L2": {"l2": 0.01},
                                             "L1L2": {"l1": 0.0, "l2": 0.0}}
# `keras.regularizers.get` resolves class names and to_snake_case(class name): "L1L2" -> "l1l2"
# ("l1_l2" is not a Keras 3 identifier).
_ALIASES = {"L1": "L1", "l1": "L1", "L2": "L2", "l2": "L2", "L1L2": "L1L2", "l1l2": "L1L2"}
_RANK2_ONLY = ("OrthogonalRegularizer", "orthogonal_regularizer")


def _factor(layer: str, arg: str, key: str, value: Any, default: float) -> float:
    """Keras 3's validate_float_arg: None -> the default; else a finite int or float >= 0."""
    if value is None:
        return default
    if not isinstance(value, (int, float)) or math.isinf(value) or math.isnan(value) or value < 0:
        raise InvalidConfig(layer, f"{arg}.{key}", "must be a non-negative finite float (Keras 3 rejects "
                            "negative, NaN and inf factors)", value)
    return float(value)


def normalize_regularizer(layer: str, arg: str, value: Any) -> dict | None:
    """A regularizer argument in Keras 3's serialization (None stays None)."""
    if value is None:
        return None
    name, config = serialized_object(layer, arg, value, "regularizer")
    if name in _RANK2_ONLY:
        raise InvalidConfig(layer, arg, "cannot be OrthogonalRegularizer: it takes rank-2 inputs only, and a "
                            "convolution kernel or output has rank >= 3 and a bias rank 1", value)
    cls = _ALIASES.get(name)
    if cls is None:
        raise InvalidConfig(layer, arg, "must name L1, L2 or L1L2 (identifiers 'L1', 'l1', 'L2', 'l2', "
                            "'L1L2', 'l1l2'; Keras 3 does not resolve 'l1_l2')", value)
    defaults = REGULARIZERS[cls]
    config = known_config(layer, arg, cls, config, defaults, value)
    return {"class_name": cls, "config": {k: _factor(layer, arg, k, config.get(k), d)
                                          for k, d in defaults.items()}}


def _factors(regularizer: dict) -> tuple[float, float]:
    cfg = regularizer["config"]
    return cfg.get("l1", 0.0), cfg.get("l2", 0.0)


def penalty(regularizer: dict, x: Any) -> float:
    """The penalty of a normalized regularizer on x, float64."""
    l1, l2 = _factors(regularizer)
    x = np.asarray(x, dtype=np.float64)
    out = 0.0
    if l1 != 0.0:
        out += l1 * float(np.sum(np.abs(x)))
    if l2 != 0.0:
        out += l2 * float(np.sum(np.square(x)))
    return out


def penalty_grad(regularizer: dict, x: Any) -> np.ndarray:
    """d penalty / dx = l1 * sign(x) + 2 * l2 * x, float64."""
    l1, l2 = _factors(regularizer)
    x = np.asarray(x, dtype=np.float64)
    return l1 * np.sign(x) + 2.0 * l2 * x

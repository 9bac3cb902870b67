"""Keras 3 activations by name, each with its vector-Jacobian product beside it.

``activate(name, z)`` computes the activation; ``activate_vjp(name, z, g)`` the
gradient of ``sum(activate(name, z) * g)`` with respect to ``z``. Elementwise
activations are ``(f, f')`` pairs; softmax, log_softmax, sparsemax and glu act
on the last axis, as Keras's defaults do.

At a kink the derivative takes the side TensorFlow's kernels take (the
``x > 0`` side for relu, both bounds open for relu6); the tolerance model in
``oracle`` treats pre-activations at a kink as ambiguous anyway.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["activate", "activate_vjp"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x):
    return np.logaddexp(0.0, x)


def _erf64(x):
    return _erf(x).astype(np.float64)


def _hard_sigmoid(x):
    return np.clip(x + 3, 0, 6) / 6


def _sparse_plus(x):
    return np.where(x <= -1, 0.0, np.where(x < 1, 0.25 * (x + 1) ** 2, x))


# name: (f(x), f'(x)); derivatives at kinks follow TensorFlow's kernels.
_ELEMENTWISE = {
    "linear": (lambda x: x, lambda x: np.ones_like(x)),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda x: ((x > 0) & (x < 6)) * 1.0),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.2 * x), lambda x: np.where(x > 0, 1.0, 0.2)),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    "selu": (lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x: _SELU_SCALE * np.where(x > 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(x, 0)))),
    "celu": (lambda x: np.maximum(x, 0) + np.expm1(np.minimum(x, 0)),
             lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    "gelu": (lambda x: 0.5 * x * (1 + _erf64(x / math.sqrt(2))),
             lambda x: 0.5 * (1 + _erf64(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * _sigmoid(-x)),
    "hard_sigmoid": (_hard_sigmoid, lambda x: ((x > -3) & (x < 3)) / 6.0),
    "sparse_sigmoid": (lambda x: np.clip(0.5 * (x + 1), 0, 1), lambda x: ((x > -1) & (x < 1)) * 0.5),
    "log_sigmoid": (lambda x: -_softplus(-x), lambda x: _sigmoid(-x)),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "hard_tanh": (lambda x: np.clip(x, -1, 1), lambda x: ((x >= -1) & (x <= 1)) * 1.0),
    "tanh_shrink": (lambda x: x - np.tanh(x), lambda x: np.tanh(x) ** 2),
    "softplus": (_softplus, _sigmoid),
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    "sparse_plus": (_sparse_plus, lambda x: np.where(x <= -1, 0.0, np.where(x < 1, 0.5 * (x + 1), 1.0))),
    "squareplus": (lambda x: (x + np.sqrt(x * x + 4)) / 2, lambda x: (1 + x / np.sqrt(x * x + 4)) / 2),
    "silu": (lambda x: x * _sigmoid(x), lambda x: _sigmoid(x) * (1 + x * _sigmoid(-x))),
    "hard_silu": (lambda x: x * _hard_sigmoid(x),
                  lambda x: np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2 * x + 3) / 6))),
    "mish": (lambda x: x * np.tanh(_softplus(x)),
             lambda x: np.tanh(_softplus(x)) + x * (1 - np.tanh(_softplus(x)) ** 2) * _sigmoid(x)),
    "exponential": (np.exp, np.exp),
    "soft_shrink": (lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)),
                    lambda x: (np.abs(x) > 0.5) * 1.0),
    "hard_shrink": (lambda x: np.where(np.abs(x) > 0.5, x, 0.0), lambda x: (np.abs(x) > 0.5) * 1.0),
}
_ELEMENTWISE["swish"] = _ELEMENTWISE["silu"]
_ELEMENTWISE["hard_swish"] = _ELEMENTWISE["hard_silu"]


# --- last-axis activations: softmax, log_softmax, sparsemax, glu

def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_vjp(z, g):
    s = _softmax(z)
    return s * (g - (g * s).sum(axis=-1, keepdims=True))


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _log_softmax_vjp(z, g):
    return g - _softmax(z) * g.sum(axis=-1, keepdims=True)


def _sparsemax(z):
    """Martins & Astudillo: y = max(z - tau, 0), tau chosen so that sum(y) = 1."""
    zs = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cums = np.cumsum(zs, axis=-1)
    support = 1 + k * zs > cums
    kz = support.sum(axis=-1, keepdims=True)
    tau = (np.take_along_axis(cums, kz - 1, axis=-1) - 1) / kz
    return np.maximum(z - tau, 0)


def _sparsemax_vjp(z, g):
    """On the support S (y > 0): g - mean_S(g); zero elsewhere."""
    on = _sparsemax(z) > 0
    mean = (g * on).sum(axis=-1, keepdims=True) / on.sum(axis=-1, keepdims=True)
    return on * (g - mean)


def _glu(z):
    a, b = np.split(z, 2, axis=-1)
    return a * _sigmoid(b)


def _glu_vjp(z, g):
    a, b = np.split(z, 2, axis=-1)
    return np.concatenate([g * _sigmoid(b), g * a * _sigmoid(b) * _sigmoid(-b)], axis=-1)


_LAST_AXIS = {
    "softmax": (_softmax, _softmax_vjp),
    "log_softmax": (_log_softmax, _log_softmax_vjp),
    "sparsemax": (_sparsemax, _sparsemax_vjp),
    "glu": (_glu, _glu_vjp),
}


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """The Keras activation `name` applied to z (last axis for softmax-like ones)."""
    if name in _LAST_AXIS:
        return _LAST_AXIS[name][0](z)
    return _ELEMENTWISE[name][0](z)


def activate_vjp(name: str, z: np.ndarray, g: np.ndarray) -> np.ndarray:
    """d/dz sum(activate(name, z) * g)."""
    if name == "linear":
        return g
    if name in _LAST_AXIS:
        return _LAST_AXIS[name][1](z, g)
    return _ELEMENTWISE[name][1](z) * g

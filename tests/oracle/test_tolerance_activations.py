"""The activation part of the tolerance model against honest evaluations of Keras's documented formulas.

Each elementwise activation's evaluation allowance (oracle.tolerance._activation_forward with an
exact pre-activation) must hold for the formula Keras documents, evaluated as written, one NumPy
ufunc (one rounding) at a time, in float32 and in float16, at every value of the dtype on a fine
grid over [-20, 20] and near 0 (the range the cases' pre-activations reach). A composed activation
inherits the allowances of its parts: mish = z * tanh(softplus(z)) carries softplus's absolute one.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from conv_conformance.oracle import tolerance
from conv_conformance.reference.activations import activate

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _c(x, v):
    return x.dtype.type(v)


def _sigmoid(x):
    return _c(x, 1) / (_c(x, 1) + np.exp(-x))


def _softplus(x):
    return np.log(np.exp(x) + _c(x, 1))


def _hard_sigmoid(x):
    return np.clip(x + _c(x, 3), _c(x, 0), _c(x, 6)) / _c(x, 6)


#: Keras 3's documented formulas (keras.activations docstrings), written with the dtype's constants
DOCUMENTED = {
    "sigmoid": _sigmoid,
    "softplus": _softplus,
    "softsign": lambda x: x / (np.abs(x) + _c(x, 1)),
    "silu": lambda x: x * _sigmoid(x),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - _c(x, 1)),
    "selu": lambda x: _c(x, 1.0507009873554805) * np.where(x > 0, x, _c(x, 1.6732632423543772) * (np.exp(x) - _c(x, 1))),
    "celu": lambda x: np.maximum(x, _c(x, 0)) + (np.exp(np.minimum(x, _c(x, 0))) - _c(x, 1)),
    "gelu": lambda x: x * _c(x, 0.5) * (_c(x, 1) + _erf(x / np.sqrt(_c(x, 2))).astype(x.dtype)),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "log_sigmoid": lambda x: -np.log(_c(x, 1) + np.exp(-x)),
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "squareplus": lambda x: (x + np.sqrt(x * x + _c(x, 4))) / _c(x, 2),
    "tanh_shrink": lambda x: x - np.tanh(x),
    "exponential": np.exp,
    "leaky_relu": lambda x: np.where(x > 0, x, _c(x, 0.2) * x),
    "soft_shrink": lambda x: np.where(x > 0.5, x - _c(x, 0.5), np.where(x < -0.5, x + _c(x, 0.5), _c(x, 0))),
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, _c(x, 0)),
    "hard_tanh": lambda x: np.clip(x, _c(x, -1), _c(x, 1)),
    "sparse_plus": lambda x: np.where(x <= -1, _c(x, 0), np.where(x < 1, _c(x, 0.25) * (x + _c(x, 1)) ** 2, x)),
    "sparse_sigmoid": lambda x: np.clip(_c(x, 0.5) * (x + _c(x, 1)), _c(x, 0), _c(x, 1)),
    "relu": lambda x: np.maximum(x, _c(x, 0)),
    "relu6": lambda x: np.clip(x, _c(x, 0), _c(x, 6)),
}


def _grid(dtype: str) -> np.ndarray:
    # float16's exp overflows from z = 11.09 on: the documented formulas then give inf or 0 from an
    # infinite intermediate, which is not a rounding error (and not how kernels evaluate them)
    top = 20.0 if dtype == "float32" else 11.0
    z = np.concatenate([np.linspace(-top, top, 200001), np.linspace(-1, 1, 20001) ** 3])
    return np.unique(z.astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_the_documented_formula_evaluated_in_the_dtype_stays_inside_the_allowance(name, dtype):
    u, eta = tolerance.unit_roundoff(dtype), tolerance.underflow(dtype)
    z = _grid(dtype)
    z64 = z.astype(np.float64)
    with np.errstate(all="ignore"):
        got = np.asarray(DOCUMENTED[name](z)).astype(dtype).astype(np.float64)
    expected = activate(name, z64)
    allowed = tolerance._activation_forward(name, z64, np.zeros_like(z64), u, safety=tolerance.SAFETY) \
        + eta * tolerance._UNDERFLOW_EXTRA  # as oracle.tolerance adds to every allowed error
    with np.errstate(invalid="ignore"):
        ratio = np.where(got == expected, 0.0, np.abs(got - expected) / allowed)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    worst = int(np.argmax(ratio))
    assert ratio[worst] <= 1.0, (f"{name} at z={z64[worst]!r}: documented formula {got[worst]!r}, "
                                 f"exact {expected[worst]!r}, allowed {allowed[worst]!r}")


def test_mish_carries_softplus_absolute_allowance():
    # the example: the documented mish in float32 at z = -7.187 errs by about 3e-7
    z = np.float32(-7.187)
    got = float(DOCUMENTED["mish"](np.array([z]))[0])
    exact = float(activate("mish", np.array([float(z)]))[0])
    allowed = float(tolerance._activation_forward("mish", np.array([float(z)]), np.zeros(1), 2.0 ** -24,
                                                  safety=tolerance.SAFETY)[0])
    assert abs(got - exact) > 1e-7  # the formula's own error is large here
    assert abs(got - exact) <= allowed


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_a_pre_activation_rounded_across_hard_shrinks_jump_stays_inside_the_allowance(dtype):
    # z near +-0.5, rounded once to the dtype (a rounding every bound permits): the rounded value
    # can be exactly +-0.5, which hard_shrink maps to 0 where the exact z maps to itself
    import ml_dtypes

    u = tolerance.unit_roundoff(dtype)
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    z64 = np.concatenate([s * (0.5 + np.linspace(-8 * u, 8 * u, 4001)) for s in (-1.0, 1.0)])
    rounded = z64.astype(np_dtype).astype(np.float64)
    e = np.abs(rounded - z64)
    assert np.any((np.abs(rounded) == 0.5) & (np.abs(z64) > 0.5))  # some do cross the jump
    got = activate("hard_shrink", rounded)
    allowed = tolerance._activation_forward("hard_shrink", z64, e, u, safety=tolerance.SAFETY)
    worst = int(np.argmax(np.abs(got - activate("hard_shrink", z64)) - allowed))
    assert np.all(np.abs(got - activate("hard_shrink", z64)) <= allowed), (z64[worst], got[worst], allowed[worst])


def test_the_jump_rule_adds_nothing_away_from_the_jump():
    z = np.array([-0.75, -0.4, 0.0, 0.45, 0.6, 3.0])
    e = np.full_like(z, 1e-3)
    allowed = tolerance._activation_forward("hard_shrink", z, e, 2.0 ** -11)
    assert np.all(allowed < 0.01)

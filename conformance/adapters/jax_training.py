"""Keras's training-time arguments written with JAX: jax.nn.initializers and jax.numpy.

``jax.nn.initializers.variance_scaling(scale, mode, distribution)`` computes
fans as Keras does for kernels of rank >= 2 (``in_axis=-2``, ``out_axis=-1``,
the rest receptive field). Two names differ: JAX's ``"normal"`` distribution is
the *untruncated* normal (Keras reads ``"normal"`` as truncated and calls the
untruncated one ``"untruncated_normal"``), and JAX's ``uniform(scale)`` draws
from ``[0, scale)``. A bias (rank 1) has no JAX fans; Keras's rule
``fan_in = fan_out = F`` is applied by hand. Seeds: ``jax.random.key(seed)``,
folded in with the weight's index.
"""
from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported

from ._penalties import penalties  # noqa: F401 - re-exported: the adapters call it from here

__all__ = ["initialize", "penalties", "constrain_array"]

_PRESETS = {"GlorotUniform": (1.0, "fan_avg", "uniform"), "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
            "HeUniform": (2.0, "fan_in", "uniform"), "HeNormal": (2.0, "fan_in", "truncated_normal"),
            "LecunUniform": (1.0, "fan_in", "uniform"), "LecunNormal": (1.0, "fan_in", "truncated_normal")}
_JAX_DISTRIBUTION = {"uniform": "uniform", "truncated_normal": "truncated_normal", "untruncated_normal": "normal"}


def _draw(jax: Any, init: dict, key: Any, shape: tuple) -> Any:
    jnp, ini = jax.numpy, jax.nn.initializers
    cls, cfg = init["class_name"], init["config"]
    f32 = jnp.float32
    if cfg.get("input_axes") is not None or cfg.get("output_axes") is not None:
        raise Unsupported("jax adapter: initializer input_axes/output_axes (Keras 3.15) are not implemented")
    if cls == "Zeros":
        return ini.zeros(key, shape, f32)
    if cls == "Ones":
        return ini.ones(key, shape, f32)
    if cls == "Constant":
        return ini.constant(cfg["value"])(key, shape, f32)
    if cls == "RandomNormal":
        return ini.normal(cfg["stddev"])(key, shape, f32) + cfg["mean"]
    if cls == "RandomUniform":
        return ini.uniform(cfg["maxval"] - cfg["minval"])(key, shape, f32) + cfg["minval"]
    if cls == "TruncatedNormal":
        return ini.truncated_normal(cfg["stddev"], lower=-2.0, upper=2.0)(key, shape, f32) + cfg["mean"]
    if cls == "Orthogonal":
        return ini.orthogonal(cfg["gain"], column_axis=-1)(key, shape, f32)
    scale, mode, dist = _PRESETS.get(cls) or (cfg["scale"], cfg["mode"], cfg["distribution"])
    if len(shape) >= 2:
        return ini.variance_scaling(scale, mode, _JAX_DISTRIBUTION[dist])(key, shape, f32)
    s = scale / max(1.0, shape[0])  # rank 1: fan_in = fan_out = F (every mode)
    if dist == "uniform":
        limit = math.sqrt(3 * s)
        return jax.random.uniform(key, shape, f32, -limit, limit)
    if dist == "untruncated_normal":
        return jax.random.normal(key, shape, f32) * math.sqrt(s)
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, f32) * (math.sqrt(s) / 0.87962566103423978)


@functools.lru_cache(maxsize=64)
def _drawer(init_json: str, shape: tuple) -> Any:
    """One compiled function key -> weight per initializer and shape: run op by op, a draw compiles
    a dozen small executables, and that compiling was most of the jax adapter's time."""
    import jax

    init = json.loads(init_json)
    if (init["config"].get("input_axes") is not None or init["config"].get("output_axes") is not None):
        _draw(jax, init, None, shape)  # raises Unsupported, outside the trace
    return jax.jit(lambda seed, index: _draw(jax, init, jax.random.fold_in(jax.random.key(seed), index), shape))


def initialize(spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
    """Every weight drawn by jax.nn.initializers (float32), key(seed) folded with the weight index."""
    nspec = reference.normalize(spec)
    shapes = reference.weight_shapes(nspec, input_shape)
    args = reference.weight_arguments(nspec)
    out = {}
    for i, name in enumerate(sorted(shapes)):
        init = nspec["config"][args[name]["initializer"]]
        draw = _drawer(json.dumps(init, sort_keys=True), tuple(shapes[name]))
        out[name] = np.asarray(draw(np.uint32(int(seed) % (2 ** 32)), np.uint32(i)))
    return out


def constrain_array(jnp: Any, constraint: dict, w: Any) -> Any:
    """Keras's constraint formulas: w * c(n) / (1e-7 + n), n the L2 norm over the user's axis."""
    cls, cfg = constraint["class_name"], constraint["config"]
    if cls == "NonNeg":
        return jnp.maximum(w, 0)
    axis = cfg["axis"]
    n = jnp.sqrt(jnp.sum(jnp.square(w), axis=tuple(axis) if isinstance(axis, list) else axis, keepdims=True))
    if cls == "UnitNorm":
        return w / (1e-7 + n)
    if cls == "MaxNorm":
        desired = jnp.clip(n, 0, cfg["max_value"])
    else:
        desired = cfg["rate"] * jnp.clip(n, cfg["min_value"], cfg["max_value"]) + (1 - cfg["rate"]) * n
    return w * (desired / (1e-7 + n))

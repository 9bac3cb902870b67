"""The training-time arguments computed by Keras itself (Keras 3 = tf.keras, Keras 2 = tf-keras).

* :func:`initialize`: the layer built from the spec, every initializer seeded
  with ``seed``, its variables read by their Keras 3 names;
* :func:`regularization`: the layer called once, then ``layer.losses`` (Keras
  puts the activity penalty of the call first, then one penalty per
  regularized trainable weight in creation order; both flavours);
* :func:`regularization_vjp`: the gradient of ``sum(layer.losses)`` on a
  ``tf.GradientTape`` w.r.t. the inputs and every variable;
* :func:`constrain`: each variable through the layer's own
  ``<prefix>_constraint`` object, as an optimizer step applies it
  (``v.assign(constraint(v))``).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from conv_conformance import reference

from . import tf_layers

__all__ = ["initialize", "regularization", "regularization_vjp", "constrain", "seeded", "penalty_value"]

_RANDOM = ("seed",)


def seeded(spec: dict, seed: int) -> dict:
    """The spec with the seed of every initializer that takes one set to `seed`."""
    out = copy.deepcopy(spec)
    for key, value in out["config"].items():
        if key.endswith("_initializer") and isinstance(value, dict) and "seed" in (value.get("config") or {}):
            value["config"]["seed"] = int(seed)
    return out


def _named(layer: Any, spec: dict, flavour: str) -> dict[str, Any]:
    return {tf_layers._variable_name(v, spec["class_name"], flavour): v for v in layer.weights}


def initialize(spec: dict, input_shape: tuple, seed: int, *, flavour: str = "keras3",
               dtype: str = "float32") -> dict[str, np.ndarray]:
    """The weights Keras builds the layer with, every initializer seeded with `seed`."""
    layer = tf_layers.construct(seeded(reference.normalize(spec), seed), flavour=flavour, dtype=dtype)
    layer.build(tuple(input_shape))
    return {k: np.asarray(v.numpy()) for k, v in _named(layer, spec, flavour).items()}


def _order(spec: dict) -> list[str]:
    """The names of layer.losses' entries, in Keras's order: "activity" first, then the regularized
    weights in creation order (kernel or depthwise, pointwise, bias)."""
    nspec = reference.normalize(spec)
    cfg = nspec["config"]
    args = reference.weight_arguments(nspec)
    creation = [w for w in ("kernel", "depthwise_kernel", "pointwise_kernel", "bias") if w in args]
    names = ["activity"] if cfg.get("activity_regularizer") else []
    return names + [w for w in creation if cfg.get(args[w]["regularizer"])]


def _losses(spec: dict, inputs: np.ndarray, weights: dict, flavour: str, tape: Any = None):
    tf, layer, named, x = tf_layers._prepare(spec, inputs, weights, flavour)
    if tape is not None:
        tape.watch(x)
    layer(x)
    losses = list(layer.losses)
    names = _order(spec)
    if len(losses) != len(names):
        raise RuntimeError(f"layer.losses has {len(losses)} entries; the spec regularizes {names}")
    return tf, dict(zip(names, losses)), x, named


def regularization(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *,
                   flavour: str = "keras3") -> dict[str, float]:
    """{weight or "activity": penalty} from layer.losses after one call."""
    tf, losses, _, _ = _losses(spec, inputs, weights, flavour)
    return {k: penalty_value(tf, v) for k, v in losses.items()}


def penalty_value(tf: Any, value: Any) -> float:
    """A penalty tensor as a Python float. Widened to float32 first (exact): NumPy cannot take a
    0-d bfloat16 tensor from TensorFlow ("object __array__ method not producing an array")."""
    return float(tf.cast(value, tf.float32).numpy()) if value.dtype == tf.bfloat16 else float(np.asarray(value))


def regularization_vjp(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *,
                       flavour: str = "keras3") -> dict[str, np.ndarray]:
    """Gradient of sum(layer.losses) w.r.t. "inputs" and every weight (tf.GradientTape)."""
    tf, _ = tf_layers._modules(flavour)
    with tf.GradientTape(persistent=False) as tape:
        _, losses, x, named = _losses(spec, inputs, weights, flavour, tape)
        total = tf.add_n([tf.cast(v, x.dtype) for v in losses.values()]) if losses else tf.zeros((), x.dtype)
    sources = [x] + [v for _, v in named]
    grads = tape.gradient(total, sources)
    out = {}
    for name, source, grad in zip(["inputs"] + [n for n, _ in named], sources, grads):
        out[name] = np.zeros(tuple(source.shape), np.asarray(inputs).dtype) if grad is None else np.asarray(grad)
    return out


def constrain(spec: dict, weights: dict[str, np.ndarray], *, flavour: str = "keras3") -> dict[str, np.ndarray]:
    """Every weight after the layer's own constraint object (unchanged without one)."""
    nspec = reference.normalize(spec)
    dtype = np.asarray(next(iter(weights.values()))).dtype.name
    shape = _input_shape_for(nspec, weights)
    layer = tf_layers.construct(nspec, flavour=flavour, dtype=dtype)
    layer.build(shape)
    named = tf_layers._load(layer, nspec["class_name"], weights, flavour)
    args = reference.weight_arguments(nspec)
    out = {}
    for name, variable in named:
        prefix = args[name]["constraint"]
        c = getattr(layer, prefix, None)
        out[name] = np.asarray(c(variable) if c is not None else variable.numpy())
    return out


def _input_shape_for(nspec: dict, weights: dict) -> tuple:
    """An input shape whose channel count gives these weights (1 in every spatial dimension)."""
    layer = reference.LAYERS[nspec["class_name"]]
    cfg = nspec["config"]
    k = np.shape(weights.get("kernel", weights.get("depthwise_kernel")))
    if layer.family == "conv":
        c = k[-2] * cfg["groups"]
    elif layer.family == "conv_transpose":
        c = k[-1]
    else:
        c = k[-2]
    spatial = [max(1, (kk - 1) * d + 1) for kk, d in zip(cfg["kernel_size"], cfg["dilation_rate"])]
    return (1, c, *spatial) if cfg["data_format"] == "channels_first" else (1, *spatial, c)

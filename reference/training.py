"""The training-time arguments of the convolution layers, per weight.

Which argument drives which weight (Keras 3 names)::

    Conv / ConvTranspose:  kernel_*    -> "kernel"
    DepthwiseConv:         depthwise_* -> "kernel"   (Keras 2 calls the weight "depthwise_kernel")
    SeparableConv:         depthwise_* -> "depthwise_kernel", pointwise_* -> "pointwise_kernel"
    every family:          bias_*      -> "bias" (when use_bias), activity_regularizer -> the output

    reference.initializer_distributions(spec, input_shape)  # {weight: Distribution}
    reference.regularization(spec, inputs, weights)       # {weight or "activity": penalty}
    reference.regularization_vjp(spec, inputs, weights)   # {"inputs"/weight: gradient of their sum}
    reference.constrain(spec, weights)                     # {weight: constrained weight}
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import shapes
from .constraints import apply_constraint, norm_axes, normalize_constraint
from .initializers import Distribution, distribution, fans, normalize_initializer
from .regularizers import normalize_regularizer, penalty, penalty_grad
from .shapes import InvalidConfig

__all__ = ["training_arguments", "weight_arguments", "weight_fans", "initializer_distributions",
           "regularization", "regularization_vjp", "constrain", "normalize_training"]

_KINDS = ("initializer", "regularizer", "constraint")
_DEFAULT_INIT = {"kernel": "GlorotUniform", "depthwise": "GlorotUniform", "pointwise": "GlorotUniform",
                 "bias": "Zeros"}
_PREFIXES = {"conv": ("kernel", "bias"), "conv_transpose": ("kernel", "bias"),
             "depthwise": ("depthwise", "bias"), "separable": ("depthwise", "pointwise", "bias")}
_WEIGHT = {"conv": {"kernel": "kernel"}, "conv_transpose": {"kernel": "kernel"},
           "depthwise": {"depthwise": "kernel"},
           "separable": {"depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel"}}


def training_arguments(family: str) -> tuple[str, ...]:
    """The training-time argument names of a layer family, in Keras 3's constructor order."""
    p = _PREFIXES.get(family)
    if p is None:
        return ()
    return (tuple(f"{x}_initializer" for x in p) + tuple(f"{x}_regularizer" for x in p)
            + ("activity_regularizer",) + tuple(f"{x}_constraint" for x in p))


def weight_arguments(spec: dict) -> dict[str, dict[str, str]]:
    """{weight name: {"initializer": argument, "regularizer": ..., "constraint": ...}} of a layer
    (bias only when use_bias)."""
    layer = shapes.layer_of(spec)
    out = {}
    for prefix in _PREFIXES.get(layer.family, ()):
        if prefix == "bias" and not spec["config"].get("use_bias", True):
            continue
        name = "bias" if prefix == "bias" else _WEIGHT[layer.family][prefix]
        out[name] = {k: f"{prefix}_{k}" for k in _KINDS}
    return out


# Defaults per argument (fresh copies made on each normalize).
_INIT_DEFAULTS = {name: {"class_name": cls, "config": normalize_initializer("", "", cls)["config"]}
                  for name, cls in _DEFAULT_INIT.items()}


_MEMO: dict = {}


def _memo(fn: Any, layer: str, arg: str, value: Any) -> Any:
    """fn(layer, arg, value), remembered for values made of hashable scalars (normalize runs on
    every spec the suite touches); a fresh copy each time."""
    try:
        key = (fn, layer, arg, value if not isinstance(value, dict) else
               (value.get("class_name"), tuple(sorted((k, type(v).__name__, v)
                                                      for k, v in (value.get("config") or {}).items()))))
        hit = _MEMO.get(key)
    except TypeError:  # a list inside (axes): not hashable
        return fn(layer, arg, value)
    if hit is None:
        hit = fn(layer, arg, value)
        if len(_MEMO) < 4096:
            _MEMO[key] = hit
    return {"class_name": hit["class_name"], "config": dict(hit["config"])}


def normalize_training(layer: shapes.Layer, config: dict, out: dict) -> None:
    """Fill ``out`` with the layer's training-time arguments, normalized (InvalidConfig if Keras
    rejects one). An absent initializer is the layer's default (glorot_uniform, zeros for the
    bias); an explicit null initializer is GlorotUniform (Keras's add_weight default); absent
    regularizers and constraints are null."""
    L = layer.name
    for prefix in _PREFIXES.get(layer.family, ()):
        arg = f"{prefix}_initializer"
        if arg in config:
            out[arg] = _memo(normalize_initializer, L, arg, config[arg])
            if prefix == "bias" and out[arg]["class_name"] == "Orthogonal":
                raise InvalidConfig(L, arg, "cannot be Orthogonal: it initializes weights of rank >= 2 and a "
                                    "bias has rank 1 (Keras raises ValueError at build)", config[arg])
        else:
            d = _INIT_DEFAULTS[prefix]
            out[arg] = {"class_name": d["class_name"], "config": dict(d["config"])}
    for prefix in _PREFIXES.get(layer.family, ()) + ("activity",):
        arg = f"{prefix}_regularizer"
        v = config.get(arg)
        out[arg] = None if v is None else _memo(normalize_regularizer, L, arg, v)
    for prefix in _PREFIXES.get(layer.family, ()):
        arg = f"{prefix}_constraint"
        v = config.get(arg)
        out[arg] = None if v is None else normalize_constraint(L, arg, v)
        if out[arg] is not None and "axis" in out[arg]["config"]:
            ndim = 1 if prefix == "bias" else layer.rank + 2
            try:
                norm_axes(out[arg], ndim)
            except InvalidConfig:
                raise InvalidConfig(L, f"{arg}.axis", f"must be distinct axes of the rank-{ndim} {prefix} weight "
                                    f"(in [-{ndim}, {ndim - 1}]; Keras fails at the first optimizer step)",
                                    out[arg]["config"]["axis"]) from None


# ------------------------------------------------------------------ per-layer computations

def weight_fans(spec: dict, input_shape: Sequence[int]) -> dict[str, tuple[int, int]]:
    """{weight: (fan_in, fan_out)} as Keras computes them for this layer and input shape."""
    return {k: fans(s) for k, s in shapes.weight_shapes(spec, input_shape).items()}


def initializer_distributions(spec: dict, input_shape: Sequence[int]) -> dict[str, Distribution]:
    """{weight: the law of its entries when the layer is built on this input shape}."""
    nspec, shape = shapes.check_input_shape(spec, input_shape)
    wshapes = shapes.checked_weight_shapes(nspec, shape)
    cfg = nspec["config"]
    return {w: distribution(cfg[a["initializer"]], wshapes[w]) for w, a in weight_arguments(nspec).items()}


def _regularized(nspec: dict) -> dict[str, dict]:
    cfg = nspec["config"]
    return {w: cfg[a["regularizer"]] for w, a in weight_arguments(nspec).items() if cfg.get(a["regularizer"])}


def regularization(spec: dict, inputs: Any, weights: dict) -> dict[str, float]:
    """The penalties one call of the layer adds to its losses: one per regularized weight,
    under the weight's name, and "activity": regularizer(output) / batch size (0 for batch 0)."""
    from .layers import forward

    nspec = shapes.normalize(spec)
    out = {w: penalty(r, weights[w]) for w, r in _regularized(nspec).items()}
    act = nspec["config"].get("activity_regularizer")
    if act:
        y = forward(nspec, inputs, weights)
        out["activity"] = penalty(act, y) / y.shape[0] if y.shape[0] else 0.0
    return out


def activity_output_grad(spec: dict, inputs: Any, weights: dict) -> np.ndarray | None:
    """d activity penalty / d output (None without an activity regularizer)."""
    from .layers import forward

    nspec = shapes.normalize(spec)
    act = nspec["config"].get("activity_regularizer")
    if not act:
        return None
    y = forward(nspec, inputs, weights)
    return penalty_grad(act, y) / y.shape[0] if y.shape[0] else np.zeros_like(y)


def regularization_vjp(spec: dict, inputs: Any, weights: dict) -> dict[str, np.ndarray]:
    """Gradient of the sum of :func:`regularization`'s penalties w.r.t. "inputs" and every weight."""
    from .layers import vjp

    nspec = shapes.normalize(spec)
    x = np.asarray(inputs, dtype=np.float64)
    g = activity_output_grad(nspec, x, weights)
    if g is None:
        out = {"inputs": np.zeros_like(x)}
        out.update({k: np.zeros(np.shape(v)) for k, v in weights.items()})
    else:
        out = vjp(nspec, x, weights, g)
    for w, r in _regularized(nspec).items():
        out[w] = out[w] + penalty_grad(r, weights[w])
    return out


def constrain(spec: dict, weights: dict) -> dict[str, np.ndarray]:
    """{weight: the weight after its constraint} for every weight (unchanged without one), float64."""
    nspec = shapes.normalize(spec)
    cfg = nspec["config"]
    out = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    for w, a in weight_arguments(nspec).items():
        c = cfg.get(a["constraint"])
        if c and w in out:
            out[w] = apply_constraint(c, out[w])
    return out

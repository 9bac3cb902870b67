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
from .layers import forward, vjp
from .constraints import apply_constraint
from .initializers import Distribution, distribution, fans
from .regularizers import penalty, penalty_grad
from .training_args import KINDS, PREFIXES, WEIGHT_NAMES, normalize_training, training_arguments

__all__ = ["training_arguments", "weight_arguments", "weight_fans", "initializer_distributions",
           "regularization", "regularization_vjp", "constrain", "normalize_training"]

def weight_arguments(spec: dict) -> dict[str, dict[str, str]]:
    """{weight name: {"initializer": argument, "regularizer": ..., "constraint": ...}} of a layer
    (bias only when use_bias)."""
    layer = shapes.layer_of(spec)
    out = {}
    for prefix in PREFIXES.get(layer.family, ()):
        if prefix == "bias" and not spec["config"].get("use_bias", True):
            continue
        name = "bias" if prefix == "bias" else WEIGHT_NAMES[layer.family][prefix]
        out[name] = {k: f"{prefix}_{k}" for k in KINDS}
    return out



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
    nspec = shapes.normalize(spec)
    out = {w: penalty(r, weights[w]) for w, r in _regularized(nspec).items()}
    act = nspec["config"].get("activity_regularizer")
    if act:
        y = forward(nspec, inputs, weights)
        out["activity"] = penalty(act, y) / y.shape[0] if y.shape[0] else 0.0
    return out


def activity_output_grad(spec: dict, inputs: Any, weights: dict) -> np.ndarray | None:
    """d activity penalty / d output (None without an activity regularizer)."""
    nspec = shapes.normalize(spec)
    act = nspec["config"].get("activity_regularizer")
    if not act:
        return None
    y = forward(nspec, inputs, weights)
    return penalty_grad(act, y) / y.shape[0] if y.shape[0] else np.zeros_like(y)


def regularization_vjp(spec: dict, inputs: Any, weights: dict) -> dict[str, np.ndarray]:
    """Gradient of the sum of :func:`regularization`'s penalties w.r.t. "inputs" and every weight."""
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

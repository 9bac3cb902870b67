"""Materializing a case: its arrays, expected values and allowed errors.

:func:`materialize` draws a case's arrays from its seed (a case whose ``meta`` holds ``weight_norms``
then gets its constrained weights' slices rescaled to those norms: :func:`with_slice_norms`);
:func:`materialize_arrays` takes arrays
drawn elsewhere (Hypothesis in ``explore``). Both compute everything a case is scored against
the same way: the reference's outputs and gradients, the allowed errors of the run's tolerance
mode, the strict class's bounds beside them, and the output scale the effective
precision is measured against. The tolerance mode is always an explicit argument.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from conv_conformance import reference
from conv_conformance.reference import InvalidConfig
from conv_conformance.reference.constraints import norm_axes
from conv_conformance.vocabulary import DEFAULT_TOLERANCE, DTYPES, TOLERANCE_MODES

from . import tolerance
from .case import Case

__all__ = ["Materialized", "materialize", "materialize_arrays", "draw_array", "round_to", "check_tolerance_mode",
           "check_dtype", "with_slice_norms"]


@dataclass
class Materialized:
    """A case's arrays (float64, exactly representable in the dtype), expected
    values from the reference and allowed absolute errors."""

    inputs: np.ndarray
    weights: dict[str, np.ndarray]
    output_grad: np.ndarray | None
    expected_output: np.ndarray | None
    expected_gradients: dict[str, np.ndarray] | None
    allowed_output: np.ndarray | None
    allowed_gradients: dict[str, np.ndarray] | None
    # The strict class's allowed errors next to the run mode's above, when computed; None otherwise.
    # At float16 and bfloat16 the low-precision class of the sums of products (float32 accumulation
    # and counted roundings to the dtype), else the probabilistic bound.
    strict_output: np.ndarray | None = None
    strict_gradients: dict[str, np.ndarray] | None = None
    # sum|x*w| + |b| of every pre-activation output element (layers that sum products; else
    # None): the scale conformance.precision estimates the effective precision against
    output_scale: np.ndarray | None = None


def round_to(a: np.ndarray, dtype: str) -> np.ndarray:
    """a (float64) rounded to the nearest value of dtype, returned as float64."""
    if dtype == "bfloat16":  # round-to-nearest-even on the top 16 bits of float32
        bits = a.astype(np.float32).view(np.uint32)
        bits = (bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) & np.uint32(0xFFFF0000)
        return bits.view(np.float32).astype(np.float64)
    return a.astype(dtype).astype(np.float64)


def draw_array(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Values of magnitude in [0.5, 1) with random signs, rounded to dtype (float64 array).

    Bounded away from 0 so that every product of the sum matters: a missing
    kernel tap moves the result by at least 0.25.
    """
    tolerance.unit_roundoff(dtype)
    mag = rng.uniform(0.5, 1.0, size=tuple(shape))
    return round_to(np.where(rng.random(size=tuple(shape)) < 0.5, -mag, mag), dtype)


#: The smallest float16 magnitude whose square is a normal float16 number (2**-14).
_FLOAT16_SQUARABLE = 2.0 ** -7


def with_slice_norms(spec: dict, weights: dict[str, np.ndarray], norms: dict[str, Sequence[float]],
                     dtype: str) -> dict[str, np.ndarray]:
    """``weights`` with each slice of a norm-constrained weight (the entries its constraint sums
    over) scaled to the norms listed for the weight, in turn over the slices in C order of the
    other axes, then rounded to dtype: the norms hold up to that rounding.

    float16 keeps every slice at or above the norm whose entries all square to normal float16
    numbers (|entry| >= 2**-7): below it the squares underflow, and the formula Keras documents,
    evaluated in float16, returns w / eps, 0 or inf (docs/tolerance.md). float16 therefore has no
    norms at which its epsilon decides the result; its cases keep the norms around the bounds."""
    cfg = reference.normalize(spec)["config"]
    arguments = reference.weight_arguments(spec)
    out = dict(weights)
    for name, targets in norms.items():
        constraint = cfg.get(arguments[name]["constraint"]) if name in arguments else None
        if not constraint or constraint["class_name"] == "NonNeg" or not len(targets):
            raise ValueError(f"weight_norms[{name!r}]: the weight needs a norm constraint (MaxNorm, MinMaxNorm, "
                             f"UnitNorm) and at least one norm; it has {constraint} and {list(targets)}")
        w = np.asarray(weights[name], dtype=np.float64)
        axes = norm_axes(constraint, w.ndim)
        kept = [a for a in range(w.ndim) if a not in axes]
        moved = np.moveaxis(w, kept + list(axes), range(w.ndim))
        slices = moved.reshape(int(np.prod([w.shape[a] for a in kept], dtype=int)), -1)
        norm = np.sqrt(np.sum(slices * slices, axis=1, keepdims=True))
        goal = np.array([float(targets[i % len(targets)]) for i in range(slices.shape[0])])[:, None]
        if dtype == "float16":
            goal = np.maximum(goal, _FLOAT16_SQUARABLE * norm / np.min(np.abs(slices), axis=1, keepdims=True))
        scaled = (slices * (goal / norm)).reshape(moved.shape)
        out[name] = round_to(np.moveaxis(scaled, range(w.ndim), kept + list(axes)), dtype)
    return out


def _fallback_config(layer: str, config: dict) -> dict:
    safe = {"padding": "same" if reference.LAYERS[layer].family not in ("zero_padding",) else 1, "strides": 1,
            "dilation_rate": 1, "kernel_size": 1, "groups": 1, "filters": 2, "output_padding": None,
            "activation": "linear", "data_format": "channels_last", "depth_multiplier": 1, "cropping": 0,
            "size": 1, "interpolation": "nearest"}
    return {k: safe.get(k, v) for k, v in config.items()}


def _plausible_weight_shapes(spec: dict, shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Weight shapes for a rejected spec: its own if they can be computed, else those
    of the spec with one (or every) offending argument replaced by a safe value."""
    try:
        return reference.weight_shapes(spec, shape)
    except InvalidConfig:
        pass
    config = spec.get("config", {})
    safe = _fallback_config(spec["class_name"], config)
    for key in config:
        try:
            return reference.weight_shapes({"class_name": spec["class_name"], "config": config | {key: safe[key]}},
                                           shape)
        except InvalidConfig:
            continue
    try:
        return reference.weight_shapes({"class_name": spec["class_name"], "config": safe}, shape)
    except InvalidConfig:
        return {}



def check_tolerance_mode(mode: str) -> str:
    """``mode`` if it is a tolerance mode; ValueError naming the allowed ones otherwise."""
    if mode not in TOLERANCE_MODES:
        raise ValueError(f"Argument `tolerance` must be one of {', '.join(map(repr, TOLERANCE_MODES))}. "
                         f"Received: tolerance={mode!r}")
    return mode


def check_dtype(dtype: str) -> str:
    """``dtype`` if cases can be drawn in it; ValueError naming the allowed ones otherwise."""
    if dtype not in DTYPES:
        raise ValueError(f"Argument `dtype` must be one of {', '.join(map(repr, DTYPES))}. "
                         f"Received: dtype={dtype!r}")
    return dtype


def materialize_arrays(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
                       output_grad: np.ndarray | None, dtype: str,
                       tolerance_mode: str = DEFAULT_TOLERANCE) -> Materialized:
    """Expected values and allowed errors of a valid ``spec`` on given float64 arrays (exactly
    representable in ``dtype``). ``allowed_*`` are the bounds of ``tolerance_mode``; ``strict_*``
    the strict class: at float16 and bfloat16 the low-precision class of the sums of products
    (float32 accumulation, counted roundings: oracle.tolerance), else the probabilistic bound."""
    mode = check_tolerance_mode(tolerance_mode)
    check_dtype(dtype)
    expected = reference.forward(spec, inputs, weights)
    expected_grads = reference.vjp(spec, inputs, weights, output_grad) if output_grad is not None else None
    bounds, (strict, strict_grads), scale = tolerance.bounds_strict_scale(spec, inputs, weights, output_grad, dtype)
    allowed, allowed_grads = bounds[mode]
    return Materialized(inputs, weights, output_grad, expected, expected_grads, allowed, allowed_grads,
                        strict_output=strict, strict_gradients=strict_grads, output_scale=scale)


def materialize(case: Case, dtype: str = "float32", tolerance_mode: str = DEFAULT_TOLERANCE) -> Materialized:
    """Arrays, expected values and allowed errors of a case; deterministic from
    (case.seed, dtype). Invalid cases get inputs and plausible weights only."""
    check_tolerance_mode(tolerance_mode)
    check_dtype(dtype)
    rng = np.random.default_rng([case.seed, DTYPES.index(dtype)])
    if case.kind == "invalid":
        shapes = _plausible_weight_shapes(case.spec, case.input_shape)
        inputs = draw_array(rng, case.input_shape, dtype)
        weights = {k: draw_array(rng, shapes[k], dtype) for k in sorted(shapes)}
        return Materialized(inputs, weights, None, None, None, None, None)
    shapes = reference.weight_shapes(case.spec, case.input_shape)
    inputs = draw_array(rng, case.input_shape, dtype)
    weights = {k: draw_array(rng, shapes[k], dtype) for k in sorted(shapes)}
    if case.meta and "weight_norms" in case.meta:
        weights = with_slice_norms(case.spec, weights, case.meta["weight_norms"], dtype)
    output_shape = reference.output_shape(case.spec, case.input_shape)
    grad = draw_array(rng, output_shape, dtype) if case.gradient else None
    return materialize_arrays(case.spec, inputs, weights, grad, dtype, tolerance_mode)

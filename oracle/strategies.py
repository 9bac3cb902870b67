"""Hypothesis strategies for layer configurations Keras accepts, and for ones it rejects.

:func:`valid_cases` draws a layer, every argument in every accepted form (an
int or a list for tuple arguments, upper or lower case strings, defaults left
out or given), both data formats, every activation and interpolation, an input
shape (size-1 dimensions, a kernel equal to the input, odd and even lengths)
and arrays exactly representable in the dtype; one input in 8 has a batch of 0. :func:`invalid_cases` draws a
valid configuration and breaks one rule of Keras (the mutations of
:func:`oracle.cases.mutations`). Both shrink toward small kernels, stride 1,
channels_last and the linear activation.

Imports no framework: NumPy, Hypothesis and the reference only.
"""
from __future__ import annotations

import copy
from typing import Any, Iterable, NamedTuple

import numpy as np
from hypothesis import assume, strategies as st

from conv_conformance import reference
from conv_conformance.reference import InvalidConfig

from .cases import SHAPE_MODES, NoInputShape, input_shape_for, mutations
from .materialize import draw_array
from .tolerance import unit_roundoff
from . import training_factors

__all__ = ["ValidCase", "InvalidCase", "valid_cases", "invalid_cases", "configs"]


class ValidCase(NamedTuple):
    """A configuration Keras accepts, with arrays (float64, representable in the dtype)."""

    spec: dict
    input_shape: tuple[int, ...]
    inputs: np.ndarray
    weights: dict[str, np.ndarray]
    output_grad: np.ndarray


class InvalidCase(NamedTuple):
    """A configuration Keras rejects; ``reason`` names the rule it breaks."""

    spec: dict
    input_shape: tuple[int, ...]
    reason: str


def _layers(layers: Iterable[str] | None) -> list[str]:
    names = sorted(reference.LAYERS) if layers is None else list(layers)
    unknown = [n for n in names if n not in reference.LAYERS]
    if unknown or not names:
        raise ValueError(f"Argument `layers` must name layers among {', '.join(sorted(reference.LAYERS))}. "
                         f"Received: layers={layers!r}")
    return names


def _check_range(name: str, lo: int, hi: int, minimum: int) -> None:
    if not (minimum <= lo <= hi):
        raise ValueError(f"Arguments `min_{name}` and `max_{name}` must satisfy {minimum} <= min <= max. "
                         f"Received: min_{name}={lo}, max_{name}={hi}")


def _tuple_form(draw, values: list[int]) -> Any:
    """An accepted form of a tuple argument: an int when all entries agree, else the list or tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return list(values) if draw(st.booleans()) else tuple(values)


@st.composite
def configs(draw, layer: str, *, activations: Iterable[str] | None = None,
            data_formats: Iterable[str] | None = None, max_kernel_size: int = 3, max_strides: int = 3,
            max_dilation_rate: int = 4, max_filters: int = 4) -> tuple[dict, str]:
    """(raw spec, shape mode) for one layer; arguments in any accepted form.

    * ``layer``: the class name.
    * ``activations``: activations to draw from (default: all).
    * ``data_formats``: data formats to draw from (default: both).
    * ``max_kernel_size``, ``max_strides``, ``max_dilation_rate``, ``max_filters``:
      upper bounds, per spatial dimension where it applies.
    """
    lay = reference.LAYERS[layer]
    r, fam = lay.rank, lay.family
    cfg: dict[str, Any] = {}
    dims = lambda hi: draw(st.lists(st.integers(1, hi), min_size=r, max_size=r))  # noqa: E731
    if "data_format" in lay.arguments:
        df = draw(st.sampled_from(list(data_formats or ("channels_last", "channels_first"))))
        if df != "channels_last" or draw(st.booleans()):
            cfg["data_format"] = df
    if fam in ("conv", "conv_transpose", "depthwise", "separable"):
        kernel = dims(max_kernel_size)
        strides = dims(max_strides)
        no_dilation = fam in ("conv", "conv_transpose") and max(strides) > 1
        dilation = [1] * r if no_dilation else dims(max_dilation_rate if fam != "conv_transpose" else 2)
        cfg["kernel_size"] = _tuple_form(draw, kernel)
        if strides != [1] * r or draw(st.booleans()):
            cfg["strides"] = _tuple_form(draw, strides)
        if dilation != [1] * r or draw(st.booleans()):
            cfg["dilation_rate"] = _tuple_form(draw, dilation)
        paddings = ["valid", "same"] + (["causal"] if fam == "conv" and r == 1 else [])
        padding = draw(st.sampled_from(paddings))
        cfg["padding"] = padding.upper() if draw(st.integers(0, 5)) == 0 else padding
        if fam != "depthwise":
            cfg["filters"] = draw(st.integers(1, max_filters))
        if fam == "conv":
            divisors = [g for g in range(1, cfg["filters"] + 1) if cfg["filters"] % g == 0]
            groups = draw(st.sampled_from(divisors))
            if groups > 1 or draw(st.booleans()):
                cfg["groups"] = groups
        if fam in ("depthwise", "separable"):
            cfg["depth_multiplier"] = draw(st.integers(1, 3))
        if fam == "conv_transpose" and draw(st.booleans()):
            cfg["output_padding"] = _tuple_form(draw, [draw(st.integers(0, s - 1)) for s in strides])
        act = draw(st.sampled_from(list(activations or reference.ACTIVATIONS)))
        if act != "linear" or draw(st.booleans()):
            cfg["activation"] = act
        if draw(st.booleans()):
            cfg["use_bias"] = draw(st.booleans())
        if draw(st.integers(0, 3)) == 0:  # initializers, regularizers, constraints
            cfg.update(training_factors.draw_arguments(draw, layer))
    elif fam in ("cropping", "zero_padding"):
        key = "cropping" if fam == "cropping" else "padding"
        pairs = [[draw(st.integers(0, 2)), draw(st.integers(0, 2))] for _ in range(r)]
        if r == 1:
            cfg[key] = pairs[0][0] if pairs[0][0] == pairs[0][1] and draw(st.booleans()) else pairs[0]
        elif all(a == b for a, b in pairs) and draw(st.booleans()):
            cfg[key] = _tuple_form(draw, [a for a, _ in pairs])
        else:
            cfg[key] = pairs
    else:
        size = dims(3)
        cfg["size"] = size[0] if r == 1 else _tuple_form(draw, size)
        if "interpolation" in lay.arguments:
            cfg["interpolation"] = draw(st.sampled_from(reference.INTERPOLATIONS))
    spec = {"class_name": layer, "config": cfg}
    try:
        reference.normalize(spec)
    except InvalidConfig:
        assume(False)
    mode = draw(st.sampled_from([m for m in SHAPE_MODES if m != "empty"]))
    return spec, "empty" if draw(st.integers(0, 7)) == 7 else mode  # a batch of 0 one time in 8


@st.composite
def valid_cases(draw, *, layers: Iterable[str] | None = None, dtype: str = "float64",
                activations: Iterable[str] | None = None, data_formats: Iterable[str] | None = None,
                max_kernel_size: int = 3, max_strides: int = 3, max_dilation_rate: int = 4,
                max_filters: int = 4) -> ValidCase:
    """Configurations Keras accepts, with inputs, weights and an output gradient.

    * ``layers``: class names to draw from (default: every layer).
    * ``dtype``: arrays hold values exactly representable in this dtype.
    * ``activations``, ``data_formats``: restrict those arguments (default: all).
    * ``max_kernel_size``, ``max_strides``, ``max_dilation_rate``, ``max_filters``:
      upper bounds (each >= 1).
    """
    names = _layers(layers)
    unit_roundoff(dtype)
    for name, hi in (("kernel_size", max_kernel_size), ("strides", max_strides),
                     ("dilation_rate", max_dilation_rate), ("filters", max_filters)):
        _check_range(name, 1, hi, 1)
    layer = draw(st.sampled_from(names))
    spec, mode = draw(configs(layer, activations=activations, data_formats=data_formats,
                              max_kernel_size=max_kernel_size, max_strides=max_strides,
                              max_dilation_rate=max_dilation_rate, max_filters=max_filters))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    try:
        shape = input_shape_for(reference.normalize(spec), mode, rng)
    except (InvalidConfig, NoInputShape):  # e.g. glu on an odd channel count or an always-odd length
        assume(False)
    w_shapes = reference.weight_shapes(spec, shape)
    inputs = draw_array(rng, shape, dtype)
    weights = {k: draw_array(rng, w_shapes[k], dtype) for k in sorted(w_shapes)}
    grad = draw_array(rng, reference.output_shape(spec, shape), dtype)
    return ValidCase(spec, tuple(shape), inputs, weights, grad)


@st.composite
def invalid_cases(draw, *, layers: Iterable[str] | None = None) -> InvalidCase:
    """Configurations Keras rejects: a valid one with one rule broken.

    * ``layers``: class names to draw from (default: every layer).
    """
    names = _layers(layers)
    layer = draw(st.sampled_from(names))
    spec, mode = draw(configs(layer))
    nspec = reference.normalize(spec)
    try:
        shape = input_shape_for(nspec, mode, np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))))
    except (InvalidConfig, NoInputShape):
        assume(False)
    reason, mutate = draw(st.sampled_from(mutations(layer)))
    config, bad_shape = mutate(copy.deepcopy(nspec["config"]), list(shape))
    bad = {"class_name": layer, "config": config}
    try:
        reference.output_shape(bad, bad_shape)
    except InvalidConfig:
        return InvalidCase(bad, tuple(bad_shape), reason)
    assume(False)
    raise AssertionError("unreachable")

"""Keras's padding and cropping amounts, per spatial dimension, for adapters
that translate Keras semantics onto another framework's primitives.

Pure arithmetic on a normalized config (see ``reference.normalize``); the
formulas themselves live in ``reference.shapes``.
"""
from __future__ import annotations

from conv_conformance.reference import shapes

__all__ = ["conv_pads", "transpose_windows", "amounts", "sizes", "plain_float"]


conv_pads = shapes.conv_padding  # Keras's padding rules, from the one source of truth


def transpose_windows(cfg: dict, spatial: tuple[int, ...]) -> list[tuple[int, int]]:
    """(crop_before, output length) per spatial dimension of a transposed
    convolution: Keras's output element o receives x[i]*w[t] where
    o = i*s + t*d - crop_before."""
    out = []
    for j, n in enumerate(spatial):
        op = None if cfg["output_padding"] is None else cfg["output_padding"][j]
        out.append(shapes.transpose_crop(n, cfg["kernel_size"][j], cfg["strides"][j],
                                         cfg["dilation_rate"][j], cfg["padding"], op))
    return out


def amounts(cfg: dict, key: str, rank: int) -> list[tuple[int, int]]:
    """Cropping / ZeroPadding (before, after) per spatial dimension."""
    value = cfg[key]
    return [tuple(value)] if rank == 1 else [tuple(v) for v in value]


sizes = shapes.upsampling_factors  # UpSampling factors per spatial dimension


def plain_float(array) -> "np.ndarray":
    """The array as a new NumPy array of a float dtype: bfloat16 (an ml_dtypes extension
    type that generic NumPy code does not treat as floating) widens exactly to float32;
    float16/32/64 keep their dtype. Always a copy: JAX on the CPU may hand back the caller's
    own buffer (an identity gradient, e.g. Cropping1D with cropping 0, aliases output_grad),
    and a result must never be a view of the caller's arrays."""
    import numpy as np

    array = np.asarray(array)
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else np.array(array, copy=True)

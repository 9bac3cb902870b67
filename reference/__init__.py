"""A literal float64 NumPy reference for Keras convolutional layers.

    y = reference.forward(spec, inputs, weights)            # float64 ndarray
    g = reference.vjp(spec, inputs, weights, output_grad)   # {"inputs": dx, "kernel": dk, ...}
    s = reference.output_shape(spec, input_shape)

Imports nothing but NumPy and the standard library.
"""
from __future__ import annotations

from .shapes import InvalidConfig, normalize, output_shape, weight_shapes, LAYERS, ACTIVATIONS, INTERPOLATIONS
from .layers import forward, vjp

__all__ = ["forward", "vjp", "output_shape", "normalize", "weight_shapes", "InvalidConfig",
           "LAYERS", "ACTIVATIONS", "INTERPOLATIONS"]

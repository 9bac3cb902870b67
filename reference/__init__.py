"""A literal float64 NumPy reference for Keras convolutional layers.

    y = reference.forward(spec, inputs, weights)            # float64 ndarray
    g = reference.vjp(spec, inputs, weights, output_grad)   # {"inputs": dx, "kernel": dk, ...}
    s = reference.output_shape(spec, input_shape)
    p = reference.regularization(spec, inputs, weights)    # {"kernel": ..., "activity": ...}
    w = reference.constrain(spec, weights)                  # weights after their constraints
    d = reference.initializer_distributions(spec, input_shape)  # {weight: Distribution}

Imports nothing but NumPy and the standard library.
"""
from __future__ import annotations

from .shapes import InvalidConfig, normalize, output_shape, weight_shapes, LAYERS, ACTIVATIONS, INTERPOLATIONS
from .layers import forward, vjp
from .initializers import Distribution, fans, distribution, sample, TRUNCATION_STD
from .regularizers import penalty, penalty_grad
from .constraints import apply_constraint, EPSILON
from .training import (weight_fans, initializer_distributions, regularization, regularization_vjp,
                       constrain, weight_arguments, training_arguments, activity_output_grad)

__all__ = ["forward", "vjp", "output_shape", "normalize", "weight_shapes", "InvalidConfig",
           "LAYERS", "ACTIVATIONS", "INTERPOLATIONS",
           # training-time arguments
           "Distribution", "fans", "distribution", "sample", "TRUNCATION_STD", "penalty", "penalty_grad",
           "apply_constraint", "EPSILON", "weight_fans", "initializer_distributions", "regularization",
           "regularization_vjp", "constrain", "weight_arguments", "training_arguments",
           "activity_output_grad"]

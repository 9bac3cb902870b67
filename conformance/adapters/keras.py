"""The `keras` adapter: tf.keras of TensorFlow 2.21 (Keras 3, TensorFlow backend).

A thin wrapper over :mod:`oracle.tf_layers` and :mod:`oracle.tf_training`: the
layer is rebuilt from the spec by Keras itself, so whatever Keras computes or
raises is what the conformance run scores. :mod:`.keras_calls` lets one layer
call serve a case's forward, VJP and penalties.
"""
from __future__ import annotations

import numpy as np

from conv_conformance.conformance.levels import DTYPES, declare
from conv_conformance.oracle import tf_layers

from . import keras_calls
from ._geometry import plain_float

__all__ = ["KerasAdapter"]


class KerasAdapter:
    """tf.keras (Keras 3) run through TensorFlow on the CPU."""

    name = "keras"
    #: TensorFlow keeps what it traces and compiles for each new shape (a keras worker grows
    #: from 1.1 GiB after the 1,570 standard cases to 1.6 GiB after three times as many):
    #: the harness replaces the worker after this many cases. Above half the standard profile,
    #: so that a `--jobs 2` run of it never pays for a replacement near its end (starting the
    #: fork server, tracing afresh), and each worker's history repeats from run to run
    #: (keras_calls.enable_xla_cache).
    cases_per_worker = 1200
    flavour = "keras3"
    #: every layer, every optional feature, every dtype, gradients (conformance.levels)
    declaration = declare(dtypes=DTYPES)

    def __init__(self) -> None:
        keras_calls.enable_xla_cache()  # before TensorFlow's import, which reads TF_XLA_FLAGS

    def versions(self) -> dict[str, str]:
        """{"tensorflow": ..., "keras": ...} of the libraries that compute the results."""
        return tf_layers.versions(self.flavour)

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by Keras in the inputs' dtype."""
        return plain_float(keras_calls.forward(spec, inputs, weights, flavour=self.flavour))

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (tf.GradientTape)."""
        return {k: plain_float(v) for k, v in
                keras_calls.vjp(spec, inputs, weights, output_grad, flavour=self.flavour).items()}

    # training-time arguments, through Keras itself: conv_conformance.oracle.tf_training, by way of
    # keras_calls (one layer call for the penalties and the forward, one build per spec and shape)
    def initialize(self, spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
        """The weights Keras builds the layer with (float32), every initializer seeded with `seed`."""
        return keras_calls.initialize(spec, input_shape, seed, flavour=self.flavour)

    def regularization(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, float]:
        """layer.losses after one call, by weight name and "activity"."""
        return keras_calls.regularization(spec, inputs, weights, flavour=self.flavour)

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradient of sum(layer.losses) by the inputs and every weight (tf.GradientTape)."""
        return {k: plain_float(v) for k, v in
                keras_calls.regularization_vjp(spec, inputs, weights, flavour=self.flavour).items()}

    def constrain(self, spec: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each weight through the layer's own constraint object, as an optimizer step applies it."""
        return {k: plain_float(v) for k, v in keras_calls.constrain(spec, weights, flavour=self.flavour).items()}

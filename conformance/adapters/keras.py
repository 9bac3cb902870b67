"""The `keras` adapter: tf.keras of TensorFlow 2.21 (Keras 3, TensorFlow backend).

A thin wrapper over :mod:`oracle.tf_layers`: the layer is rebuilt from the
spec by Keras itself, so whatever Keras computes or raises is what the
conformance run scores.
"""
from __future__ import annotations

import numpy as np

from conv_conformance.oracle import tf_layers

from ._geometry import plain_float

__all__ = ["KerasAdapter"]


class KerasAdapter:
    """tf.keras (Keras 3) run through TensorFlow on the CPU."""

    name = "keras"
    #: TensorFlow keeps what it traces and compiles for each new shape (a keras worker grows
    #: from 1.1 GiB after the 1,570 standard cases to 1.6 GiB after three times as many):
    #: the harness replaces the worker after this many cases.
    cases_per_worker = 1000
    flavour = "keras3"

    def versions(self) -> dict[str, str]:
        """{"tensorflow": ..., "keras": ...} of the libraries that compute the results."""
        return tf_layers.versions(self.flavour)

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by Keras in the inputs' dtype."""
        return plain_float(tf_layers.forward(spec, inputs, weights, flavour=self.flavour))

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (tf.GradientTape)."""
        return {k: plain_float(v) for k, v in tf_layers.vjp(spec, inputs, weights, output_grad, flavour=self.flavour).items()}

"""The `tf-keras` adapter: Keras 2 (the `tf-keras` package) on TensorFlow 2.21.

Keras 2 reads the same layer specs as Keras 3; :mod:`oracle.tf_layers` maps the
one weight name that differs (Keras 2 calls the DepthwiseConv kernel
`depthwise_kernel`). An activation name Keras 2 does not define is declined as
unsupported; everything else, including a configuration Keras 2 rejects that
Keras 3 accepts, goes to Keras 2 as is and is scored as such.
"""
from __future__ import annotations

import numpy as np

from conformance import Unsupported
from oracle import tf_layers

from ._geometry import plain_float

__all__ = ["TfKerasAdapter"]


class TfKerasAdapter:
    """tf-keras (Keras 2) run through TensorFlow on the CPU."""

    name = "tf-keras"
    #: TensorFlow keeps what it traces and compiles for each new shape (a keras worker grows
    #: from 1.1 GiB after the 1,570 standard cases to 1.6 GiB after three times as many):
    #: the harness replaces the worker after this many cases.
    cases_per_worker = 1000
    flavour = "keras2"

    def versions(self) -> dict[str, str]:
        """{"tensorflow": ..., "tf_keras": ...} of the libraries that compute the results."""
        return tf_layers.versions(self.flavour)

    def _check(self, spec: dict) -> None:
        activation = (spec.get("config") or {}).get("activation")
        if isinstance(activation, str):
            import tf_keras

            try:
                tf_keras.activations.get(activation)
            except ValueError:
                raise Unsupported(f"Keras 2 has no activation named {activation!r}") from None

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by Keras 2 in the inputs' dtype."""
        self._check(spec)
        return plain_float(tf_layers.forward(spec, inputs, weights, flavour=self.flavour))

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (tf.GradientTape)."""
        self._check(spec)
        return {k: plain_float(v) for k, v in tf_layers.vjp(spec, inputs, weights, output_grad, flavour=self.flavour).items()}

"""The `tf-keras` adapter: Keras 2 (the `tf-keras` package) on TensorFlow 2.21.

Keras 2 reads the same layer specs as Keras 3; :mod:`oracle.tf_layers` maps the
one weight name that differs (Keras 2 calls the DepthwiseConv kernel
`depthwise_kernel`). An activation Keras 3 defines and Keras 2 does not is declined as
unsupported; everything else, a name neither defines included (Keras 2 rejects it as Keras 3 does), including a configuration Keras 2 rejects that
Keras 3 accepts, goes to Keras 2 as is and is scored as such.
"""
from __future__ import annotations

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.levels import DTYPES, declare

from .keras import KerasAdapter

__all__ = ["TfKerasAdapter"]


class TfKerasAdapter(KerasAdapter):
    """tf-keras (Keras 2) run through TensorFlow on the CPU (KerasAdapter with flavour keras2)."""

    name = "tf-keras"
    flavour = "keras2"
    #: Keras 2 lacks at least one activation of every family but relu (celu, log_sigmoid,
    #: tanh_shrink, hard_silu, hard_swish, squareplus, sparse_plus, the hard family, sparsemax, glu)
    declaration = declare(dtypes=DTYPES, exclude=("activation:exponential", "activation:sigmoid",
                                                  "activation:gated", "activation:softplus",
                                                  "activation:hard", "activation:axis",
                                                  "initializer", "regularizer", "constraint"))

    def _check(self, spec: dict) -> None:
        activation = (spec.get("config") or {}).get("activation")
        if isinstance(activation, str) and activation in reference.ACTIVATIONS:
            import tf_keras

            try:
                tf_keras.activations.get(activation)
            except ValueError:
                raise Unsupported(f"Keras 2 has no activation named {activation!r}") from None

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by Keras 2 in the inputs' dtype."""
        self._check(spec)
        return super().forward(spec, inputs, weights)

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (tf.GradientTape)."""
        self._check(spec)
        return super().vjp(spec, inputs, weights, output_grad)

    # training-time arguments: Keras 2 builds the same layer, so it declines the same specs
    def initialize(self, spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
        """The weights Keras 2 builds the layer with, every initializer seeded with `seed`."""
        self._check_training(spec)
        return super().initialize(spec, input_shape, seed)

    def regularization(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, float]:
        """layer.losses of Keras 2 after one call."""
        self._check_training(spec)
        return super().regularization(spec, inputs, weights)

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradient of sum(layer.losses) (Keras 2, tf.GradientTape)."""
        self._check_training(spec)
        return super().regularization_vjp(spec, inputs, weights)

    def constrain(self, spec: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each weight through Keras 2's constraint object."""
        self._check_training(spec)
        return super().constrain(spec, weights)

    def _check_training(self, spec: dict) -> None:
        self._check(spec)
        for key, value in (spec.get("config") or {}).items():
            if key.endswith("_initializer") and isinstance(value, dict) and \
                    any((value.get("config") or {}).get(a) is not None for a in ("input_axes", "output_axes")):
                raise Unsupported(f"Keras 2 initializers take no input_axes/output_axes ({key})")

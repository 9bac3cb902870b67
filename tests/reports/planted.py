"""An adapter with exactly two planted root causes, each cutting across layers and
categories, for measuring failure clustering (reports.clusters) on a real run.

On top of the reference adapter:
* activation='selu' uses the wrong constants (scale 1 instead of 1.0507..., the
  ELU-like slip): output and gradient fail in every conv layer that has an
  activation;
* padding='same': every gradient the backward pass returns is off by 1% (+1e-3);
  the output is right.
"""
from __future__ import annotations

import copy

import numpy as np

from conv_conformance.conformance.adapters.reference import ReferenceAdapter

WRONG_SELU_ALPHA, WRONG_SELU_SCALE = 1.6732632423543772, 1.0


def _wrong_selu(z: np.ndarray) -> np.ndarray:
    return WRONG_SELU_SCALE * np.where(z > 0, z, WRONG_SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _wrong_selu_derivative(z: np.ndarray) -> np.ndarray:
    return WRONG_SELU_SCALE * np.where(z > 0, 1.0, WRONG_SELU_ALPHA * np.exp(np.minimum(z, 0)))


def _linear(spec: dict) -> dict:
    out = copy.deepcopy(spec)
    out["config"]["activation"] = "linear"
    return out


class TwoCauses(ReferenceAdapter):
    name = "two-causes"
    declaration = None

    def forward(self, spec, inputs, weights):
        if spec["config"].get("activation") != "selu":
            return super().forward(spec, inputs, weights)
        return _wrong_selu(super().forward(_linear(spec), inputs, weights))

    def vjp(self, spec, inputs, weights, output_grad):
        if spec["config"].get("activation") == "selu":
            z = super().forward(_linear(spec), inputs, weights)
            g = np.asarray(output_grad, dtype=np.float64) * _wrong_selu_derivative(z)
            grads = super().vjp(_linear(spec), inputs, weights, g)
        else:
            grads = super().vjp(spec, inputs, weights, output_grad)
        if spec["config"].get("padding") == "same":
            grads = {k: g + 0.01 * np.abs(g) + 1e-3 for k, g in grads.items()}
        return grads


__all__ = ["TwoCauses"]

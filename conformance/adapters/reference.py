"""The float64 NumPy reference as an adapter: the suite's own baseline, which
must score 100% at every profile."""
from __future__ import annotations

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance.levels import DTYPES, declare

__all__ = ["ReferenceAdapter"]


class ReferenceAdapter:
    """Computes every case with :mod:`reference` in float64, whatever the run dtype."""

    name = "reference"
    #: every layer, every optional feature, every dtype, gradients (conformance.levels)
    declaration = declare(dtypes=DTYPES)

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """reference.forward on float64 copies of the arrays."""
        return reference.forward(spec, _f64(inputs), {k: _f64(w) for k, w in weights.items()})

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """reference.vjp: gradients of sum(output * output_grad) by inputs and weights."""
        return reference.vjp(spec, _f64(inputs), {k: _f64(w) for k, w in weights.items()},
                             _f64(output_grad))

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    # training-time arguments
    def initialize(self, spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
        """Each weight drawn by reference.sample (NumPy Generator seeded with [seed, weight index])."""
        nspec = reference.normalize(spec)
        shapes = reference.weight_shapes(nspec, input_shape)
        args = reference.weight_arguments(nspec)
        return {name: reference.sample(nspec["config"][args[name]["initializer"]], shapes[name], [seed, i])
                for i, name in enumerate(sorted(shapes))}

    def regularization(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, float]:
        """reference.regularization on float64 copies."""
        return reference.regularization(spec, _f64(inputs), {k: _f64(w) for k, w in weights.items()})

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """reference.regularization_vjp on float64 copies."""
        return reference.regularization_vjp(spec, _f64(inputs), {k: _f64(w) for k, w in weights.items()})

    def constrain(self, spec: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """reference.constrain on float64 copies."""
        return reference.constrain(spec, {k: _f64(w) for k, w in weights.items()})


def _f64(array: np.ndarray) -> np.ndarray:
    """A float64 copy: never the caller's own buffer (at float64 an identity layer, e.g.
    Cropping1D with cropping 0, would otherwise return a view of it: a mutation)."""
    return np.array(array, dtype=np.float64, copy=True)

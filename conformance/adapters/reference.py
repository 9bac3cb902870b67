"""The float64 NumPy reference as an adapter: the suite's own baseline, which
must score 100% at every profile."""
from __future__ import annotations

import numpy as np

from conv_conformance import reference

__all__ = ["ReferenceAdapter"]


class ReferenceAdapter:
    """Computes every case with :mod:`reference` in float64, whatever the run dtype."""

    name = "reference"

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


def _f64(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)

"""An adapter broken in several distinct ways at once, for real runs that
exercise every part of a report (clusters, heatmap, escaping, compare).

On top of the reference adapter:
* Conv2D with padding='same': output off by 1% (+1e-3): a mismatch cluster
  whose pattern is padding='same';
* ZeroPadding*: forward and vjp raise RuntimeError whose message carries
  HTML (``<script>alert(1)</script>``): an exception cluster that must render inert;
* UpSampling*: declined (Unsupported);
* Cropping*: returns zeros instead of raising on invalid configurations.
"""
from __future__ import annotations

import numpy as np

from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.adapters.reference import ReferenceAdapter

INJECTED = "<script>alert(1)</script>"


class Mixed(ReferenceAdapter):
    name = "mixed"
    declaration = None  # declares nothing, so its UpSampling declines stay unsupported

    def _misbehave(self, spec: dict) -> None:
        cls = spec["class_name"]
        if cls.startswith("UpSampling"):
            raise Unsupported(f"{cls} is not implemented")
        if cls.startswith("ZeroPadding"):
            raise RuntimeError(f"{INJECTED} {cls} padding={spec['config'].get('padding')} & \"quotes\"")

    def forward(self, spec, inputs, weights):
        self._misbehave(spec)
        cls = spec["class_name"]
        try:
            y = super().forward(spec, inputs, weights)
        except Exception:
            if cls.startswith("Cropping"):
                return np.zeros(np.shape(inputs))
            raise
        if cls == "Conv2D" and spec["config"].get("padding") == "same":
            # an empty batch has no value to perturb: an integer dtype fails its output instead
            y = y + 0.01 * np.abs(y) + 1e-3 if y.size else y.astype(np.int32)
        return y

    def vjp(self, spec, inputs, weights, output_grad):
        self._misbehave(spec)
        return super().vjp(spec, inputs, weights, output_grad)

"""The `openvino` adapter: OpenVINO's CPU plugin compiling the ONNX graph
:mod:`.onnx_graph` builds (the one the `onnxruntime` adapter runs), read by
OpenVINO's ONNX frontend.

OpenVINO's CPU plugin picks its own inference precision: in the default
PERFORMANCE mode it runs float32 models in bf16 on CPUs with native bf16
(AVX512_BF16, AMX; this EPYC has AVX512_BF16). The adapter compiles with
``INFERENCE_PRECISION_HINT`` set to the case's precision (``f32`` for
float32) and reads the precision the compiled model reports back; a
compiled model that reports another precision is declined, never scored as
if it were the case's. ``environment()`` records the precision actually used
and the CPU's capabilities.

dtypes: float32 only. float64 is declined (the CPU plugin has no f64
inference precision: f64 models are converted to a lower precision), as are
float16/bfloat16 (no hint is scored here yet). No gradients.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from conv_conformance.conformance import Unsupported

from . import onnx_graph
from .onnxruntime import fingerprint

__all__ = ["OpenVinoAdapter"]

_HINTS = {"float32": "f32"}


class OpenVinoAdapter:
    """OpenVINO CPU plugin, INFERENCE_PRECISION_HINT = the case's precision (f32)."""

    name = "openvino"

    def __init__(self) -> None:
        import openvino as ov

        self.ov = ov
        self.core = ov.Core()
        self._last: tuple[str, Any] | None = None

    def versions(self) -> dict[str, str]:
        """{"openvino": ..., "onnx": ...}."""
        import onnx

        return {"openvino": self.ov.get_version(), "onnx": onnx.__version__}

    def _config(self, hint: str) -> dict[str, str]:
        config = {"INFERENCE_PRECISION_HINT": hint}
        threads = os.environ.get("OMP_NUM_THREADS")  # the harness's per-worker thread limit
        if threads and threads.isdigit():
            config["INFERENCE_NUM_THREADS"] = threads
        return config

    def environment(self) -> dict[str, str]:
        """The CPU's capabilities, the default precision and the one a float32 model compiles to."""
        out = {"ov_device": self.core.get_property("CPU", "FULL_DEVICE_NAME"),
               "ov_cpu_capabilities": " ".join(map(str, self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))),
               "ov_default_inference_precision": str(self.core.get_property("CPU", "INFERENCE_PRECISION_HINT")),
               "onnx_opset": str(onnx_graph.OPSET), "onnx_ir_version": str(onnx_graph.IR_VERSION)}
        probe = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1}}
        compiled = self._compile(probe, np.zeros((1, 1, 1), np.float32),
                                 {"kernel": np.ones((1, 1, 1), np.float32), "bias": np.zeros(1, np.float32)})
        out["ov_inference_precision_float32"] = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        out["ov_execution_mode"] = str(compiled.get_property("EXECUTION_MODE_HINT"))
        return out

    def _compile(self, spec: dict, inputs: np.ndarray, weights: dict) -> Any:
        dtype = np.asarray(inputs).dtype.name
        if dtype not in _HINTS:
            raise Unsupported(f"openvino scores float32 only (INFERENCE_PRECISION_HINT f32); received {dtype}: "
                              "the CPU plugin has no f64 inference precision")
        built = onnx_graph.build(spec, inputs, weights)
        model = self.core.read_model(built.model.SerializeToString())
        compiled = self.core.compile_model(model, "CPU", self._config(_HINTS[dtype]))
        used = compiled.get_property("INFERENCE_PRECISION_HINT")
        if used != getattr(self.ov.Type, _HINTS[dtype]):
            raise Unsupported(f"OpenVINO compiled the model with inference precision {used}, not {_HINTS[dtype]}")
        return compiled

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output computed by OpenVINO's CPU plugin at the case's precision."""
        key = fingerprint(spec, inputs, weights)
        if self._last is None or self._last[0] != key:
            self._last = (key, self._compile(spec, inputs, weights))
        result = self._last[1]([np.ascontiguousarray(inputs)])
        return np.array(result[self._last[1].output(0)])

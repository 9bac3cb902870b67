"""The `openvino` adapter: OpenVINO's CPU plugin compiling the ONNX graph
:mod:`.onnx_graph` builds (the one the `onnxruntime` adapter runs), read by
OpenVINO's ONNX frontend.

OpenVINO's CPU plugin picks its own inference precision: in the default
PERFORMANCE mode it runs float32 models in bf16 on CPUs with native bf16
(AVX512_BF16, AMX) and in f16 on CPUs with native f16 (AVX512_FP16, AMX-FP16).
The adapter compiles with ``INFERENCE_PRECISION_HINT`` set to the case's
precision (``f32``, ``f16``, ``bf16``) and reads the precision the compiled
model reports back.

* float32: a compiled model that reports another precision is declined, never
  scored as if it were float32.
* float16 and bfloat16: the graph holds float16/bfloat16 inputs, weights and
  outputs (what a low-precision export deploys) and is scored as the plugin
  runs it. A CPU without native f16/bf16 arithmetic (no ``FP16``/``BF16`` in
  ``OPTIMIZATION_CAPABILITIES``, e.g. an AVX2-only CPU) silently computes in
  f32 between conversions at the model's inputs and outputs; that is still
  OpenVINO's float16/bfloat16 path as a user gets it on that CPU, and
  ``environment()`` records the precision the compiled model reports and the
  one its Convolution nodes run in.

float64 is declined (the CPU plugin has no f64 inference precision: f64 models
are converted to a lower precision). No gradients.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from conv_conformance.conformance import Unsupported

from . import onnx_graph
from .onnxruntime import fingerprint

__all__ = ["OpenVinoAdapter"]

_HINTS = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


class OpenVinoAdapter:
    """OpenVINO CPU plugin, INFERENCE_PRECISION_HINT = the case's precision (f32, f16, bf16)."""

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
        """The CPU's capabilities, the default precision, and per dtype the precision a model of that
        dtype compiles to and the precision its Convolution runs in."""
        out = {"ov_device": self.core.get_property("CPU", "FULL_DEVICE_NAME"),
               "ov_cpu_capabilities": " ".join(map(str, self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))),
               "ov_default_inference_precision": str(self.core.get_property("CPU", "INFERENCE_PRECISION_HINT")),
               "onnx_opset": str(onnx_graph.OPSET), "onnx_ir_version": str(onnx_graph.IR_VERSION)}
        probe = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1}}
        for dtype in _HINTS:
            try:
                compiled = self._compile(probe, np.zeros((1, 1, 1), dtype),
                                         {"kernel": np.ones((1, 1, 1), dtype), "bias": np.zeros(1, dtype)})
            except Unsupported as exc:
                out[f"ov_inference_precision_{dtype}"] = f"declined: {exc}"
                continue
            out[f"ov_inference_precision_{dtype}"] = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
            out[f"ov_convolution_precision_{dtype}"] = convolution_precision(compiled)
        out["ov_execution_mode"] = str(compiled.get_property("EXECUTION_MODE_HINT"))
        return out

    def _compile(self, spec: dict, inputs: np.ndarray, weights: dict) -> Any:
        dtype = np.asarray(inputs).dtype.name
        if dtype not in _HINTS:
            raise Unsupported(f"openvino scores {', '.join(_HINTS)} (INFERENCE_PRECISION_HINT "
                              f"{', '.join(_HINTS.values())}); received {dtype}: the CPU plugin has no f64 "
                              "inference precision")
        built = onnx_graph.build(spec, inputs, weights)
        model = self.core.read_model(built.model.SerializeToString())
        compiled = self.core.compile_model(model, "CPU", self._config(_HINTS[dtype]))
        used = compiled.get_property("INFERENCE_PRECISION_HINT")
        if dtype == "float32" and used != self.ov.Type.f32:
            raise Unsupported(f"OpenVINO compiled the model with inference precision {used}, not f32")
        return compiled

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output computed by OpenVINO's CPU plugin on a graph of the inputs' dtype."""
        key = fingerprint(spec, inputs, weights)
        if self._last is None or self._last[0] != key:
            self._last = (key, self._compile(spec, inputs, weights))
        x = np.ascontiguousarray(inputs)
        request = self._last[1].create_infer_request()
        if x.dtype.name == "bfloat16":
            # OpenVINO's Python API maps no NumPy type to bf16: hand over and read back the 16-bit patterns
            request.infer([self.ov.Tensor(x.view(np.uint16), x.shape, self.ov.Type.bf16)])
            return np.array(request.get_output_tensor(0).data).view(np.uint16).view(x.dtype)
        request.infer([x])
        return np.array(request.get_output_tensor(0).data)


def convolution_precision(compiled: Any) -> str:
    """The runtime precisions of the compiled model's Convolution nodes (e.g. "f32"), or "none"."""
    found = {str(op.get_rt_info()["runtimePrecision"].astype(str)) for op in compiled.get_runtime_model().get_ops()
             if str(op.get_rt_info()["layerType"].astype(str)) == "Convolution"}
    return ",".join(sorted(found)) or "none"

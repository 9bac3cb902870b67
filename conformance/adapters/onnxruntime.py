"""The `onnxruntime` and `onnxruntime-noopt` adapters: ONNX Runtime's CPU
execution provider running the graph :mod:`.onnx_graph` builds (what a
converter emits for the layer), with graph optimizations on
(``ORT_ENABLE_ALL``, the default a deployment gets) and off
(``ORT_DISABLE_ALL``): ORT's optimizer rewrites the graph (Conv+activation
fusion, NCHWc layout transforms), so the two are scored separately.

dtypes: float32. float64 is scored only when every node of the graph has a
float64 CPU kernel (a session that cannot be created for float64 is declined,
never cast). float16 and bfloat16 are declined: ORT's CPU EP inserts Casts to
float32 around nodes that lack a float16 kernel, so it would not compute in
the case's precision. No gradients (ONNX Runtime inference has no autodiff).
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from conv_conformance.conformance import Unsupported

from . import onnx_graph

__all__ = ["OnnxRuntimeAdapter", "OnnxRuntimeNoOptAdapter"]


def fingerprint(spec: dict, inputs: np.ndarray, weights: dict) -> str:
    """A digest of the spec, the input shape/dtype and the weights' bytes (the model depends on nothing else)."""
    import json

    x = np.asarray(inputs)
    h = hashlib.blake2b(json.dumps(spec, sort_keys=True, default=str).encode(), digest_size=16)
    h.update(f"{x.dtype.str}:{x.shape}".encode())
    for name, array in sorted((k, np.asarray(v)) for k, v in (weights or {}).items()):
        h.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


class OnnxRuntimeAdapter:
    """ONNX Runtime, CPU execution provider, graph optimizations ORT_ENABLE_ALL."""

    name = "onnxruntime"
    optimization = "ORT_ENABLE_ALL"
    dtypes = ("float32", "float64")

    def __init__(self) -> None:
        import onnxruntime as ort

        self.ort = ort
        self._last: tuple[str, Any] | None = None  # (fingerprint, session): forward is called repeatedly

    def versions(self) -> dict[str, str]:
        """{"onnxruntime": ..., "onnx": ...}."""
        import onnx

        return {"onnxruntime": self.ort.__version__, "onnx": onnx.__version__}

    def environment(self) -> dict[str, str]:
        """Graph optimization level, providers, threads, and the pinned opset / IR version."""
        return {"ort_graph_optimization_level": self.optimization,
                "ort_providers": "CPUExecutionProvider",
                "ort_available_providers": ",".join(self.ort.get_available_providers()),
                "ort_intra_op_num_threads": str(self._options().intra_op_num_threads),
                "onnx_opset": str(onnx_graph.OPSET), "onnx_ir_version": str(onnx_graph.IR_VERSION)}

    def _options(self) -> Any:
        options = self.ort.SessionOptions()
        options.graph_optimization_level = getattr(self.ort.GraphOptimizationLevel, self.optimization)
        threads = os.environ.get("OMP_NUM_THREADS")  # the harness's per-worker thread limit
        if threads and threads.isdigit():
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        return options

    def _session(self, spec: dict, inputs: np.ndarray, weights: dict) -> Any:
        key = fingerprint(spec, inputs, weights)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        dtype = np.asarray(inputs).dtype.name
        if dtype not in self.dtypes:
            raise Unsupported(f"{self.name} scores {', '.join(self.dtypes)}; {dtype}: ORT's CPU EP inserts Casts "
                              "to float32 around nodes without kernels of that type, so it would not compute in it")
        built = onnx_graph.build(spec, inputs, weights)
        try:
            session = self.ort.InferenceSession(built.model.SerializeToString(), self._options(),
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            if "NOT_IMPLEMENTED" in str(exc) or "Could not find an implementation" in str(exc):
                raise Unsupported(f"ONNX Runtime CPU has no {dtype} kernel for a node of this graph: "
                                  f"{str(exc).splitlines()[0][:300]}") from None
            raise
        self._last = (key, session)
        return session

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output computed by ONNX Runtime in the inputs' dtype."""
        session = self._session(spec, inputs, weights)
        return session.run(None, {"x": np.ascontiguousarray(inputs)})[0]


class OnnxRuntimeNoOptAdapter(OnnxRuntimeAdapter):
    """ONNX Runtime, CPU execution provider, graph optimizations ORT_DISABLE_ALL."""

    name = "onnxruntime-noopt"
    optimization = "ORT_DISABLE_ALL"

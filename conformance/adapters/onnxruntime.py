"""The `onnxruntime` and `onnxruntime-noopt` adapters: ONNX Runtime's CPU
execution provider running the graph :mod:`.onnx_graph` builds (what a
converter emits for the layer), with graph optimizations on
(``ORT_ENABLE_ALL``, the default a deployment gets) and off
(``ORT_DISABLE_ALL``): ORT's optimizer rewrites the graph (Conv+activation
fusion, NCHWc layout transforms), so the two are scored separately.

dtypes: float32. float64 is scored only when every node of the graph has a
float64 CPU kernel (a session that cannot be created for float64 is declined,
never cast). float16 graphs (float16 inputs, weights and outputs, what a
float16 export deploys) are scored as ORT runs them: its CPU EP has no float16
Conv, ConvTranspose, Resize or activation kernels on x86, so its
InsertCastTransformer runs those nodes in float32 between Casts (with graph
optimizations the Casts of neighbouring float32 nodes cancel, so a
Conv+activation pair rounds to float16 once); ``float16_placement()`` lists
which operators run natively. bfloat16 graphs (opset 22) are tried the same
way; ORT's CPU EP has no bfloat16 kernel for Conv, ConvTranspose, Resize or
any activation and inserts no Casts for bfloat16, so only the data-movement
layers run and the rest is declined with ORT's own message. No gradients (ONNX
Runtime inference has no autodiff).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
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
    dtypes = ("float32", "float64", "float16", "bfloat16")

    def __init__(self) -> None:
        import onnxruntime as ort

        self.ort = ort
        self._last: tuple[str, Any, Any] | None = None  # (fingerprint, session, built): forward is called repeatedly
        self._placement: dict[str, bool] | None = None

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
                "onnx_opset": str(onnx_graph.OPSET), "onnx_ir_version": str(onnx_graph.IR_VERSION),
                "ort_float16_native_ops": ",".join(sorted(op for op, native in self.float16_placement().items()
                                                          if native)),
                "ort_float16_cast_to_float32_ops": ",".join(sorted(op for op, native in
                                                                   self.float16_placement().items() if not native))}

    def float16_placement(self) -> dict[str, bool]:
        """{ONNX op type: True when ORT's CPU EP runs it on float16 natively, False when it inserts
        Casts to float32 around it}, for every op type :mod:`.onnx_graph` emits, read off the
        graph ORT actually runs (``optimized_model_filepath``, no optimizations)."""
        if self._placement is None:
            self._placement = {op: _runs_natively(self.ort, op, attrs) for op, attrs in _PLACEMENT_PROBES.items()}
        return self._placement

    def _options(self) -> Any:
        options = self.ort.SessionOptions()
        options.graph_optimization_level = getattr(self.ort.GraphOptimizationLevel, self.optimization)
        threads = os.environ.get("OMP_NUM_THREADS")  # the harness's per-worker thread limit
        if threads and threads.isdigit():
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        return options

    def _session(self, spec: dict, inputs: np.ndarray, weights: dict) -> tuple[Any, Any]:
        key = fingerprint(spec, inputs, weights)
        if self._last is not None and self._last[0] == key:
            return self._last[1], self._last[2]
        dtype = np.asarray(inputs).dtype.name
        if dtype not in self.dtypes:
            raise Unsupported(f"{self.name} scores {', '.join(self.dtypes)}; received {dtype}")
        built = onnx_graph.build(spec, inputs, weights)
        try:
            session = self.ort.InferenceSession(built.model.SerializeToString(), self._options(),
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            if "NOT_IMPLEMENTED" in str(exc) or "Could not find an implementation" in str(exc):
                raise Unsupported(f"ONNX Runtime CPU has no {dtype} kernel for a node of this graph: "
                                  f"{str(exc).splitlines()[0][:300]}") from None
            raise
        self._last = (key, session, built)
        return session, built

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output computed by ONNX Runtime on a graph of the inputs' dtype."""
        session, built = self._session(spec, inputs, weights)
        x = np.ascontiguousarray(inputs)
        if built.dtype != "bfloat16":
            return session.run(None, {"x": x})[0]
        # ORT's Python API has no NumPy type for bfloat16: pass both tensors as their 16-bit patterns
        from onnx import TensorProto

        out = np.empty(built.output_shape, np.uint16)
        binding = session.io_binding()
        binding.bind_ortvalue_input("x", self.ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            x.view(np.uint16), TensorProto.BFLOAT16))
        binding.bind_ortvalue_output("y", self.ort.OrtValue.ortvalue_from_numpy_with_onnx_type(
            out, TensorProto.BFLOAT16))
        session.run_with_iobinding(binding)
        return out.view(x.dtype)


#: one node per op type onnx_graph emits, with the attributes it needs (single float input)
_PLACEMENT_PROBES: dict[str, dict] = {
    "Conv": {}, "ConvTranspose": {}, "Resize": {}, "Pad": {}, "Slice": {}, "Transpose": {},
    "Relu": {}, "Sigmoid": {}, "Tanh": {}, "Softplus": {}, "Softsign": {}, "Exp": {}, "Mish": {},
    "HardSwish": {}, "HardSigmoid": {}, "LeakyRelu": {}, "Elu": {}, "Selu": {}, "Gelu": {}, "Clip": {},
    "Shrink": {}, "Softmax": {}, "LogSoftmax": {}, "Mul": {}, "Add": {}, "Sub": {}, "Div": {}, "Sqrt": {},
    "Neg": {}, "Where": {}, "Split": {"axis": 1, "num_outputs": 2},
}


def _runs_natively(ort: Any, op: str, attrs: dict) -> bool:
    """Whether ORT's CPU EP runs a float16 `op` node without Casts to float32 around it."""
    from onnx import TensorProto, helper, load, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 2, 2, 2])
    init, inputs, outputs = [], ["x"], ["y"]
    if op in ("Conv", "ConvTranspose"):
        init.append(numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float16), "w"))
        inputs.append("w")
    elif op == "Resize":
        init.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s"))
        inputs += ["", "s"]
    elif op == "Pad":
        init.append(numpy_helper.from_array(np.zeros(8, np.int64), "p"))
        inputs.append("p")
    elif op == "Slice":
        init += [numpy_helper.from_array(np.array([0], np.int64), "a"),
                 numpy_helper.from_array(np.array([1], np.int64), "b")]
        inputs += ["a", "b"]
    elif op in ("Mul", "Add", "Sub", "Div"):
        inputs.append("x")
    elif op == "Where":
        init.append(numpy_helper.from_array(np.ones((1, 2, 2, 2), bool), "c"))
        inputs = ["c", "x", "x"]
    elif op == "Split":
        outputs = ["y", "z"]
    graph = helper.make_graph([helper.make_node(op, inputs, outputs, **attrs)], "probe", [x],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT16, None) for o in outputs], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_graph.OPSET)],
                              ir_version=onnx_graph.IR_VERSION)
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.optimized_model_filepath = os.path.join(tmp, "run.onnx")
        options.log_severity_level = 3
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return "Cast" not in {n.op_type for n in load(options.optimized_model_filepath).graph.node}


class OnnxRuntimeNoOptAdapter(OnnxRuntimeAdapter):
    """ONNX Runtime, CPU execution provider, graph optimizations ORT_DISABLE_ALL."""

    name = "onnxruntime-noopt"
    optimization = "ORT_DISABLE_ALL"

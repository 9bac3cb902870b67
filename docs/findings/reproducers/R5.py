#!/usr/bin/env python3
"""R5: OpenVINO's oneDNN: one-channel strided convolution is wrong.

Cause: O1's corner in OpenVINO's bundled oneDNN, deterministic there
Framework: openvino; measured on openvino >=2026.4.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only openvino and NumPy.
Generated from the conv-conformance findings catalogue (entry R5); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import onnx
import openvino
from onnx import TensorProto, helper


def environment():
    return {"openvino": openvino.__version__, "onnx": onnx.__version__,
            "inference_precision": str(openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def run_openvino(model, *inputs):
    core = openvino.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString()), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled(list(inputs))[0]

# Needs oneDNN dispatched to AVX-512 (a CPU with it, ONEDNN_MAX_CPU_ISA not capping it)
x = np.random.default_rng(0).standard_normal((2, 1, 6, 4)).astype(np.float32)   # NCHW, one channel
k = np.random.default_rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32)   # OIHW
xd, kd = x.astype(np.float64), k.astype(np.float64)
expected = np.stack([np.einsum("nchw,ochw->no", xd[:, :, i:i + 3, 0:3], kd) for i in range(4)], -1)[..., None]
ALLOWED = 1e-4                                                   # output width (4 - 3) // 2 + 1 = 1; float32 rounding ~1e-6
graph = helper.make_graph([helper.make_node("Conv", ["x", "k"], ["y"], strides=[1, 2])], "conv",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 1, 6, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2, 4, 1])],
                          [helper.make_tensor("k", TensorProto.FLOAT, [2, 1, 3, 3], k.ravel().tolist())])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
model.ir_version = 10


def actual():
    return run_openvino(model, x)

REPEAT = 1


def main():
    print("environment:", json.dumps(dict(environment(), python=platform.python_version(),
                                          machine=platform.machine())))
    print("expected:", "an exception (Keras 3 rejects this)" if EXPECT_RAISE else
          np.array2string(np.asarray(expected), precision=6, threshold=20))
    present = False
    for call in range(REPEAT):
        try:
            got = np.asarray(actual(), dtype=np.float64)
        except Exception as exc:  # the divergence may be an exception
            print(f"actual (call {call + 1}): raised {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}")
            if EXPECT_RAISE:
                continue
            if type(exc).__name__ not in RAISES:
                print(f"the reproducer itself failed: the divergence raises {' or '.join(RAISES) or 'nothing'}")
                return 2
            present = True
            continue
        if EXPECT_RAISE:
            print(f"actual (call {call + 1}): a result of shape {got.shape}")
            present = True
            continue
        if got.shape != np.shape(expected):
            print(f"actual (call {call + 1}): shape {got.shape}, expected shape {np.shape(expected)}")
            present = True
            continue
        diff = np.abs(got - expected)
        error = float(np.max(diff)) if got.size else 0.0
        print(f"actual (call {call + 1}):", np.array2string(got, precision=6, threshold=20))
        if np.ndim(ALLOWED) == 0:
            print(f"error (call {call + 1}): {error:.3g} (allowed {ALLOWED:.3g})")
            present = present or not error <= ALLOWED
        else:  # an allowed error per element
            ratio = float(np.max(diff / ALLOWED)) if got.size else 0.0
            print(f"error (call {call + 1}): {error:.3g}; worst error / allowed {ratio:.3g} (over 1: outside)")
            present = present or not np.all(diff <= ALLOWED)
    print("divergence present" if present else "divergence not reproduced: fixed, or not this environment")
    return 1 if present else 0  # 2: the script itself failed (an exception the divergence does not raise)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""R13: OpenVINO mish is absolutely, not relatively, accurate below -5.

Cause: the CPU plugin's Mish
Framework: openvino; measured on openvino >=2026.4.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only openvino and NumPy.
Generated from the conv-conformance findings catalogue (entry R13); regenerate, do not edit.
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

x = np.array([-5.0, -18.15, -20.0], np.float32)
xd = x.astype(np.float64)
expected = xd * np.tanh(np.log1p(np.exp(xd)))                   # mish(x) = x tanh(softplus(x))
ALLOWED = 4 * np.spacing(np.abs(expected).astype(np.float32)).astype(np.float64)   # 4 float32 ulps of each value
graph = helper.make_graph([helper.make_node("Mish", ["x"], ["y"])], "mish",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
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

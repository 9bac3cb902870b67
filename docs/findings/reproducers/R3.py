#!/usr/bin/env python3
"""R3: ONNX Runtime sigmoid is absolutely, not relatively, accurate.

Cause: MLAS logistic has an absolute error bound
Framework: onnxruntime; measured on onnxruntime >=1.32.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only onnxruntime and NumPy.
Generated from the conv-conformance findings catalogue (entry R3); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import onnx
import onnxruntime
from onnx import TensorProto, helper


def environment():
    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
            "providers": onnxruntime.get_available_providers()}


x = np.array([-17.9623, -9.93, -4.99], np.float32)
expected = 1 / (1 + np.exp(-x.astype(np.float64)))
ALLOWED = float(np.min(expected)) * 2.0 ** -21       # 4 float32 ulps of the smallest value
graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "sigmoid",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
model.ir_version = 10
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def actual():
    return session.run(None, {"x": x})[0]

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

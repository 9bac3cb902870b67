#!/usr/bin/env python3
"""R4: OpenVINO bicubic clamps taps beyond the edge.

Cause: the CPU plugin's Interpolate ignores exclude_outside
Framework: openvino; measured on openvino >=2026.4.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only openvino and NumPy.
Generated from the conv-conformance findings catalogue (entry R4); regenerate, do not edit.
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


def keys(t, a=-0.5):
    """Keys' cubic convolution kernel (Keras: a = -0.5)."""
    t = abs(t)
    return ((a + 2) * t - (a + 3)) * t * t + 1 if t <= 1 else ((((t - 5) * t + 8) * t - 4) * a if t < 2 else 0.0)

x = np.array([1.0, 3.0])                                         # one row of two pixels, upsampled 3x along the width
expected = np.zeros(6)
for o in range(6):
    s = (o + 0.5) / 3 - 0.5                                      # half-pixel centres
    taps = [i for i in range(int(np.floor(s)) - 1, int(np.floor(s)) + 3) if 0 <= i < 2]   # taps beyond the edge dropped
    weights = np.array([keys(s - i) for i in taps])
    expected[o] = weights @ x[taps] / weights.sum()              # and the weights renormalised
expected = expected.reshape(1, 1, 6, 1)
ALLOWED = 1e-6                                                   # float32 rounding of values up to 3

node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1,
                        coordinate_transformation_mode="half_pixel")
graph = helper.make_graph([node], "bicubic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 6])],
                          [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 1, 3])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
model.ir_version = 10


def actual():
    return run_openvino(model, x.reshape(1, 1, 1, 2).astype(np.float32)).reshape(1, 1, 6, 1)   # NCHW to NHWC

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

#!/usr/bin/env python3
"""R15: OpenVINO rounds float32 to bfloat16 by truncation when the kept last bit is even.

Cause: the CPU plugin's f32 -> bf16 conversion without AVX512_BF16 adds half an ulp only when the kept last bit is odd
Framework: openvino; measured on openvino >=2026.4.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only openvino and NumPy.
Generated from the conv-conformance findings catalogue (entry R15); regenerate, do not edit.
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
    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return {"openvino": openvino.__version__, "onnx": onnx.__version__, "cpu_capabilities": " ".join(map(str, capabilities))}


# float32 values in [1, 2) whose 16 dropped bits are 0xFF00, 0x8001, 0xC000 and whose kept last bit is even:
# each lies more than half a bfloat16 ulp (2^-8) above 1, so its nearest bfloat16 is 1 + 2^-7
x = (np.uint32(0x3F800000) + np.array([0xFF00, 0x8001, 0xC000], np.uint32)).view(np.float32)
expected = np.full(3, 1 + 2.0 ** -7)
ALLOWED = 0.0                                                   # round to nearest is exact
graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)], "cast",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [3])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
model.ir_version = 10
core = openvino.Core()
request = core.compile_model(core.read_model(model.SerializeToString()), "CPU",
                             {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()


def actual():
    request.infer([x])
    bits = np.array(request.get_output_tensor(0).data).view(np.uint16).astype(np.uint32) << 16   # bf16 -> f32
    return bits.view(np.float32)

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

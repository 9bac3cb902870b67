#!/usr/bin/env python3
"""R18: XNNPACK's float16 sigmoid flushes subnormal results to zero and errs by up to 5 ulps.

Cause: XNNPACK's f16 sigmoid kernel (FORCE_FP16, x86 AVX2/F16C) returns 0 below z = -9.70 and is accurate to about 5 ulps for z < 0
Framework: litert; measured on ai_edge_litert >=2.3.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only ai_edge_litert and NumPy.
Generated from the conv-conformance findings catalogue (entry R18); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import tensorflow as tf
import ai_edge_litert.compiled_model as litert


def environment():
    from importlib import metadata
    return {"tensorflow": tf.__version__, "ai_edge_litert": metadata.version("ai-edge-litert"),
            "xnnpack_flags": "FORCE_FP16 (0x4)"}


z = np.array([[-12.0, -10.0, -9.75, -5.0]], np.float32)           # float16 values, held in float32
expected = 1 / (1 + np.exp(-z.astype(np.float64)))                 # 6.1e-6, 4.5e-5, 5.8e-5: float16 subnormals
ALLOWED = 4 * 2.0 ** -11 * expected + 2.0 ** -25                   # 4 float16 ulps, or half the subnormal spacing
function = tf.function(tf.sigmoid)
converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(tf.TensorSpec(z.shape, tf.float32))])
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
model = litert.CompiledModel.from_buffer(converter.convert(), options=litert.Options(
    litert.HardwareAccelerator.CPU, cpu_options=litert.CpuOptions(num_threads=1, xnnpack_flags=0x4)))   # TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16


def actual():
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    inputs[0].write(z)
    model.run_by_index(0, inputs, outputs)
    return outputs[0].read(4, np.float32).reshape(z.shape)

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

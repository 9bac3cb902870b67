#!/usr/bin/env python3
"""R17: XNNPACK's float16 depthwise convolution accumulates in float16.

Cause: XNNPACK's f16 depthwise kernels round the running sum to float16 after every tap (FORCE_FP16 on x86 AVX2/F16C)
Framework: litert; measured on ai_edge_litert >=2.3.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only ai_edge_litert and NumPy.
Generated from the conv-conformance findings catalogue (entry R17); regenerate, do not edit.
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


# DepthwiseConv2D 3x3 on 8 channels, one output element per channel: tap (0, 0) contributes 32 * 64 = 2048,
# the eight others 0.75 * 0.75 = 0.5625 each (float16 values, held in float32 as the model's inputs are)
x = np.full((1, 3, 3, 8), 0.75, np.float32)
x[0, 0, 0, :] = 32.0
w = np.full((3, 3, 8, 1), 0.75, np.float32)
w[0, 0, :, 0] = 64.0
expected = np.full((1, 1, 1, 8), 2048 + 8 * 0.5625)               # 2052.5
# summed in float32 and rounded once to float16 (ulp 2 at 2048): 2052; a float16 running sum that starts
# with the 2048 tap drops every 0.5625 (less than half an ulp): 2048
ALLOWED = 2.0 ** -11 * 2052.5                                      # one rounding to float16 (u |y|)
kernel = tf.constant(w)
function = tf.function(lambda t: tf.nn.depthwise_conv2d(t, kernel, [1, 1, 1, 1], "VALID"))
converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))])
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
model = litert.CompiledModel.from_buffer(converter.convert(), options=litert.Options(
    litert.HardwareAccelerator.CPU, cpu_options=litert.CpuOptions(num_threads=1, xnnpack_flags=0x4)))   # TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16


def actual():
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    inputs[0].write(x)
    model.run_by_index(0, inputs, outputs)
    return outputs[0].read(8, np.float32).reshape(1, 1, 1, 8)

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

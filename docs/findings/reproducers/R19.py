#!/usr/bin/env python3
"""R19: LiteRT's inherited channels_first bias axis (R11, K2) inside the rigorous float16 bound.

Cause: the converted graph is Keras's own TF graph, whose channels_first bias is added along the last spatial axis (K2)
Framework: litert; measured on ai_edge_litert >=2.3.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only ai_edge_litert and NumPy.
Generated from the conv-conformance findings catalogue (entry R19); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import keras
import tensorflow as tf
import ai_edge_litert.compiled_model as litert


def environment():
    from importlib import metadata
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "ai_edge_litert": metadata.version("ai-edge-litert"), "xnnpack_flags": "FORCE_FP16 (0x4)"}


# Conv2D(2, 3, strides=2), channels_first, on a 5 x 5 input: the output (1, 2, 2, 2) has as many
# columns as channels, so Keras's TF graph adds filter f's bias to column f (K2)
x = (np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5) % 4 + 4) / 8          # float16 values
layer = keras.layers.Conv2D(2, 3, strides=2, data_format="channels_first", kernel_initializer="ones")
layer.build(x.shape)
layer.bias.assign(np.array([0.5, 1.0], np.float32))
windows = np.array([[x[0, 0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].sum() for j in range(2)] for i in range(2)], np.float64)
expected = np.stack([windows + 0.5, windows + 1.0])[None]                      # bias by filter
ALLOWED = 4 * 2.0 ** -11 * np.abs(expected)                                     # a few float16 roundings
function = tf.function(lambda t: layer(t))
converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))])
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
model = litert.CompiledModel.from_buffer(converter.convert(), options=litert.Options(
    litert.HardwareAccelerator.CPU, cpu_options=litert.CpuOptions(num_threads=1, xnnpack_flags=0x4)))   # TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16


def actual():
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
    inputs[0].write(x)
    model.run_by_index(0, inputs, outputs)
    return outputs[0].read(8, np.float32).reshape(1, 2, 2, 2)

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

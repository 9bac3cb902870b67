#!/usr/bin/env python3
"""R20: TFLite converter folds a scalar add into a bias-less TRANSPOSE_CONV as a 1-element bias.

Cause: hard_sigmoid is relu6(t + 3) / 6; the converter fuses the scalar 3 into TRANSPOSE_CONV's bias input as a tensor of 1 element instead of one per filter: the builtin kernel rejects it at prepare, XNNPACK reads past it
Framework: litert; measured on ai_edge_litert >=2.3, tensorflow >=2.21.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only ai_edge_litert and NumPy.
Generated from the conv-conformance findings catalogue (entry R20); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import ai_edge_litert.interpreter as litert
import tensorflow as tf


def environment():
    from importlib import metadata
    return {"tensorflow": tf.__version__, "ai_edge_litert": metadata.version("ai-edge-litert"),
            "litert_op_resolver": "AUTO (XNNPACK)"}


# Keras 3's hard_sigmoid is relu6(t + 3) / 6 in TensorFlow; with no bias (or a zero one) the converter
# folds the scalar 3 into TRANSPOSE_CONV's bias as a 1-element tensor, not one value per filter
x = np.full((1, 1, 1), 0.5, np.float32)
kernel = np.ones((2, 3, 1), np.float32)                               # (width, filters, in_channels)
function = tf.function(lambda t: tf.nn.relu6(tf.nn.conv1d_transpose(t, kernel, (1, 2, 3), 2) + 3.0) / 6.0)
expected = np.full((1, 2, 3), (0.5 + 3.0) / 6.0)                      # every output: hard_sigmoid(0.5)
ALLOWED = 1e-6
converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))])
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
model = converter.convert()


def actual():
    interpreter = litert.Interpreter(model_content=model)             # default resolver: XNNPACK delegate
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])   # filters 1, 2: read past the bias

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

#!/usr/bin/env python3
"""R10: LiteRT: channels_first dilated convolution fails at invoke.

Cause: SpaceToBatchND around an NCHW graph
Framework: litert; measured on ai_edge_litert >=2.3.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only ai_edge_litert and NumPy.
Generated from the conv-conformance findings catalogue (entry R10); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import ai_edge_litert.interpreter as litert
import keras
import tensorflow as tf


def environment():
    import keras
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "ai_edge_litert": getattr(litert, "__version__", "?")}


def run_litert(layer, x):
    """Convert the layer as a deployment does (variables frozen, builtin ops only) and run the interpreter."""
    function = tf.function(lambda t: layer(t))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(
        tf.TensorSpec(x.shape, tf.float32))])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = litert.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

x = np.arange(2 * 6 * 7, dtype=np.float32).reshape(1, 2, 6, 7) / 10   # channels_first
layer = keras.layers.Conv2D(1, 2, dilation_rate=2, data_format="channels_first", use_bias=False, kernel_initializer="ones")
layer.build(x.shape)
xd = x.astype(np.float64)
expected = (xd[:, :, :-2, :-2] + xd[:, :, 2:, :-2] + xd[:, :, :-2, 2:] + xd[:, :, 2:, 2:]).sum(axis=1, keepdims=True)
ALLOWED = 1e-4


def actual():
    return run_litert(layer, x)


RAISES = ("RuntimeError",)

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

#!/usr/bin/env python3
"""K15: Conv3DTranspose input gradient is wrong under 'same' or output_padding.

Cause: TensorFlow's Conv3DTranspose gradient with respect to the inputs
Framework: tensorflow; measured on tensorflow >=2.21.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only tensorflow and NumPy.
Generated from the conv-conformance findings catalogue (entry K15); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import tensorflow as tf


def environment():
    from tensorflow.python.util import _pywrap_util_port
    return {"tensorflow": tf.__version__, "onednn": bool(_pywrap_util_port.IsMklEnabled()),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA")}

n, k, s, out = np.array([3, 3, 3]), np.array([3, 1, 2]), 3, np.array([9, 9, 8])   # Keras: (n-1)*s + k - 2*(k//2) + 2
before = np.maximum((n - 1) * s + k - out, 0) // 2               # the 'same' padding cropped before each axis
w = np.arange(1.0, 7.0).reshape(3, 1, 2) / 7                     # one input and one output channel
dy = np.arange(out.prod(), dtype=np.float64).reshape(*out) % 5 - 2.0
expected = np.zeros((3, 3, 3))                                   # dL/dx[i] = sum over taps a of w[a] dy[i*s + a - before]
for i in np.ndindex(3, 3, 3):
    for a in np.ndindex(3, 1, 2):
        o = np.array(i) * s + np.array(a) - before
        if np.all((o >= 0) & (o < out)):
            expected[i] += w[a] * dy[tuple(o)]
expected = expected.reshape(1, 3, 3, 3, 1)
ALLOWED = 1e-12


def actual():
    x = tf.Variable(np.ones((1, 3, 3, 3, 1)))
    with tf.GradientTape() as tape:
        y = tf.nn.conv3d_transpose(x, w.reshape(3, 1, 2, 1, 1), output_shape=[1, *out, 1], strides=s, padding="SAME")
    return tape.gradient(y, x, output_gradients=dy.reshape(1, *out, 1)).numpy()

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

#!/usr/bin/env python3
"""LK6: UpSampling2D bicubic has no gradient at float16/bfloat16: TensorFlow returns None.

Cause: the gradient registered for ResizeBicubic returns None unless the image is float32 or float64; the tape reports no gradient and no error
Framework: tensorflow; measured on tensorflow >=2.21.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only tensorflow and NumPy.
Generated from the conv-conformance findings catalogue (entry LK6); regenerate, do not edit.
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

x = np.full((1, 1, 1, 1), 0.75)
# every tap of a 1x1 image is its one pixel and each output's weights sum to 1: output = x in all
# 4 pixels, so d sum(output) / dx = 4
expected = np.full((1, 1, 1, 1), 4.0)
ALLOWED = 4 * 4 * 2.0 ** -11                                      # a few float16 roundings of 4


def actual():
    xt = tf.constant(x, tf.float16)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.image.resize(xt, (2, 2), method="bicubic")
    grad = tape.gradient(y, xt, output_gradients=tf.ones_like(y))
    return np.zeros(x.shape) if grad is None else grad.numpy()    # None: no gradient flows (an optimizer skips it)

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

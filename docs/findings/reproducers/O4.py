#!/usr/bin/env python3
"""O4: oneDNN below AVX-512: kernel gradient of a strided 1x1 Conv2D or Conv2DTranspose is sometimes wrong.

Cause: TensorFlow's oneDNN filter-gradient kernels below AVX-512, 1x1 kernel, strided: results vary from call to call
Framework: onednn; measured on tensorflow >=2.21.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only tensorflow and NumPy.
Generated from the conv-conformance findings catalogue (entry O4); regenerate, do not edit.
"""
import os

os.environ['TF_ENABLE_ONEDNN_OPTS'] = '1'
os.environ['ONEDNN_MAX_CPU_ISA'] = 'AVX2'

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

# Needs TensorFlow's oneDNN below AVX-512: this script's environment caps it at AVX2
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 5, 8, 1)).astype(np.float32)            # NHWC, one channel
k = rng.standard_normal((1, 1, 1, 1)).astype(np.float32)            # a 1x1 kernel
g = rng.standard_normal((2, 5, 4, 1)).astype(np.float32)            # strides (1, 2): output (2, 5, 4, 1)
expected = np.einsum("nhwc,nhwo->co", x[:, :, ::2, :].astype(np.float64), g.astype(np.float64)).reshape(1, 1, 1, 1)
ALLOWED = 1e-4                                                     # float32 rounding of a 40-term sum is ~1e-6


def actual():
    kernel = tf.Variable(k)
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(tf.constant(x), kernel, (1, 1, 2, 1), "VALID")
    return tape.gradient(y, kernel, output_gradients=tf.constant(g)).numpy()

REPEAT = 12


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

#!/usr/bin/env python3
"""LK9: Keras 2 hard_sigmoid (T4) inside the rigorous bound.

Cause: T4: Keras 2 defines hard_sigmoid as clip(0.2x + 0.5, 0, 1), Keras 3 as relu6(x + 3) / 6; near 0 the two differ by less than the rigorous bfloat16 bound
Framework: tf_keras; measured on tf_keras >=2.21.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only tf_keras and NumPy.
Generated from the conv-conformance findings catalogue (entry LK9); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import tf_keras


def environment():
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port
    return {"tf_keras": tf_keras.__version__, "tensorflow": tf.__version__,
            "onednn": bool(_pywrap_util_port.IsMklEnabled())}

x = np.array([-0.5, 0.25, 1.25])                                 # exact in bfloat16
expected = np.clip(x + 3, 0, 6) / 6                              # Keras 3: relu6(x + 3) / 6
ALLOWED = 2 * 2.0 ** -8 * np.abs(expected)                       # the strict class: a rounding or two of the result


def actual():
    import tensorflow as tf
    return tf.cast(tf_keras.activations.hard_sigmoid(tf.constant(x, tf.bfloat16)), tf.float64).numpy()

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

#!/usr/bin/env python3
"""T4: Keras 2 hard_sigmoid is a different function.

Cause: Keras 2 defines hard_sigmoid as clip(0.2x + 0.5, 0, 1)
Framework: tf_keras; measured on tf_keras >=2.21.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only tf_keras and NumPy.
Generated from the conv-conformance findings catalogue (entry T4); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke

import tf_keras


def environment():
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port
    return {"tf_keras": tf_keras.__version__, "tensorflow": tf.__version__,
            "onednn": bool(_pywrap_util_port.IsMklEnabled())}

x = np.array([-1.0, 0.5, 2.0], np.float32)
expected = np.clip(x.astype(np.float64) + 3, 0, 6) / 6         # Keras 3: relu6(x + 3) / 6
ALLOWED = 1e-6


def actual():
    import tensorflow as tf
    return tf_keras.activations.hard_sigmoid(tf.constant(x)).numpy()

REPEAT = 1


def main():
    print("environment:", json.dumps(dict(environment(), python=platform.python_version(),
                                          machine=platform.machine())))
    print("expected:", np.array2string(np.asarray(expected), precision=6, threshold=20))
    present = False
    for call in range(REPEAT):
        try:
            got = np.asarray(actual(), dtype=np.float64)
        except Exception as exc:  # the divergence may be an exception
            print(f"actual (call {call + 1}): raised {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}")
            if type(exc).__name__ not in RAISES:
                print(f"the reproducer itself failed: the divergence raises {' or '.join(RAISES) or 'nothing'}")
                return 2
            present = True
            continue
        if got.shape != np.shape(expected):
            print(f"actual (call {call + 1}): shape {got.shape}, expected shape {np.shape(expected)}")
            present = True
            continue
        error = float(np.max(np.abs(got - expected))) if got.size else 0.0
        print(f"actual (call {call + 1}):", np.array2string(got, precision=6, threshold=20))
        print(f"error (call {call + 1}): {error:.3g} (allowed {ALLOWED:.3g})")
        present = present or not error <= ALLOWED
    print("divergence present" if present else "divergence not reproduced: fixed, or not this environment")
    return 1 if present else 0  # 2: the script itself failed (an exception the divergence does not raise)


if __name__ == "__main__":
    sys.exit(main())

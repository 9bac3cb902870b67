#!/usr/bin/env python3
"""LP6: Orthogonal initializer raises at float16 on the NumPy backend: numpy.linalg has no float16.

Cause: Keras's Orthogonal factors its normal draw with QR in the variable's dtype; on the NumPy backend that is numpy.linalg.qr, which refuses float16 (bfloat16 goes through ml_dtypes and works)
Framework: keras; measured on keras >=3.15, numpy >=2.0.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only keras and NumPy.
Generated from the conv-conformance findings catalogue (entry LP6); regenerate, do not edit.
"""
import os

os.environ['KERAS_BACKEND'] = 'numpy'

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import keras


def environment():
    return {"keras": keras.__version__, "backend": keras.backend.backend()}

# Orthogonal's kernel Q has orthonormal columns: Q^T Q = I, to the dtype's rounding of Q's entries
expected = np.eye(3)
ALLOWED = 8 * 2.0 ** -11                                                  # a few roundings of Q to the dtype


def actual():
    q = keras.ops.convert_to_numpy(keras.ops.cast(keras.initializers.Orthogonal(seed=1)((3, 3), dtype="float16"),
                                                  "float32")).astype(np.float64)
    return q.T @ q


RAISES = ("TypeError",)                                    # the exception the divergence raises

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

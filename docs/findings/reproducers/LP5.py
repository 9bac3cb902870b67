#!/usr/bin/env python3
"""LP5: Keras 3's sparsemax (R6) inside the rigorous bound at float16/bfloat16 on the JAX and NumPy backends.

Cause: R6's wrong sparsemax threshold; at float16 and bfloat16 the rigorous bound is wide enough to admit the wrong value in some cases, and the strict class is not
Framework: keras; measured on keras >=3.15, jax >=0.10.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only keras and NumPy.
Generated from the conv-conformance findings catalogue (entry LP5); regenerate, do not edit.
"""
import os

os.environ['KERAS_BACKEND'] = 'jax'

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import keras


def environment():
    return {"keras": keras.__version__, "backend": keras.backend.backend()}

z = np.array([[0.0, 0.5, 0.7]])


def sparsemax(z):
    """Martins & Astudillo (2016): the Euclidean projection onto the simplex."""
    zs = -np.sort(-z, axis=-1)
    k = np.arange(1, z.shape[-1] + 1)
    cs = np.cumsum(zs, axis=-1)
    kz = np.sum(1 + k * zs > cs, axis=-1, keepdims=True)        # the support's size
    tau = (np.take_along_axis(cs, kz - 1, axis=-1) - 1) / kz     # (k-th cumulative sum - 1) / k
    return np.maximum(z - tau, 0)


expected = sparsemax(z)
ALLOWED = 4 * 2.0 ** -11                                   # the strict class: a few roundings of the result


def actual():
    return keras.ops.convert_to_numpy(keras.activations.sparsemax(z.astype(np.float16)))

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

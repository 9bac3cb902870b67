#!/usr/bin/env python3
"""LP3: float16 sigmoid and silu return 0 below -11.09 (J1) inside the rigorous bound.

Cause: XLA computes float16 logistic as 1 / (1 + exp(-x)) in float16 (J1); where the rigorous bound admits the lost value, the strict class does not
Framework: jax; measured on jax >=0.10.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only jax and NumPy.
Generated from the conv-conformance findings catalogue (entry LP3); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import jax
import jax.numpy as jnp


def environment():
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend()}


z = np.array([-11.5, -12.0, -14.0], np.float16)
zd = z.astype(np.float64)
expected = zd / (1 + np.exp(-zd))                                 # silu: -1.2e-4 down to -1.2e-5, float16 normals
# the strict class for an activation: a few unit roundoffs of the result, plus one step of the subnormals
ALLOWED = 4 * 2.0 ** -11 * np.abs(expected) + 2.0 ** -24


def actual():
    return np.asarray(jax.nn.silu(jnp.asarray(z)), np.float64)

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

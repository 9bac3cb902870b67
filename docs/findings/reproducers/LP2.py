#!/usr/bin/env python3
"""LP2: bias gradient summed in float16/bfloat16.

Cause: XLA's CPU reduction of the output gradient over the positions runs in the dtype
Framework: jax; measured on jax >=0.10.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only jax and NumPy.
Generated from the conv-conformance findings catalogue (entry LP2); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import jax


def environment():
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend()}


def strict(exact, abs_sum, terms, u):
    """The strict class: terms summed in float32 (terms * 2^-24 of the sum of magnitudes), one rounding to the dtype."""
    return u * np.abs(exact) + terms * 2.0 ** -24 * abs_sum + 2.0 ** -133


import jax.numpy as jnp

rng = np.random.default_rng(0)
dy = rng.standard_normal((1, 12, 12, 16)).astype(jnp.bfloat16)      # the output gradient of Conv2D(16, 1), NHWC
dyd = dy.astype(np.float64)
expected = dyd.sum(axis=(0, 1, 2))                                  # the bias gradient: 144 terms per channel
ALLOWED = strict(expected, np.abs(dyd).sum(axis=(0, 1, 2)), 144, 2.0 ** -8)


x = jnp.asarray(rng.standard_normal((1, 12, 12, 64)), jnp.bfloat16)
w = jnp.asarray(rng.standard_normal((1, 1, 64, 16)), jnp.bfloat16)


def actual():
    def layer(b):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum((y + b) * jnp.asarray(dy))
    return np.asarray(jax.grad(layer)(jnp.zeros(16, jnp.bfloat16)), np.float64)

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

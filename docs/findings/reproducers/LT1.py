#!/usr/bin/env python3
"""LT1: input gradient with overlapping taps, and ConvTranspose forward, summed in float16/bfloat16.

Cause: the CPU backward-data kernel (and ConvTranspose, the same computation) adds overlapping taps' contributions in the dtype
Framework: torch; measured on torch >=2.13.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only torch and NumPy.
Generated from the conv-conformance findings catalogue (entry LT1); regenerate, do not edit.
"""
import os

import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

import torch


def environment():
    return {"torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def strict(exact, abs_sum, terms, u):
    """The strict class: products summed in float32 (terms * 2^-24 of the sum of magnitudes), one rounding to the dtype."""
    return u * np.abs(exact) + terms * 2.0 ** -24 * abs_sum + 2.0 ** -133


rng = np.random.default_rng(0)
x = rng.standard_normal((2, 64, 12, 12)).astype(np.float16)      # NCHW
w = rng.standard_normal((16, 64, 3, 3)).astype(np.float16)
dy = rng.standard_normal((2, 16, 10, 10)).astype(np.float16)
wd, dyd = w.astype(np.float64), dy.astype(np.float64)
expected, abs_sum = np.zeros((2, 64, 12, 12)), np.zeros((2, 64, 12, 12))
for a in range(3):
    for b in range(3):                                           # overlapping taps: 9 x 16 products per input element
        expected[:, :, a:a + 10, b:b + 10] += np.einsum("noij,oc->ncij", dyd, wd[:, :, a, b])
        abs_sum[:, :, a:a + 10, b:b + 10] += np.einsum("noij,oc->ncij", np.abs(dyd), np.abs(wd[:, :, a, b]))
ALLOWED = strict(expected, abs_sum, 144, 2.0 ** -11)


def actual():
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.conv2d(xt, torch.tensor(w)).backward(torch.tensor(dy))
    return xt.grad.float().numpy()

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

#!/usr/bin/env python3
"""O1: oneDNN on AVX-512: one-channel strided convolution returns unwritten memory.

Cause: oneDNN's AVX-512 convolution leaves the output unwritten for one input channel, strides[0] < strides[1], output width 1
Framework: onednn; measured on see the catalogue.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only torch and NumPy.
Generated from the conv-conformance findings catalogue (entry O1); regenerate, do not edit.
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


def conv2d_nhwc(x, w, strides=(1, 1)):
    """Valid cross-correlation of NHWC x with an HWIO kernel, in float64."""
    (kh, kw), (sh, sw) = w.shape[:2], strides
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :], w)
    return out

x = np.random.default_rng(0).standard_normal((2, 6, 4, 1)).astype(np.float32)   # NHWC, one channel
k = np.random.default_rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32)   # OIHW
expected = conv2d_nhwc(x.astype(np.float64), k.astype(np.float64).transpose(2, 3, 1, 0), strides=(1, 2))
ALLOWED = 1e-4                                                     # float32 rounding of 9-term sums is ~1e-6


def actual():
    y = torch.nn.functional.conv2d(torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(k), stride=(1, 2))
    return y.permute(0, 2, 3, 1).numpy()                           # output width (4 - 3) // 2 + 1 = 1

REPEAT = 3


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

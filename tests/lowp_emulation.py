"""Low-precision convolutions emulated exactly in NumPy with ml_dtypes: honest variants and mutants.

An *honest* variant does what oneDNN, cuDNN, XNNPACK, MLAS and PyTorch's CPU kernels do at float16
and bfloat16: it multiplies values of the dtype exactly and accumulates in float32 (the reference's
own kernels run on float32 arrays: NumPy's einsum and BLAS accumulate in float32; a transposed
convolution scatters into a float64 buffer, which is "float32 or better"), then rounds to the dtype
at one of the places real frameworks round (:data:`PLACEMENTS`). The activation is evaluated in
float32 and rounded once, or, in the ``"op_by_op"`` variant, one Keras op (one kernel) at a time,
each rounded to the dtype (silu = x * sigmoid(x): two roundings). The *mutants* break the strict class's assumptions: they
accumulate in the dtype, round partial sums of a split reduction to the dtype, or flush subnormal
results to zero.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from conv_conformance import reference
from conv_conformance.reference import layers as _layers
from conv_conformance.reference.activations import activate

#: Where an honest variant rounds to the dtype, besides the stored output (which is always rounded):
#: ``fused`` conv + bias + activation in float32, one rounding; ``conv`` after the convolution (bias
#: and activation then in float32); ``conv_bias`` fused conv + bias rounded, the activation in
#: float32; ``conv_then_bias`` after the convolution and after the bias; ``op_by_op`` as
#: ``conv_then_bias`` with the activation evaluated kernel by kernel in the dtype.
PLACEMENTS = ("fused", "conv", "conv_bias", "conv_then_bias", "op_by_op")
NUMPY_DTYPES = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


def rnd(a, dtype: str) -> np.ndarray:
    """a rounded (to nearest even) to the dtype, as float64."""
    return np.asarray(a).astype(NUMPY_DTYPES[dtype]).astype(np.float64)


def _f32(a):
    return np.asarray(a, dtype=np.float64).astype(np.float32)


def float32_convolution(spec: dict, x: np.ndarray, weights: dict) -> np.ndarray:
    """The layer's linear part without the bias, accumulated in float32 (exact products), float64."""
    layer, cfg, x64, w64, _ = _layers._prepare(reference.normalize(spec), x, weights)
    kernels = {k: _f32(v) for k, v in w64.items() if k != "bias"}
    c = _layers._FAMILIES[layer.family][0](cfg, _layers._to_internal(_f32(x64), cfg), kernels)
    return _layers._to_external(np.asarray(c).astype(np.float32), cfg).astype(np.float64)


def _bias(spec: dict, weights: dict, like: np.ndarray) -> np.ndarray:
    if "bias" not in weights:
        return np.zeros_like(like)
    cfg = reference.normalize(spec)["config"]
    b = np.asarray(weights["bias"], dtype=np.float64)
    return np.moveaxis(np.broadcast_to(b, np.moveaxis(like, 1, -1).shape), -1, 1) \
        if cfg.get("data_format") == "channels_first" else np.broadcast_to(b, like.shape)


def _sigmoid(z):  # one kernel, computed in float32 and rounded once (Eigen's, PyTorch's, XLA's)
    return activation_in_float32("sigmoid", z.astype(np.float64)).astype(z.dtype)


_OPS = {  # Keras's activations as the kernels they call, each one rounding in the array's dtype
    "sigmoid": _sigmoid,
    "silu": lambda z: z * _sigmoid(z),  # x * sigmoid(x): two kernels, two roundings
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, np.zeros_like(z)),
    "relu6": lambda z: np.minimum(np.maximum(z, np.zeros_like(z)), np.full_like(z, 6)),
    "linear": lambda z: z,
}


def activation_in_dtype(name: str, z: np.ndarray, dtype: str) -> np.ndarray:
    """The activation of z (values of the dtype), one kernel (one rounding) at a time in the dtype."""
    return np.asarray(_OPS[name](np.asarray(z).astype(NUMPY_DTYPES[dtype]))).astype(np.float64)


def activation_in_float32(name: str, z: np.ndarray) -> np.ndarray:
    """The activation evaluated on float32 (the reference's formula, float64 result rounded to float32)."""
    return _f32(activate(name, _f32(z).astype(np.float64))).astype(np.float64)


def honest(spec: dict, x: np.ndarray, weights: dict, dtype: str, placement: str) -> np.ndarray:
    """The output of an honest float32-accumulating implementation rounding at ``placement``."""
    act = reference.normalize(spec)["config"].get("activation", "linear")
    c = float32_convolution(spec, x, weights)
    b = _bias(spec, weights, c)
    if placement == "fused":
        return rnd(activation_in_float32(act, _f32(c + b)), dtype)
    if placement == "conv":
        return rnd(activation_in_float32(act, _f32(rnd(c, dtype) + b)), dtype)
    if placement == "conv_bias":
        return rnd(activation_in_float32(act, rnd(_f32(c + b), dtype)), dtype)
    z = rnd(_f32(rnd(c, dtype) + b), dtype)
    if placement == "conv_then_bias":
        return rnd(activation_in_float32(act, z), dtype)
    if placement == "op_by_op":
        return activation_in_dtype(act, z, dtype)
    raise ValueError(f"Argument `placement` must be one of {PLACEMENTS}. Received: placement={placement!r}")


# ------------------------------------------------------------------ mutants (Conv1D/Conv2D, 'valid')

def _patches(spec: dict, x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """(..., taps) windows of a stride-1, dilation-1 'valid' channels_last Conv1D/2D, paired with
    the kernel flattened to (taps, filters)."""
    cfg = reference.normalize(spec)["config"]
    assert cfg["padding"] == "valid" and cfg.get("data_format", "channels_last") == "channels_last"
    k = kernel.shape[:-2]
    win = np.lib.stride_tricks.sliding_window_view(x, k, axis=tuple(range(1, 1 + len(k))))
    # win: (batch, out..., channels, k...) -> (batch, out..., k..., channels) -> flat taps
    win = np.moveaxis(win, -len(k) - 1, -1)
    return win.reshape(win.shape[:1 + len(k)] + (-1,))


def accumulated_in_dtype(spec: dict, x: np.ndarray, weights: dict, dtype: str) -> np.ndarray:
    """Mutant: the sum accumulated term by term in the dtype (products rounded too), then the bias."""
    kernel = np.asarray(weights["kernel"], dtype=np.float64)
    p = _patches(spec, np.asarray(x, dtype=np.float64), kernel)
    w = kernel.reshape(-1, kernel.shape[-1])
    acc = np.zeros(p.shape[:-1] + (w.shape[-1],))
    for t in range(p.shape[-1]):
        acc = rnd(acc + rnd(p[..., t, None] * w[t], dtype), dtype)
    return rnd(acc + _bias(spec, weights, acc), dtype)


def split_rounded(spec: dict, x: np.ndarray, weights: dict, dtype: str, parts: int = 2) -> np.ndarray:
    """Mutant: a reduction split over the input channels whose float32 partial sums are stored in the
    dtype before they are added (a rounding moved from after the sum into it)."""
    kernel = np.asarray(weights["kernel"], dtype=np.float64)
    channels = kernel.shape[-2]
    total = 0.0
    for chunk in np.array_split(np.arange(channels), parts):
        masked = np.zeros_like(kernel)
        masked[..., chunk, :] = kernel[..., chunk, :]
        total = total + rnd(float32_convolution(spec, x, {**weights, "kernel": masked}), dtype)
    return rnd(total + _bias(spec, weights, total), dtype)


def flush_subnormals(y: np.ndarray, dtype: str) -> np.ndarray:
    """Mutant: results below the dtype's smallest normal number flushed to zero."""
    tiny = float(ml_dtypes.finfo(NUMPY_DTYPES[dtype]).smallest_normal)
    return np.where(np.abs(y) < tiny, 0.0, y)

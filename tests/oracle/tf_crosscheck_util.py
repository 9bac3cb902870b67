"""Shared by the cross-check tests: the one comparison routine, the channels_last
route for layers TensorFlow cannot run channels_first on CPU, and the table of
known TensorFlow divergences (each pinned by a strict xfail in
test_tf_divergences.py; the property tests route around them)."""
from __future__ import annotations

import copy

import numpy as np

from conv_conformance import reference
from conv_conformance.oracle import tf_layers
from tests.framework_corners import (bias_on_last_axis, tf_conv3d_same_stride_beyond_kernel,
                                     conv3d_transpose_input_gradient_corner,
                                     onednn_avx512, onednn_one_channel_corner, tf_depthwise_batch0_unwritten,
                                     tf_native_kernels, tf_onednn_batch0_returns_input)

# Keras 2 lacks these activations (tf_keras.activations.get raises).
KERAS2_MISSING_ACTIVATIONS = frozenset({
    "celu", "sparse_sigmoid", "log_sigmoid", "hard_tanh", "tanh_shrink", "sparse_plus", "squareplus",
    "hard_silu", "hard_swish", "soft_shrink", "hard_shrink", "sparsemax", "glu"})
# Keras 3's regularizer names that Keras 2 does not know: it keeps them as strings (W9).
KERAS2_UNKNOWN_REGULARIZER_NAMES = frozenset({"l1l2"})


def assert_within(actual, expected, allowed, what: str) -> None:
    """|actual - expected| <= allowed elementwise; the failure names shape, count,
    worst index, both values there and the error ratio."""
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, but should be {expected.shape}"
    err = np.abs(actual - expected)
    bad = ~(err <= allowed)
    if bad.any():
        ratio = np.where(allowed > 0, err / np.where(allowed > 0, allowed, 1), np.inf)
        i = np.unravel_index(np.argmax(np.where(bad, ratio, -1)), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {err.size} elements outside the allowed error; worst at {i}: "
            f"actual={actual[i]!r}, expected={expected[i]!r}, |diff|={err[i]:.3e}, allowed={allowed[i]:.3e}, "
            f"ratio={ratio[i]:.3e}")


def transposed_route(spec: dict, flavour: str) -> bool:
    """Whether TF's CPU kernels reject this layer channels_first: Conv and
    ConvTranspose (both flavours), Depthwise and Separable (Keras 2)."""
    fam = reference.LAYERS[spec["class_name"]].family
    families = ("conv", "conv_transpose") + (("depthwise", "separable") if flavour == "keras2" else ())
    return fam in families and reference.normalize(spec)["config"].get("data_format") == "channels_first"


def _to_last(spec: dict) -> dict:
    out = copy.deepcopy(spec)
    out.setdefault("config", {})["data_format"] = "channels_last"
    return out


def tf_forward(spec: dict, x: np.ndarray, w: dict, flavour: str) -> np.ndarray:
    """TF's output; Conv/ConvTranspose channels_first runs as the transposed
    channels_last equivalent (TF's CPU kernels reject NCHW)."""
    if transposed_route(spec, flavour):
        return np.moveaxis(tf_layers.forward(_to_last(spec), np.moveaxis(x, 1, -1), w, flavour=flavour), -1, 1)
    return tf_layers.forward(spec, x, w, flavour=flavour)


def tf_vjp(spec: dict, x: np.ndarray, w: dict, g: np.ndarray, flavour: str) -> dict:
    """TF's VJP, routed like :func:`tf_forward`."""
    if transposed_route(spec, flavour):
        out = tf_layers.vjp(_to_last(spec), np.moveaxis(x, 1, -1), w, np.moveaxis(g, 1, -1), flavour=flavour)
        out["inputs"] = np.moveaxis(out["inputs"], -1, 1)
        return out
    return tf_layers.vjp(spec, x, w, g, flavour=flavour)


def divergence(spec: dict, input_shape, dtype: str, flavour: str, *, gradient: bool = False) -> str | None:
    """Why TF (flavour) is known not to match the reference here, or None.

    The conditions are those measured on this machine (TensorFlow 2.21 CPU,
    Keras 3.15.1, tf-keras 2.21); test_tf_divergences.py pins each one.
    """
    s = reference.normalize(spec)
    layer, cfg = reference.LAYERS[s["class_name"]], s["config"]
    act = cfg.get("activation")
    if transposed_route(s, flavour) and act in ("softmax", "log_softmax", "sparsemax", "glu"):
        return f"channels_first is only run transposed to channels_last, which moves the axis of {act}"
    if flavour == "keras2":
        unknown = next((v for k, v in (spec.get("config") or {}).items() if k.endswith("_regularizer")
                        and isinstance(v, str) and v in KERAS2_UNKNOWN_REGULARIZER_NAMES), None)
        if unknown:  # W9, pinned in test_training_crosscheck.py
            return f"Keras 2 keeps the regularizer name {unknown!r} as a string and fails at the call"
        if act in KERAS2_MISSING_ACTIVATIONS:
            return f"Keras 2 has no activation {act!r}"
        if act == "hard_sigmoid":
            return "Keras 2 hard_sigmoid is clip(0.2x + 0.5, 0, 1)"
        if s["class_name"] == "ZeroPadding1D":
            return "Keras 2 ZeroPadding1D takes no data_format"
        if layer.family in ("depthwise", "separable") and max(cfg["strides"]) > 1 and max(cfg["dilation_rate"]) > 1:
            return "Keras 2 rejects strides > 1 with dilation_rate > 1 in Depthwise/Separable convolutions"
        if s["class_name"] == "Conv3DTranspose" and max(cfg["dilation_rate"]) > 1:
            return "Keras 2 Conv3DTranspose ignores dilation_rate in its output length"
    if act == "sparsemax":
        return "sparsemax threshold sums the cumulative sums (wrong when the support has >= 2 elements)"
    if dtype == "float64" and act == "leaky_relu":
        return "leaky_relu's negative slope 0.2 is a float32 constant at float64"
    if dtype == "float64" and act == "gelu":
        return "gelu at float64 is off by ~1e-9 relative"
    fam = layer.family
    if (fam in ("conv", "depthwise", "separable") and not transposed_route(s, flavour)
            and cfg.get("data_format") == "channels_first" and cfg["use_bias"]):
        if bias_on_last_axis(s, input_shape):
            return "channels_first bias is added along the last axis when its length equals the channel count"
    if tf_conv3d_same_stride_beyond_kernel(s, input_shape, dtype):
        return ("Conv3D 'same' on TF's native kernels computes wrong values where the 'same' padding total "
                "is -2 or less (stride beyond the kernel span; K14)")
    if fam == "conv_transpose":
        if layer.rank < 3 and max(cfg["dilation_rate"]) > 1:
            return "Conv1D/2DTranspose with dilation_rate > 1 raise InvalidArgumentError on CPU"
        if max(cfg["dilation_rate"]) > 1 and tf_native_kernels(dtype):
            return ("Conv3DTranspose with dilation_rate > 1 on TF's native kernels (float64; float32 with "
                    "oneDNN off) raises InvalidArgumentError (K4; found by a fresh seed of the training "
                    "cross-check)")
        if cfg["padding"] == "same" and cfg["output_padding"] is not None and any(
                k % 2 == 0 and p == 0 for k, p in zip(cfg["kernel_size"], cfg["output_padding"])):
            return "ConvTranspose 'same' with output_padding 0 on an even kernel: BackpropInput size mismatch"
        if gradient and conv3d_transpose_input_gradient_corner(s):
            return "Conv3DTranspose input gradient wrong under 'same' or with output_padding > 0"
    if fam in ("depthwise", "separable") and layer.rank == 2 and cfg["strides"][0] != cfg["strides"][1]:
        return "DepthwiseConv2dNative needs equal strides in both spatial dimensions"
    if tf_onednn_batch0_returns_input(s, input_shape, dtype, gradient=gradient):
        return "oneDNN convolution of a batch of 0 returns its input (docs/divergences.md O3)"
    if gradient and tf_depthwise_batch0_unwritten(s, input_shape, dtype):
        return "depthwise kernel gradient of a batch of 0 is memory the native kernel never wrote (K17)"
    if dtype == "float32" and onednn_one_channel_corner(s, input_shape, gradient) and onednn_avx512("tensorflow"):
        return ("oneDNN (AVX-512) float32 convolution with one input channel, a last stride larger than another "
                "and output extent 1 on the last axis can return unwritten memory (docs/divergences.md O1)")
    interp = cfg.get("interpolation", "nearest")
    if interp == "bicubic" and any(f & (f - 1) for f in cfg["size"]):
        return "bicubic weights come from a 1024-entry table: quantized unless the size is a power of two"
    if interp != "nearest" and dtype == "float64":
        return f"{interp} resize at float64 computes its weights in float32"
    if interp == "area" and gradient:
        return "ResizeArea has no registered gradient"
    return None




def shape_divergence(spec: dict) -> str | None:
    """Why Keras's compute_output_shape is known to differ from the shape it returns, or None."""
    cfg = reference.normalize(spec)["config"]
    if cfg.get("activation") == "glu":
        return "compute_output_shape ignores that glu halves the last axis"
    if reference.LAYERS[spec["class_name"]].family == "conv_transpose" and max(cfg["dilation_rate"]) > 1:
        return "ConvTranspose compute_output_shape differed once with dilation_rate > 1 (not yet pinned)"
    return None

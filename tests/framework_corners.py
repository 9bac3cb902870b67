"""Framework-independent conditions of divergences that more than one test table uses."""
from __future__ import annotations

import reference


def onednn_one_channel_corner(spec: dict, input_shape) -> bool:
    """docs/divergences.md O1: a 2-D convolution (plain, depthwise or separable) with one input
    channel, row stride < column stride and output width 1, where oneDNN's float32 kernels
    (TensorFlow and PyTorch CPU) can return memory they never wrote."""
    spec = reference.normalize(spec)
    layer, cfg = reference.LAYERS[spec["class_name"]], spec["config"]
    if layer.family not in ("conv", "depthwise", "separable") or layer.rank != 2:
        return False
    first = cfg["data_format"] == "channels_first"
    out = reference.output_shape(spec, input_shape)
    return (input_shape[1 if first else -1] == 1 and cfg["strides"][0] < cfg["strides"][1]
            and out[-1 if first else -2] == 1)


def conv3d_same_stride_beyond_kernel(spec: dict, input_shape) -> bool:
    """docs/divergences.md K14: Conv3D with padding='same' where the total 'same' padding
    (out - 1)*s + d*(k - 1) + 1 - n of an axis is -2 or less (the stride exceeds the kernel's
    span by 2 or more); TensorFlow computes wrong values there at float64 and float16 (not
    float32). At -1 it is right (measured over n < 8, k < 4, s < 5: 6 wrong, all at <= -2;
    12 right at -1), as if half the negative total were taken as the leading padding."""
    spec = reference.normalize(spec)
    layer, cfg = reference.LAYERS[spec["class_name"]], spec["config"]
    if layer.family != "conv" or layer.rank != 3 or cfg["padding"] != "same":
        return False
    first = cfg["data_format"] == "channels_first"
    spatial = input_shape[2:] if first else input_shape[1:-1]
    return any((-(-n // s) - 1) * s + d * (k - 1) + 1 - n <= -2 for n, k, s, d in
               zip(spatial, cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]))


def conv3d_transpose_input_gradient_corner(spec: dict) -> bool:
    """docs/divergences.md K15: Conv3DTranspose's input gradient is wrong under padding='same'
    or with an output_padding > 0."""
    spec = reference.normalize(spec)
    cfg = spec["config"]
    return spec["class_name"] == "Conv3DTranspose" and (
        cfg["padding"] == "same" or max(cfg["output_padding"] or [0]) > 0)

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

"""Small valid layer configurations for the reference's own tests.

Kept tiny on purpose (finite differences run the layer dozens of times);
the oracle's strategies (`oracle.strategies`) explore the full space.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume, strategies as st

from conv_conformance import reference

SMOOTH_ACTIVATIONS = ("linear", "tanh", "sigmoid", "softplus", "silu", "gelu", "elu", "selu",
                      "softmax", "log_softmax", "mish", "softsign", "squareplus", "exponential",
                      "log_sigmoid", "tanh_shrink", "glu")


@dataclass(frozen=True)
class Drawn:
    spec: dict
    input_shape: tuple[int, ...]


def _tuple(draw, r, lo, hi):
    return [draw(st.integers(lo, hi)) for _ in range(r)]


@st.composite
def layer_specs(draw, *, layers=None, activations=SMOOTH_ACTIVATIONS, max_len=6) -> Drawn:
    """A valid (spec, input_shape) for any layer, with small shapes.

    * layers: class names to draw from (default: all of reference.LAYERS).
    * activations: activation names for layers that take one.
    * max_len: largest spatial length.
    """
    name = draw(st.sampled_from(sorted(layers or reference.LAYERS)))
    layer = reference.LAYERS[name]
    r, fam = layer.rank, layer.family
    cfg: dict = {}
    if "data_format" in layer.arguments:
        cfg["data_format"] = draw(st.sampled_from(["channels_last", "channels_first"]))
    channels = draw(st.integers(1, 3))
    if fam in ("conv", "conv_transpose", "depthwise", "separable"):
        cfg["kernel_size"] = _tuple(draw, r, 1, 3)
        if draw(st.booleans()):
            cfg["strides"], cfg["dilation_rate"] = _tuple(draw, r, 1, 3), [1] * r
        else:
            cfg["strides"], cfg["dilation_rate"] = [1] * r, _tuple(draw, r, 1, 2)
        paddings = ["valid", "same"] + (["causal"] if fam == "conv" and r == 1 else [])
        cfg["padding"] = draw(st.sampled_from(paddings))
        cfg["use_bias"] = draw(st.booleans())
        cfg["activation"] = draw(st.sampled_from(activations))
        if fam != "depthwise":
            cfg["filters"] = draw(st.integers(1, 3))
        if fam in ("depthwise", "separable"):
            cfg["depth_multiplier"] = draw(st.integers(1, 2))
        if fam == "conv":
            groups = draw(st.sampled_from([1, 2]))
            cfg["groups"], cfg["filters"] = groups, cfg["filters"] * groups
            channels *= groups
        if fam == "conv_transpose" and draw(st.booleans()):
            cfg["output_padding"] = [draw(st.integers(0, s - 1)) for s in cfg["strides"]]
    elif fam == "cropping":
        cfg["cropping"] = [_tuple(draw, 2, 0, 2) for _ in range(r)] if r > 1 else _tuple(draw, 2, 0, 2)
    elif fam == "zero_padding":
        cfg["padding"] = [_tuple(draw, 2, 0, 2) for _ in range(r)] if r > 1 else _tuple(draw, 2, 0, 2)
    else:
        cfg["size"] = _tuple(draw, r, 1, 3) if r > 1 else draw(st.integers(1, 3))
        if r == 2:
            cfg["interpolation"] = draw(st.sampled_from(reference.INTERPOLATIONS))
    spatial = _tuple(draw, r, 1, max_len)
    b = draw(st.integers(1, 8))
    batch = 0 if b == 8 else 1 + b % 2  # a batch of 0 one time in 8; shrinks toward 2
    shape = (batch, channels, *spatial) if cfg.get("data_format") == "channels_first" else \
        (batch, *spatial, channels)
    spec = {"class_name": name, "config": cfg}
    try:
        reference.output_shape(spec, shape)
    except reference.InvalidConfig:
        assume(False)
    return Drawn(spec, shape)


def arrays_for(drawn: Drawn, seed: int):
    """Seeded standard-normal inputs and weights for a drawn layer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(drawn.input_shape)
    w = {k: rng.standard_normal(s) for k, s in reference.weight_shapes(drawn.spec, drawn.input_shape).items()}
    return x, w

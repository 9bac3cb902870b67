"""Metamorphic properties of the reference: relations between layers that hold
by the definitions, checked on Hypothesis-drawn configurations."""
from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings, strategies as st

from conv_conformance import reference

from .strategies import arrays_for, layer_specs

CONV_LIKE = [n for n, l in reference.LAYERS.items() if l.family in ("conv", "conv_transpose", "depthwise",
                                                                      "separable")]
RTOL = 1e-12


def _close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape}, but should be {b.shape}"
    scale = max(1.0, float(np.abs(b).max(initial=0)))
    err = float(np.abs(a - b).max(initial=0))
    assert err <= RTOL * scale * 100, f"{what}: max |difference| = {err:.3g} (scale {scale:.3g})"


def _linear(spec):
    cfg = dict(spec["config"], activation="linear", use_bias=False)
    return {"class_name": spec["class_name"], "config": cfg}


def _cfg(spec):
    return reference.normalize(spec)["config"]


@settings(max_examples=200)
@given(drawn=layer_specs())
def test_output_shape_equals_forward_shape(drawn):
    x, w = arrays_for(drawn, 0)
    assert reference.forward(drawn.spec, x, w).shape == reference.output_shape(drawn.spec, drawn.input_shape)
    # None in every non-channel dimension stays None; the known ones keep their values
    cfg = _cfg(drawn.spec)
    c_axis = 1 if cfg.get("data_format") == "channels_first" else len(drawn.input_shape) - 1
    blurred = [d if i == c_axis else None for i, d in enumerate(drawn.input_shape)]
    out = reference.output_shape(drawn.spec, blurred)
    full = reference.output_shape(drawn.spec, drawn.input_shape)
    assert all(o is None or o == f for o, f in zip(out, full)), (out, full)


@settings(max_examples=150)
@given(drawn=layer_specs(layers=CONV_LIKE), a=st.floats(-3, 3), b=st.floats(-3, 3), seed=st.integers(0, 999))
def test_linear_in_inputs_and_in_each_weight(drawn, a, b, seed):
    spec = _linear(drawn.spec)
    x1, w = arrays_for(drawn, seed)
    x2, w2 = arrays_for(drawn, seed + 1)
    w, w2 = ({k: v for k, v in ww.items() if k != "bias"} for ww in (w, w2))
    _close(reference.forward(spec, a * x1 + b * x2, w),
           a * reference.forward(spec, x1, w) + b * reference.forward(spec, x2, w), "linearity in inputs")
    for name in w:  # separable is bilinear in its two kernels: vary one at a time
        mixed = {**w, name: a * w[name] + b * w2[name]}
        _close(reference.forward(spec, x1, mixed),
               a * reference.forward(spec, x1, w) + b * reference.forward(spec, x1, {**w, name: w2[name]}),
               f"linearity in {name}")


@settings(max_examples=200)
@given(drawn=layer_specs())
def test_channels_first_is_transposed_channels_last(drawn):
    cfg = _cfg(drawn.spec)
    assume("data_format" in cfg)
    assume(cfg.get("activation") not in ("softmax", "log_softmax", "sparsemax", "glu"))  # act on the last axis
    last = {"class_name": drawn.spec["class_name"], "config": dict(cfg, data_format="channels_last")}
    first = {"class_name": drawn.spec["class_name"], "config": dict(cfg, data_format="channels_first")}
    x, w = arrays_for(drawn, 3)
    x_last = x if cfg["data_format"] == "channels_last" else np.moveaxis(x, 1, -1)
    y_first = reference.forward(first, np.moveaxis(x_last, -1, 1), w)
    _close(np.moveaxis(y_first, 1, -1), reference.forward(last, x_last, w), "channels_first vs channels_last")


@settings(max_examples=100)
@given(drawn=layer_specs(layers=["SeparableConv1D", "SeparableConv2D"]))
def test_separable_is_depthwise_then_pointwise(drawn):
    cfg = _cfg(drawn.spec)
    x, w = arrays_for(drawn, 5)
    r = reference.LAYERS[drawn.spec["class_name"]].rank
    dw = {"class_name": f"DepthwiseConv{r}D", "config": {**{
        k: cfg[k] for k in ("kernel_size", "strides", "padding", "data_format", "dilation_rate",
                            "depth_multiplier")}, "use_bias": False}}
    pw = {"class_name": f"Conv{r}D", "config": {
        "filters": cfg["filters"], "kernel_size": 1, "data_format": cfg["data_format"],
        "activation": cfg["activation"], "use_bias": cfg["use_bias"]}}
    h = reference.forward(dw, x, {"kernel": w["depthwise_kernel"]})
    pw_w = {"kernel": w["pointwise_kernel"], **({"bias": w["bias"]} if "bias" in w else {})}
    _close(reference.forward(drawn.spec, x, w), reference.forward(pw, h, pw_w), "separable")


@settings(max_examples=100)
@given(drawn=layer_specs(layers=["Conv1D", "Conv2D", "Conv3D"]))
def test_grouped_conv_is_per_group_convs_concatenated(drawn):
    cfg = _cfg(drawn.spec)
    assume(cfg["groups"] > 1 and cfg["activation"] not in ("softmax", "log_softmax", "sparsemax", "glu"))
    x, w = arrays_for(drawn, 7)
    G = cfg["groups"]
    c_axis = 1 if cfg["data_format"] == "channels_first" else x.ndim - 1
    one = {"class_name": drawn.spec["class_name"], "config": dict(cfg, groups=1, filters=cfg["filters"] // G)}
    parts = []
    for xg, kg, *bg in zip(np.split(x, G, axis=c_axis), np.split(w["kernel"], G, axis=-1),
                           *([np.split(w["bias"], G)] if "bias" in w else [])):
        parts.append(reference.forward(one, xg, {"kernel": kg, **({"bias": bg[0]} if bg else {})}))
    _close(reference.forward(drawn.spec, x, w), np.concatenate(parts, axis=c_axis), "grouped conv")


@settings(max_examples=100)
@given(drawn=layer_specs(layers=["ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"]))
def test_zero_padding_then_cropping_is_identity(drawn):
    cfg = _cfg(drawn.spec)
    r = reference.LAYERS[drawn.spec["class_name"]].rank
    crop_cfg = {"cropping": cfg["padding"], **({"data_format": cfg["data_format"]} if r > 1 else {})}
    assume(r > 1 or cfg["data_format"] == "channels_last")  # Cropping1D is channels_last only
    x, _ = arrays_for(drawn, 9)
    padded = reference.forward(drawn.spec, x, {})
    assert np.array_equal(reference.forward({"class_name": f"Cropping{r}D", "config": crop_cfg}, padded, {}), x)


@settings(max_examples=100)
@given(drawn=layer_specs(layers=["Conv1D"]))
def test_causal_is_left_zero_padding_then_valid(drawn):
    cfg = _cfg(drawn.spec)
    assume(cfg["padding"] == "causal")
    x, w = arrays_for(drawn, 11)
    left = cfg["dilation_rate"][0] * (cfg["kernel_size"][0] - 1)
    xp = reference.forward({"class_name": "ZeroPadding1D", "config": {"padding": [left, 0],
                                                                    "data_format": cfg["data_format"]}}, x, {})
    valid = {"class_name": "Conv1D", "config": dict(cfg, padding="valid")}
    _close(reference.forward(drawn.spec, x, w), reference.forward(valid, xp, w), "causal")


@settings(max_examples=100)
@given(drawn=layer_specs(layers=["Conv1D", "Conv1DTranspose", "DepthwiseConv1D", "SeparableConv1D"]))
def test_1d_layer_equals_2d_layer_on_height_one_input(drawn):
    cfg = _cfg(drawn.spec)
    assume(cfg["padding"] != "causal")
    x, w = arrays_for(drawn, 13)
    name2 = drawn.spec["class_name"].replace("1D", "2D")
    height_one = {"kernel_size": 1, "strides": 1, "dilation_rate": 1, "output_padding": 0}
    cfg2 = {k: ([height_one[k]] + v if k in height_one and v is not None else v) for k, v in cfg.items()}
    h_axis = 2 if cfg["data_format"] == "channels_first" else 1
    w2 = {k: (v if k == "bias" else v[None]) for k, v in w.items()}
    y2 = reference.forward({"class_name": name2, "config": cfg2}, np.expand_dims(x, h_axis), w2)
    _close(np.squeeze(y2, h_axis), reference.forward(drawn.spec, x, w), f"{name2} on height 1")


@settings(max_examples=100)
@given(drawn=layer_specs(layers=["UpSampling1D", "UpSampling2D", "UpSampling3D"]))
def test_nearest_upsampling_is_transposed_conv_with_ones_kernel(drawn):
    cfg = _cfg(drawn.spec)
    assume(cfg.get("interpolation", "nearest") == "nearest")
    x, _ = arrays_for(drawn, 15)
    r = reference.LAYERS[drawn.spec["class_name"]].rank
    size = [cfg["size"]] if r == 1 else cfg["size"]
    c = x.shape[1 if cfg.get("data_format") == "channels_first" else -1]
    kernel = np.ones((*size, 1, 1)) * np.eye(c)  # (size..., out=c, in=c): each channel to itself
    tconv = {"class_name": f"Conv{r}DTranspose", "config": {
        "filters": c, "kernel_size": size, "strides": size, "padding": "valid", "use_bias": False,
        "data_format": cfg.get("data_format", "channels_last")}}
    _close(reference.forward(drawn.spec, x, {}), reference.forward(tconv, x, {"kernel": kernel}), "nearest")


@settings(max_examples=150)
@given(drawn=layer_specs(layers=["Conv1D", "Conv2D", "Conv3D"]), seed=st.integers(0, 999))
def test_conv_and_transposed_conv_are_adjoint(drawn, seed):
    """<Conv(x), y> = <x, ConvTranspose(y)> with the same kernel array and output_padding
    chosen so that the transposed conv returns x's shape."""
    cfg = _cfg(drawn.spec)
    assume(cfg["padding"] == "valid" and cfg["groups"] == 1)
    spec = _linear(drawn.spec)
    x, w = arrays_for(drawn, seed)
    kernel = w["kernel"]
    y = np.random.default_rng(seed).standard_normal(reference.output_shape(spec, x.shape))
    axes = range(2, x.ndim) if cfg["data_format"] == "channels_first" else range(1, x.ndim - 1)
    out_len = [y.shape[a] for a in axes]
    op = [x.shape[a] - ((m - 1) * s + d * (k - 1) + 1)
          for a, m, s, d, k in zip(axes, out_len, cfg["strides"], cfg["dilation_rate"], cfg["kernel_size"])]
    r = reference.LAYERS[drawn.spec["class_name"]].rank
    tspec = {"class_name": f"Conv{r}DTranspose", "config": {
        "filters": x.shape[1 if cfg["data_format"] == "channels_first" else -1],
        "kernel_size": cfg["kernel_size"], "strides": cfg["strides"], "dilation_rate": cfg["dilation_rate"],
        "padding": "valid", "output_padding": op, "data_format": cfg["data_format"], "use_bias": False}}
    assume(all(p < s for p, s in zip(op, cfg["strides"])))
    lhs = float(np.vdot(reference.forward(spec, x, {"kernel": kernel}), y))
    rhs = float(np.vdot(x, reference.forward(tspec, y, {"kernel": kernel})))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)

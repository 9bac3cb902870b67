"""Known divergences of TensorFlow/Keras from the reference, each a strict xfail.

Every entry runs TF directly (no channels_last route) on one pinned
configuration and asserts agreement with the reference within the allowed
error; it is expected to fail, with the exception type given. When TF fixes
one, its test XPASSes, the strict xfail fails, and the entry (and the matching
condition in tf_crosscheck_util.divergence) must be removed.
"""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conv_conformance import reference  # noqa: E402
from conv_conformance.conformance import findings  # noqa: E402
from conv_conformance.oracle import cases, tf_layers, tolerance  # noqa: E402
from tests.framework_corners import onednn_avx512, tf_native_kernels  # noqa: E402
from tf_crosscheck_util import (assert_within, divergence, shape_divergence, tf_forward,  # noqa: E402
                                transposed_route)

pytestmark = [pytest.mark.tensorflow, pytest.mark.kernels]
_TF = tf.errors

# (id, spec, input shape, dtype, what, exception raised by the failing check)
DIVERGENCES = [
    ("conv2d-channels-first-raises", {"class_name": "Conv2D", "config": {
        "filters": 2, "kernel_size": 3, "data_format": "channels_first"}}, (1, 2, 5, 5), "float64", "forward",
     _TF.UnimplementedError),
    ("conv1d-transpose-channels-first-raises", {"class_name": "Conv1DTranspose", "config": {
        "filters": 2, "kernel_size": 3, "data_format": "channels_first"}}, (1, 2, 5), "float64", "forward",
     _TF.InvalidArgumentError),
    ("conv3d-transpose-channels-first-raises", {"class_name": "Conv3DTranspose", "config": {
        "filters": 2, "kernel_size": 1, "data_format": "channels_first"}}, (1, 2, 3, 3, 3), "float64", "forward",
     _TF.InvalidArgumentError),
    ("channels-first-bias-on-wrong-axis", {"class_name": "DepthwiseConv1D", "config": {
        "kernel_size": 1, "data_format": "channels_first"}}, (2, 2, 2), "float64", "forward", AssertionError),
    ("grouped-conv-channels-first-bias-on-wrong-axis", {"class_name": "Conv1D", "config": {
        "filters": 2, "kernel_size": 1, "groups": 2, "data_format": "channels_first"}}, (2, 2, 2), "float64",
     "forward", AssertionError),
    ("conv3d-same-negative-padding", {"class_name": "Conv3D", "config": {
        "filters": 2, "kernel_size": 1, "strides": 3, "padding": "same", "use_bias": False}}, (1, 3, 3, 3, 2),
     "float64", "forward", AssertionError),
    ("conv2d-transpose-dilation-raises", {"class_name": "Conv2DTranspose", "config": {
        "filters": 2, "kernel_size": 2, "dilation_rate": 2}}, (1, 4, 4, 2), "float64", "forward",
     _TF.InvalidArgumentError),
    ("conv-transpose-same-even-kernel-output-padding-0", {"class_name": "Conv1DTranspose", "config": {
        "filters": 1, "kernel_size": 2, "strides": 3, "padding": "same", "output_padding": 0}}, (2, 3, 3),
     "float64", "forward", _TF.InvalidArgumentError),
    ("conv3d-transpose-output-padding-input-gradient", {"class_name": "Conv3DTranspose", "config": {
        "filters": 1, "kernel_size": [3, 1, 2], "strides": 3, "padding": "same", "output_padding": 2}},
     (1, 3, 3, 3, 1), "float64", "gradient", AssertionError),
    ("depthwise2d-unequal-strides-raise", {"class_name": "DepthwiseConv2D", "config": {
        "kernel_size": 3, "strides": [1, 2], "padding": "same"}}, (2, 4, 4, 2), "float64", "forward",
     _TF.InvalidArgumentError),
    ("leaky-relu-float32-slope", {"class_name": "Conv1D", "config": {
        "filters": 3, "kernel_size": 2, "activation": "leaky_relu"}}, (2, 5, 2), "float64", "forward",
     AssertionError),
    ("gelu-float64", {"class_name": "Conv2D", "config": {
        "filters": 3, "kernel_size": 2, "activation": "gelu"}}, (2, 4, 4, 2), "float64", "forward", AssertionError),
    ("sparsemax-support-of-two", {"class_name": "Conv1D", "config": {
        "filters": 4, "kernel_size": 1, "activation": "sparsemax", "use_bias": False}}, (1, 1, 4), "float32",
     "forward", AssertionError),
    ("bicubic-table-weights", {"class_name": "UpSampling2D", "config": {
        "size": 3, "interpolation": "bicubic"}}, (1, 3, 5, 1), "float32", "forward", AssertionError),
    ("bilinear-float64", {"class_name": "UpSampling2D", "config": {
        "size": [2, 1], "interpolation": "bilinear"}}, (1, 4, 4, 1), "float64", "forward", AssertionError),
    ("lanczos-float64-gradient-raises", {"class_name": "UpSampling2D", "config": {
        "size": 2, "interpolation": "lanczos3"}}, (1, 3, 3, 1), "float64", "gradient", _TF.InvalidArgumentError),
    ("area-gradient-missing", {"class_name": "UpSampling2D", "config": {
        "size": 2, "interpolation": "area"}}, (1, 3, 3, 1), "float32", "gradient", LookupError),
]


def _arrays(spec, shape, dtype):
    rng = np.random.default_rng(0)
    x = cases.draw_array(rng, shape, dtype)
    if spec["config"].get("activation") == "sparsemax":  # two tied maxima: support of two
        x = np.array([[[1.0, 0.5, 1.0, -1.0]]])
    w_shapes = reference.weight_shapes(spec, shape)
    w = {k: cases.draw_array(rng, s, dtype) for k, s in sorted(w_shapes.items())}
    if spec["config"].get("activation") == "sparsemax":
        w = {"kernel": np.eye(4)[None]}
    if spec["config"].get("activation") == "leaky_relu":
        x = -np.abs(x)
        w = {k: np.abs(v) for k, v in w.items()}
    g = cases.draw_array(rng, reference.output_shape(spec, shape), dtype)
    return x, w, g


@pytest.mark.parametrize("ident, spec, shape, dtype, what, raises",
                         [pytest.param(*d, marks=pytest.mark.xfail(strict=True, raises=d[-1], reason=d[0]), id=d[0])
                          for d in DIVERGENCES])
def test_tf_keras3_matches_reference(ident, spec, shape, dtype, what, raises):
    x, w, g = _arrays(spec, shape, dtype)
    xd, wd, gd = x.astype(dtype), {k: v.astype(dtype) for k, v in w.items()}, g.astype(dtype)
    allowed, allowed_g = tolerance.allowed_errors(spec, x, w, g, dtype)
    if what == "forward":
        actual = tf_layers.forward(spec, xd, wd)
        assert_within(actual, reference.forward(spec, x, w), allowed, ident)
    else:
        actual = tf_layers.vjp(spec, xd, wd, gd)
        expected = reference.vjp(spec, x, w, g)
        for name in expected:
            assert_within(actual[name], expected[name], allowed_g[name], f"{ident} d/d{name}")


# float32 DepthwiseConv2D with unequal strides, one input channel, depth_multiplier 2 and output
# width 1: what happens depends on the kernels that run (docs/divergences.md K7, O1).
_GARBAGE = ({"class_name": "DepthwiseConv2D", "config": {"kernel_size": 3, "strides": [1, 2], "depth_multiplier": 2,
                                                          "use_bias": False}}, (2, 6, 4, 1))


def test_depthwise2d_unequal_strides_float32_depends_on_the_kernels():
    """TF's native kernels raise (K7); oneDNN dispatched to AVX-512 returns memory it never wrote
    (O1: which values depends on what ran before in the process, so only "wrong" is pinned, not
    whether identical calls differ); oneDNN below AVX-512 computes it right."""
    spec, shape = _GARBAGE
    x, w, _ = _arrays(spec, shape, "float32")
    xd, wd = x.astype("float32"), {k: v.astype("float32") for k, v in w.items()}
    allowed, _ = tolerance.allowed_errors(spec, x, w, None, "float32")
    expected = reference.forward(spec, x, w)
    if tf_native_kernels("float32"):
        with pytest.raises(_TF.InvalidArgumentError, match="equal length strides"):
            tf_layers.forward(spec, xd, wd)
    elif onednn_avx512("tensorflow"):
        calls = [np.asarray(tf_layers.forward(spec, xd, wd), np.float64) for _ in range(3)]
        wrong = [not np.all(np.abs(c - expected) <= allowed) for c in calls]
        assert any(wrong), "O1 did not show: every call matched the reference"
    else:
        assert_within(tf_layers.forward(spec, xd, wd), expected, allowed, "oneDNN below AVX-512")


_ROUTED = [d for d in DIVERGENCES if not transposed_route(d[1], "keras3")]


@pytest.mark.parametrize("ident, spec, shape, dtype, what", [d[:5] for d in _ROUTED], ids=[d[0] for d in _ROUTED])
def test_property_tests_route_around_each_divergence(ident, spec, shape, dtype, what):
    """Each divergence TF cannot be routed around by transposing is excluded from the property tests."""
    assert divergence(spec, shape, dtype, "keras3", gradient=what == "gradient") is not None, ident


def test_channels_first_is_cross_checked_through_channels_last():
    """The route the property tests take for TF's NCHW-less CPU kernels agrees with the reference."""
    spec, shape = DIVERGENCES[0][1], DIVERGENCES[0][2]
    x, w, _ = _arrays(spec, shape, "float64")
    allowed, _ = tolerance.allowed_errors(spec, x, w, None, "float64")
    assert_within(tf_forward(spec, x, w, "keras3"), reference.forward(spec, x, w), allowed, "channels_last route")


@pytest.mark.parametrize("spec, shape", [
    pytest.param({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 1, "activation": "glu"}},
                 (2, 1, 2), id="glu-halving-ignored"),
])
@pytest.mark.xfail(strict=True, raises=AssertionError, reason="Keras compute_output_shape differs from the reference")
def test_compute_output_shape_matches_reference(spec, shape):
    assert shape_divergence(spec) is not None
    assert tuple(tf_layers.compute_output_shape(spec, shape, dtype="float64")) == reference.output_shape(spec, shape)


@pytest.mark.parametrize("dtype, definition", [("float16", "tf_onednn_f16"), ("bfloat16", "tf_onednn")])
def test_the_catalogue_routes_low_precision_to_onednn_as_tensorflow_does(dtype, definition):
    """Which low-precision convolutions TensorFlow sends to oneDNN is decided by TF's own test of
    the CPU's flags; the catalogue's definitions read the flags a report records. They must agree
    here, whatever the CPU (for bfloat16 the catalogue only needs oneDNN on: O2's definition adds
    the AVX-512 flag where it matters)."""
    from tests.framework_corners import definition_holds, environment_record, tf_routes_to_onednn

    env = environment_record("tensorflow")
    in_catalogue = definition_holds(definition, dtype, env)
    routed = env["tensorflow"]["onednn"] == "True" and tf_routes_to_onednn(dtype)
    if dtype == "bfloat16":
        in_catalogue = in_catalogue and definition_holds("onednn_bf16_missing", dtype, env | {"onednn_isa": "avx2"})
    assert in_catalogue == routed, (f"TF sends {dtype} to oneDNN: {routed}; the catalogue says {in_catalogue} "
                                    f"(CPU flags {env['cpu']['isa']})")
    x = tf.zeros((0, 3, 3, 1), dtype)
    y = tf.nn.conv2d(x, tf.ones((2, 2, 1, 1), dtype), 1, "VALID")
    assert tuple(y.shape) == ((0, 3, 3, 1) if routed else (0, 2, 2, 1)), "O3 shows exactly where oneDNN computes"


# TensorFlow's native kernels raise or compute wrong values on these; where the CPU's flags make TF
# send float16 to oneDNN (tf_onednn_f16), float16 takes oneDNN's kernels and is right.
_FLOAT16_ROUTED = [
    ("K1", {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "data_format": "channels_first"}},
     (1, 2, 5, 5)),
    ("K4", {"class_name": "Conv2DTranspose", "config": {"filters": 2, "kernel_size": 2, "dilation_rate": 2}},
     (1, 5, 5, 2)),
    ("K5", {"class_name": "Conv2DTranspose", "config": {"filters": 2, "kernel_size": 3,
                                                        "data_format": "channels_first"}}, (1, 2, 5, 5)),
    ("K7", {"class_name": "DepthwiseConv2D", "config": {"kernel_size": 2, "strides": [1, 2]}}, (1, 5, 6, 2)),
    ("K14", {"class_name": "Conv3D", "config": {"filters": 2, "kernel_size": 1, "strides": 3, "padding": "same",
                                                "use_bias": False}}, (1, 3, 3, 3, 2)),
]


@pytest.mark.parametrize("ident, spec, shape", _FLOAT16_ROUTED, ids=[d[0] for d in _FLOAT16_ROUTED])
def test_float16_divergences_of_the_native_kernels_follow_the_kernels_tensorflow_picks(ident, spec, shape,
                                                                                        request):
    from tests.framework_corners import environment_record, xfail_where_onednn_lacks

    spec = reference.normalize(spec)
    if findings.load().holds(ident, spec, list(shape), "float16", environment_record("tensorflow"), adapter="keras"):
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"{ident}: float16 on TF's native kernels"))
    else:
        xfail_where_onednn_lacks(request, "float16", raises=tf.errors.AbortedError)
    x, w, g = _arrays(spec, shape, "float16")
    allowed, _ = tolerance.allowed_errors(spec, x, w, g, "float16")
    actual = tf_layers.forward(spec, x.astype("float16"), {k: v.astype("float16") for k, v in w.items()})
    assert_within(actual, reference.forward(spec, x, w), allowed, ident)


@pytest.mark.parametrize("layer", ["Conv2D", "Conv2DTranspose"])
@pytest.mark.parametrize("strides", [(1, 2), (2, 1)])
def test_strided_1x1_kernel_gradient_below_avx512_is_sometimes_wrong(layer, strides):
    """O4: where TensorFlow's oneDNN runs below AVX-512, the kernel gradient of a float32 1x1
    Conv2D with strides (1, 2), or Conv2DTranspose with a stride above 1, is wrong on some calls
    (1 to 8 of 8 when measured), so this pins "wrong in one of 200 calls"; Conv2D with strides
    (2, 1), and every case where the condition does not hold, must be right on every call."""
    from tests.framework_corners import tf_strided_1x1_kernel_gradient_unstable

    spec = reference.normalize({"class_name": layer, "config": {"filters": 1, "kernel_size": 1,
                                                                   "strides": list(strides), "use_bias": False}})
    shape = (2, 5, 8, 1)
    x, w, g = _arrays(spec, shape, "float32")
    allowed, allowed_g = tolerance.allowed_errors(spec, x, w, g, "float32")
    expected = reference.vjp(spec, x, w, g)["kernel"]
    unstable = tf_strided_1x1_kernel_gradient_unstable(spec, shape, "float32")
    # where O4 holds, call until a wrong gradient shows: how many calls that takes varies from run
    # to run, and a 1x1 layer's calls are cheap
    calls = 200 if unstable else 12
    wrong = []
    for _ in range(calls):
        got = tf_layers.vjp(spec, x.astype("float32"), {k: v.astype("float32") for k, v in w.items()},
                            g.astype("float32"))["kernel"]
        wrong.append(bool(np.any(np.abs(np.asarray(got, np.float64) - expected) > allowed_g["kernel"])))
        if unstable and wrong[-1]:
            break
    if unstable:
        assert any(wrong), f"O4 did not show in {calls} calls (fixed?)"
    else:
        assert not any(wrong), f"kernel gradient wrong in {sum(wrong)} of 12 calls outside O4's condition"

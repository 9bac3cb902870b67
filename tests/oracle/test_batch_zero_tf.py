"""Batch size 0 cross-checked against tf.keras (Keras 3) and tf-keras (Keras 2).

Keras accepts an empty batch: the output is empty with the output shape, the
input gradient is empty and every weight gradient is 0 (a sum over no samples).
The reference must agree (tests/reference/test_batch_zero.py checks it alone);
here TensorFlow runs the same configurations: the first smoke-profile cases of
each layer, with their batch set to 0. K17 (TF's native depthwise kernel
gradient on an empty batch) and O3 (oneDNN's convolution of an empty batch
returns its input) are pinned by their own tests below.
"""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from conv_conformance import reference  # noqa: E402
from conv_conformance.oracle import cases, tf_layers, tolerance  # noqa: E402
from tests.framework_corners import (tf_depthwise_batch0_unwritten,  # noqa: E402
                                     tf_onednn, tf_onednn_batch0_returns_input)
from tf_crosscheck_util import assert_within, divergence, tf_forward, tf_vjp  # noqa: E402

pytestmark = [pytest.mark.tensorflow, pytest.mark.kernels]
FLAVOURS = [pytest.param("keras3", id="keras3"),
            pytest.param("keras2", marks=pytest.mark.tf_keras, id="keras2")]


def _empty_cases(name: str, count: int = 2):
    out = [c for c in cases.case_set("smoke", layers=[name]) if c.kind == "valid"][:count]
    assert out, name
    return [(c.spec, (0, *c.input_shape[1:])) for c in out]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name", sorted(reference.LAYERS))
def test_batch_zero_matches_tensorflow(name, flavour, dtype):
    if flavour == "keras2":
        pytest.importorskip("tf_keras")
        if dtype == "float32":
            pytest.skip("Keras 2 runs the same TF kernels as Keras 3: float64 is enough (kept CI short)")
    checked = 0
    for spec, shape in _empty_cases(name):
        if divergence(spec, shape, dtype, flavour, gradient=True) is not None:
            continue
        rng = np.random.default_rng(0)
        x = np.zeros(shape)
        w = {k: cases.draw_array(rng, s, dtype) for k, s in sorted(reference.weight_shapes(spec, shape).items())}
        g = np.zeros(reference.output_shape(spec, shape))
        xd, wd, gd = x.astype(dtype), {k: v.astype(dtype) for k, v in w.items()}, g.astype(dtype)
        expected = reference.forward(spec, x, w)
        allowed, allowed_g = tolerance.allowed_errors(spec, x, w, g, dtype)
        assert_within(tf_forward(spec, xd, wd, flavour), expected, allowed, f"{flavour} forward {spec} on {shape}")
        grads = reference.vjp(spec, x, w, g)
        actual = tf_vjp(spec, xd, wd, gd, flavour)
        assert set(actual) == set(grads)
        for k in grads:
            assert_within(actual[k], grads[k], allowed_g[k], f"{flavour} d/d{k} {spec} on {shape}")
        checked += 1
    if not checked:
        pytest.skip(f"every drawn {name} case has a known divergence at {dtype} ({flavour})")


_DEPTHWISE = [
    ({"class_name": "DepthwiseConv2D", "config": {"kernel_size": 3, "depth_multiplier": 2, "use_bias": False}},
     (0, 5, 5, 8)),
    ({"class_name": "SeparableConv1D", "config": {"filters": 2, "kernel_size": 3, "depth_multiplier": 2}},
     (0, 6, 8)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
@pytest.mark.parametrize("spec, shape", _DEPTHWISE, ids=[s["class_name"] for s, _ in _DEPTHWISE])
def test_depthwise_kernel_gradient_of_empty_batch_depends_on_the_kernels(spec, shape, dtype):
    """K17: where TF's native depthwise filter-gradient kernel runs, it returns memory it never
    wrote for a batch of 0 (Keras 3 with oneDNN returns 0). Which values it returns depends on what
    ran before, so this pins only "not all 0 in one of 5 calls", after filling freed memory of the
    same size with non-zero values; elsewhere every call must return exactly 0."""
    if not tf_depthwise_batch0_unwritten(spec, shape, dtype):
        pytest.skip(f"oneDNN computes {dtype} here: O3 (test_onednn_convolution_of_empty_batch...)")
    name = "depthwise_kernel" if "Separable" in spec["class_name"] else "kernel"
    rng = np.random.default_rng(0)
    w = {k: cases.draw_array(rng, s, dtype).astype(dtype)
         for k, s in sorted(reference.weight_shapes(spec, shape).items())}
    x = np.zeros(shape, dtype)
    g = np.zeros(reference.output_shape(spec, shape), dtype)
    grads = []
    for _ in range(5):
        dirty = tf.fill(w[name].shape, tf.constant(3.0, dtype))  # freed right away: its memory is reused
        del dirty
        grads.append(np.asarray(tf_layers.vjp(spec, x, w, g)[name], np.float64))
    nonzero = [bool(a.any()) for a in grads]
    assert tf_depthwise_batch0_unwritten(spec, shape, dtype)
    assert any(nonzero), "K17 did not show: TF's native kernel returned 0 on every call (fixed?)"


_CONVS = [
    ({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 2, "use_bias": False}}, (0, 5, 5, 2),
     (0, 4, 4, 4)),
    ({"class_name": "Conv3D", "config": {"filters": 4, "kernel_size": 2, "use_bias": False}},
     (0, 4, 4, 4, 2), (0, 3, 3, 3, 4)),
    ({"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 2, "padding": "same", "dilation_rate": 2,
                                         "use_bias": False}}, (0, 5, 2), (0, 5, 4)),
    ({"class_name": "DepthwiseConv2D", "config": {"kernel_size": 2, "depth_multiplier": 3, "use_bias": False}},
     (0, 5, 5, 2), (0, 4, 4, 6)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec, shape, out", _CONVS, ids=[s["class_name"] for s, _, _ in _CONVS])
def test_onednn_convolution_of_empty_batch_returns_its_input(spec, shape, out, dtype):
    """O3: with TensorFlow's oneDNN on (float32/bfloat16), a convolution of a batch of 0 returns
    its input (padded for 'same' with dilation: Conv1D below gives (0, 7, 2)) instead of an empty
    tensor of the output shape; TF's native kernels (float64; float32 with oneDNN off) are right."""
    assert reference.output_shape(spec, shape) == out
    rng = np.random.default_rng(0)
    w = {k: cases.draw_array(rng, s, dtype).astype(dtype) for k, s in reference.weight_shapes(spec, shape).items()}
    got = tuple(np.shape(tf_layers.forward(spec, np.zeros(shape, dtype), w)))
    if tf_onednn_batch0_returns_input(spec, shape, dtype):
        assert tf_onednn() and got != out and got[-1] == shape[-1], got
    else:
        assert got == out

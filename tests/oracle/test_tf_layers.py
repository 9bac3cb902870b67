"""oracle.tf_layers: the faithful Keras runner (both flavours)."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance import reference

pytest.importorskip("tensorflow")
from conv_conformance.oracle import tf_layers  # noqa: E402

pytestmark = [pytest.mark.tensorflow, pytest.mark.kernels]

FLAVOURS = [pytest.param("keras3", id="keras3"),
            pytest.param("keras2", id="keras2", marks=pytest.mark.tf_keras)]
SHAPES = [
    ({"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}},
     (2, 7, 6, 2)),
    ({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 3, "strides": 2,
                                                 "output_padding": 1}}, (1, 5, 3)),
    ({"class_name": "DepthwiseConv2D", "config": {"kernel_size": 2, "depth_multiplier": 3}}, (1, 4, 5, 2)),
    ({"class_name": "UpSampling3D", "config": {"size": [1, 2, 3]}}, (1, 2, 2, 2, 1)),
    ({"class_name": "Cropping2D", "config": {"cropping": [[1, 0], [0, 2]]}}, (1, 4, 5, 1)),
]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("spec,shape", SHAPES, ids=[s["class_name"] for s, _ in SHAPES])
def test_compute_output_shape_agrees_with_reference(flavour, spec, shape):
    if flavour == "keras2":
        pytest.importorskip("tf_keras")
    assert tf_layers.compute_output_shape(reference.normalize(spec), shape, flavour=flavour) \
        == reference.output_shape(spec, shape)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_depthwise_weights_are_loaded_by_name(flavour):
    """Keras 2 calls the kernel `depthwise_kernel`; callers always use the Keras 3 name."""
    spec = reference.normalize({"class_name": "DepthwiseConv1D", "config": {"kernel_size": 2,
                                                                            "depth_multiplier": 2}})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 3))
    w = {k: rng.standard_normal(s) for k, s in reference.weight_shapes(spec, x.shape).items()}
    np.testing.assert_allclose(tf_layers.forward(spec, x, w, flavour=flavour),
                               reference.forward(spec, x, w), rtol=1e-12, atol=1e-12)
    g = tf_layers.vjp(spec, x, w, np.ones((1, 4, 6)), flavour=flavour)
    assert set(g) == {"inputs", "kernel", "bias"}


def test_cached_layers_take_the_new_weights():
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 2}})
    x = np.ones((1, 3, 1))
    for scale in (1.0, 2.0):
        w = {"kernel": np.full((2, 1, 2), scale), "bias": np.zeros(2)}
        np.testing.assert_array_equal(tf_layers.forward(spec, x, w), reference.forward(spec, x, w))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_output_keeps_the_input_dtype(dtype, request):
    from tests.framework_corners import xfail_where_onednn_lacks

    xfail_where_onednn_lacks(request, dtype)
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1}})
    y = tf_layers.forward(spec, np.ones((1, 2, 1), dtype), {"kernel": np.ones((1, 1, 1), dtype),
                                                            "bias": np.zeros(1, dtype)})
    assert y.dtype == np.dtype(dtype)


def test_wrong_weight_names_are_named_in_the_error():
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1}})
    with pytest.raises(ValueError, match=r"has the weights \['bias', 'kernel'\]; received weights named \['w'\]"):
        tf_layers.forward(spec, np.ones((1, 2, 1)), {"w": np.ones((1, 1, 1))})


def test_unknown_flavour_lists_the_flavours():
    with pytest.raises(ValueError, match="must be one of 'keras3', 'keras2'. Received: flavour='keras4'"):
        tf_layers.construct({"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1}},
                            flavour="keras4")


def test_construct_lets_keras_reject():
    # Keras 3 raises ValueError in the constructor; deserialize re-raises it as TypeError
    with pytest.raises((ValueError, TypeError), match="dilation"):
        tf_layers.construct({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 2, "strides": 2,
                                                                "dilation_rate": 2}})


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_vjp_after_forward_reuses_only_the_same_call(flavour):
    """vjp takes the gradient on the tape of the preceding forward only when the spec, inputs
    and weights are the same; any other vjp recomputes the layer (checked against the reference)."""
    if flavour == "keras2":
        pytest.importorskip("tf_keras")
    spec = reference.normalize({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 2, "groups": 1}})
    rng = np.random.default_rng(7)
    x, x2 = rng.uniform(-1, 1, (2, 1, 4, 3, 2))
    w = {"kernel": rng.uniform(-1, 1, (2, 2, 2, 2)), "bias": rng.uniform(-1, 1, 2)}
    w2 = {"kernel": -w["kernel"], "bias": w["bias"]}
    g = rng.uniform(-1, 1, (1, 3, 2, 2))
    for fx, fw, vx, vw in ((x, w, x, w), (x, w, x2, w), (x, w, x, w2), (x2, w2, x, w)):
        tf_layers.forward(spec, fx, fw, flavour=flavour)
        got = tf_layers.vjp(spec, vx, vw, g, flavour=flavour)
        want = reference.vjp(spec, vx, vw, g)
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)
    tf_layers.forward(spec, x, w, flavour=flavour)
    spec2 = reference.normalize({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 2, "use_bias": False}})
    got = tf_layers.vjp(spec2, x, {"kernel": w["kernel"]}, g, flavour=flavour)
    np.testing.assert_allclose(got["inputs"], reference.vjp(spec2, x, {"kernel": w["kernel"]}, g)["inputs"],
                               rtol=1e-12, atol=1e-12)

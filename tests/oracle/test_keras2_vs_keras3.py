"""Where Keras 2 (tf-keras) and Keras 3 (tf.keras) define the layers differently.

Each difference in docs/keras2-vs-keras3.md is pinned here: the test asserts the
difference, so it fails (and the document must change) when either side changes.
The reference follows Keras 3.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

from conv_conformance import reference  # noqa: E402
from conv_conformance.oracle import tf_layers  # noqa: E402
from tf_crosscheck_util import KERAS2_MISSING_ACTIVATIONS  # noqa: E402

from tests.framework_corners import tf_onednn  # noqa: E402

pytestmark = [pytest.mark.tensorflow, pytest.mark.tf_keras, pytest.mark.kernels]


def _builds(spec, shape, flavour) -> bool:
    try:
        tf_layers.construct(spec, flavour=flavour, dtype="float64")(np.zeros(shape))
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.parametrize("act", sorted(KERAS2_MISSING_ACTIVATIONS))
def test_activations_only_keras3_has(act):
    spec = {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 1, "activation": act}}
    assert _builds(spec, (1, 3, 2), "keras3")
    assert not _builds(spec, (1, 3, 2), "keras2")


def test_hard_sigmoid_differs():
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "hard_sigmoid",
                                               "use_bias": False}}
    z = np.array([[[-3.0], [-1.0], [0.0], [1.5], [2.5]]])
    w = {"kernel": np.ones((1, 1, 1))}
    k3 = tf_layers.forward(spec, z, w, flavour="keras3")
    k2 = tf_layers.forward(spec, z, w, flavour="keras2")
    np.testing.assert_allclose(k3, reference.forward(spec, z, w))              # relu6(x + 3) / 6
    np.testing.assert_allclose(k3, np.clip(z / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(k2, np.clip(0.2 * z + 0.5, 0, 1))


def test_zero_padding1d_data_format_is_keras3_only():
    spec = {"class_name": "ZeroPadding1D", "config": {"padding": 1, "data_format": "channels_first"}}
    assert _builds(spec, (1, 2, 3), "keras3")
    assert not _builds(spec, (1, 2, 3), "keras2")


@pytest.mark.parametrize("layer", ["DepthwiseConv1D", "SeparableConv1D"])
def test_strided_dilated_depthwise_is_keras3_only(layer):
    config = {"kernel_size": 2, "strides": 2, "dilation_rate": 2} | ({"filters": 2} if "Separable" in layer else {})
    spec = {"class_name": layer, "config": config}
    assert _builds(spec, (1, 9, 2), "keras3")
    assert not _builds(spec, (1, 9, 2), "keras2")


@pytest.mark.parametrize("spec, shape", [
    ({"class_name": "Cropping2D", "config": {"cropping": -1}}, (1, 4, 4, 2)),
    ({"class_name": "Cropping3D", "config": {"cropping": 2}}, (1, 4, 4, 4, 2)),
])
def test_keras2_accepts_croppings_keras3_rejects(spec, shape):
    with pytest.raises(reference.InvalidConfig):
        reference.output_shape(spec, shape)
    assert not _builds(spec, shape, "keras3")
    assert _builds(spec, shape, "keras2")


def test_depthwise_kernel_names():
    spec = {"class_name": "DepthwiseConv2D", "config": {"kernel_size": 1}}
    names3 = [v.path.split("/")[-1] for v in _built(spec, "keras3").weights]
    names2 = [v.name.split("/")[-1].split(":")[0] for v in _built(spec, "keras2").weights]
    assert names3 == ["kernel", "bias"] and names2 == ["depthwise_kernel", "bias"]


def _built(spec, flavour):
    layer = tf_layers.construct(spec, flavour=flavour, dtype="float32")
    layer.build((1, 3, 3, 2))
    return layer


def test_separable1d_causal_padding_is_keras2_only():
    """Found by a fresh Hypothesis seed of the invalid-configuration cross-check (keras2)."""
    spec = {"class_name": "SeparableConv1D", "config": {"filters": 1, "kernel_size": 2, "padding": "causal"}}
    with pytest.raises(reference.InvalidConfig, match="padding"):
        reference.output_shape(spec, (1, 4, 2))
    assert not _builds(spec, (1, 4, 2), "keras3")
    assert _builds(spec, (1, 4, 2), "keras2")


def test_depthwise1d_channels_first_runs_only_in_keras3():
    spec = {"class_name": "DepthwiseConv1D", "config": {"kernel_size": 1, "data_format": "channels_first"}}
    assert _builds(spec, (1, 2, 3), "keras3")
    assert not _builds(spec, (1, 2, 3), "keras2")


def test_dilated_kernel_longer_than_input_keras3_rejects_keras2_returns_full_length():
    # effective kernel d*(k-1)+1 = 5 on length 4 under 'valid': no output position exists
    spec = {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3, "dilation_rate": 2}}
    with pytest.raises(reference.InvalidConfig, match="kernel_size"):
        reference.output_shape(spec, (1, 4, 2))
    assert not _builds(spec, (1, 4, 2), "keras3")
    y = tf_layers.construct(spec, flavour="keras2", dtype="float32")(np.ones((1, 4, 2), "float32"))
    # Keras 2 does not reject it: oneDNN's float32 kernel returns a length-4 output, TF's own
    # kernel an empty one (docs/keras2-vs-keras3.md)
    assert tuple(y.shape) == ((1, 4, 2) if tf_onednn() else (1, 0, 2))


def test_keras2_conv3d_transpose_ignores_dilation_in_its_output_length():
    # K = d*(k-1)+1 = 3: a length-1 input gives length 3 (Keras 3, the reference); Keras 2 gives k = 2
    spec = {"class_name": "Conv3DTranspose", "config": {"filters": 1, "kernel_size": 2, "dilation_rate": 2}}
    shape = (2, 1, 1, 1, 1)
    assert reference.output_shape(spec, shape) == (2, 3, 3, 3, 1)
    assert tuple(tf_layers.compute_output_shape(spec, shape, flavour="keras3", dtype="float32")) == (2, 3, 3, 3, 1)
    assert tuple(tf_layers.compute_output_shape(spec, shape, flavour="keras2", dtype="float32")) == (2, 2, 2, 2, 1)


@pytest.mark.parametrize("layer, shape", [("DepthwiseConv1D", (2, 3, 2)), ("DepthwiseConv2D", (2, 3, 3, 2))])
def test_keras2_depthwise_accepts_depth_multiplier_zero(layer, shape):
    """Found by a fresh Hypothesis seed of the invalid-configuration cross-check."""
    spec = {"class_name": layer, "config": {"kernel_size": 1, "depth_multiplier": 0}}
    with pytest.raises(reference.InvalidConfig, match="depth_multiplier"):
        reference.output_shape(spec, shape)
    assert not _builds(spec, shape, "keras3")
    y = tf_layers.construct(spec, flavour="keras2", dtype="float64")(np.ones(shape, "float64"))
    assert tuple(y.shape) == shape[:-1] + (0,)  # Keras 2 at float64 returns an empty channel axis
    if tf_onednn():  # oneDNN's float32 kernel rejects it; TF's own returns the empty channel axis
        with pytest.raises(Exception, match="filter must not have zero elements"):
            tf_layers.construct(spec, flavour="keras2", dtype="float32")(np.ones(shape, "float32"))
    else:
        y = tf_layers.construct(spec, flavour="keras2", dtype="float32")(np.ones(shape, "float32"))
        assert tuple(y.shape) == shape[:-1] + (0,)

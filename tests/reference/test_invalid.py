"""Everything Keras rejects, the reference rejects with InvalidConfig naming the
argument, the rule and the value."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.reference import InvalidConfig

CASES = [
    # (spec, input shape, argument named in the error)
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}},
     (1, 9, 9, 1), "dilation_rate"),
    ({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 3, "strides": 2,
                                                  "dilation_rate": 2}}, (1, 9, 1), "dilation_rate"),
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 5}}, (1, 4, 9, 1), "kernel_size"),
    ({"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3, "dilation_rate": 3}}, (1, 6, 1),
     "kernel_size"),
    ({"class_name": "Cropping2D", "config": {"cropping": ((2, 2), (0, 0))}}, (1, 4, 4, 1), "cropping"),
    ({"class_name": "Cropping1D", "config": {"cropping": (3, 3)}}, (1, 5, 1), "cropping"),
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "padding": "causal"}}, (1, 5, 5, 1),
     "padding"),
    ({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 3, "padding": "causal"}},
     (1, 5, 1), "padding"),
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3]}}, (1, 5, 5, 1), "kernel_size"),
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [3, 0]}}, (1, 5, 5, 1), "kernel_size"),
    ({"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": 1, "groups": 2}}, (1, 5, 5, 2), "groups"),
    ({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 1, "groups": 2}}, (1, 5, 5, 3), "groups"),
    ({"class_name": "Conv2D", "config": {"filters": 0, "kernel_size": 1}}, (1, 5, 5, 3), "filters"),
    ({"class_name": "Conv2D", "config": {"kernel_size": 1}}, (1, 5, 5, 3), "filters"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1, "strides": 0}}, (1, 5, 5, 3), "strides"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1, "padding": "full"}}, (1, 5, 5, 3),
     "padding"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1, "data_format": "NHWC"}}, (1, 5, 5, 3),
     "data_format"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1, "activation": "threshold"}},
     (1, 5, 5, 3), "activation"),
    ({"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": 1, "activation": "glu"}}, (1, 5, 5, 3),
     "activation"),
    ({"class_name": "Conv2DTranspose", "config": {"filters": 1, "kernel_size": 3, "strides": 2,
                                                  "output_padding": 2}}, (1, 5, 5, 3), "output_padding"),
    ({"class_name": "Conv1DTranspose", "config": {"filters": 1, "kernel_size": 2, "padding": "same",
                                                  "output_padding": 0}}, (1, 1, 3), "output_padding"),
    ({"class_name": "DepthwiseConv2D", "config": {"kernel_size": 1, "depth_multiplier": 0}}, (1, 5, 5, 3),
     "depth_multiplier"),
    ({"class_name": "UpSampling2D", "config": {"interpolation": "gaussian"}}, (1, 5, 5, 3), "interpolation"),
    ({"class_name": "UpSampling1D", "config": {"size": 0}}, (1, 5, 3), "size"),
    ({"class_name": "ZeroPadding2D", "config": {"padding": (1, 2, 3)}}, (1, 5, 5, 3), "padding"),
    ({"class_name": "ZeroPadding3D", "config": {"padding": -1}}, (1, 5, 5, 5, 3), "padding"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1, "bias_initializer": "zeros",
                                         "kernal_size": 3}}, (1, 5, 5, 3), "kernal_size"),
    ({"class_name": "Conv4D", "config": {}}, (1, 5, 5, 3), "class_name"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1, "use_bias": "yes"}}, (1, 5, 5, 3),
     "use_bias"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1}}, (1, 5, 5), "inputs"),
    ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1}}, (1, 5, 5, None), "inputs"),
]


@pytest.mark.parametrize("spec, shape, argument", CASES, ids=[f"{c[0]['class_name']}-{c[2]}-{i}"
                                                              for i, c in enumerate(CASES)])
def test_rejected_with_a_message_naming_the_argument(spec, shape, argument):
    with pytest.raises(InvalidConfig) as info:
        reference.output_shape(spec, shape)
    err = info.value
    assert err.argument == argument
    assert f"`{argument}`" in str(err) and "Received" in str(err)
    assert isinstance(err, ValueError)


def test_forward_rejects_what_output_shape_rejects():
    spec = {"class_name": "Cropping1D", "config": {"cropping": (3, 3)}}
    with pytest.raises(InvalidConfig, match="cropping"):
        reference.forward(spec, np.zeros((1, 5, 1)), {})


def test_wrong_weights_are_named_with_the_expected_shapes():
    spec = {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3}}
    with pytest.raises(InvalidConfig, match=r"'kernel': \(3, 1, 2\)"):
        reference.forward(spec, np.zeros((1, 5, 1)), {"kernel": np.zeros((3, 2, 1)), "bias": np.zeros(2)})


def test_normalize_fills_every_default_and_lowercases():
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3,
                                                                   "padding": "SAME", "name": "c"}})
    assert spec == {"class_name": "Conv1D", "config": {
        "filters": 2, "kernel_size": [3], "strides": [1], "padding": "same", "data_format": "channels_last",
        "dilation_rate": [1], "groups": 1, "activation": "linear", "use_bias": True,
        # training-time arguments: Keras 3's serialization, defaults explicit
        "kernel_initializer": {"class_name": "GlorotUniform",
                               "config": {"seed": None, "input_axes": None, "output_axes": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None}}
    assert reference.normalize(spec) == spec
    one = reference.normalize({"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3, "use_bias": 0}})
    assert one["config"]["use_bias"] is False

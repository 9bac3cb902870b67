"""Small cases computed by hand, written out with their arithmetic."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance import reference


def _conv1d(config, x, kernel, cls="Conv1D"):
    """One batch, one channel in, one filter out: x and kernel are plain lists."""
    spec = {"class_name": cls, "config": {"filters": 1, "use_bias": False, **config}}
    k = np.asarray(kernel, float).reshape(len(kernel), 1, 1)
    return reference.forward(spec, np.asarray(x, float).reshape(1, -1, 1), {"kernel": k}).ravel()


def test_cropping2d_keras_docs_example():
    # keras.layers.Cropping2D docs: input (28, 28, 3), cropping ((2, 2), (4, 4)) -> (24, 20, 3)
    spec = {"class_name": "Cropping2D", "config": {"cropping": ((2, 2), (4, 4))}}
    x = np.arange(2 * 28 * 28 * 3, dtype=float).reshape(2, 28, 28, 3)
    assert reference.output_shape(spec, (2, 28, 28, 3)) == (2, 24, 20, 3)
    y = reference.forward(spec, x, {})
    assert y.shape == (2, 24, 20, 3)
    assert np.array_equal(y, x[:, 2:26, 4:24, :])


def test_same_padding_even_kernel_puts_the_odd_pad_at_the_end():
    # n=3, k=2: total pad 1 -> (0, 1); y[o] = 1*x[o] + 10*x[o+1], x[3] = 0
    assert _conv1d({"kernel_size": 2, "padding": "same"}, [1, 2, 3], [1, 10]).tolist() == [21, 32, 3]


def test_same_padding_stride_two_on_even_length():
    # n=4, k=3, s=2: out ceil(4/2)=2, total (2-1)*2+3-4 = 1 -> (0, 1); xp = [1 2 3 4 0]
    # y0 = 1 + 20 + 300, y1 = 3 + 40 + 0
    assert _conv1d({"kernel_size": 3, "strides": 2, "padding": "same"}, [1, 2, 3, 4],
                   [1, 10, 100]).tolist() == [321, 43]


def test_same_padding_stride_two_on_odd_length():
    # n=5, k=3, s=2: out 3, total (3-1)*2+3-5 = 2 -> (1, 1); xp = [0 1 2 3 4 5 0]
    # y0 = 0 + 10 + 200, y1 = 2 + 30 + 400, y2 = 4 + 50 + 0
    assert _conv1d({"kernel_size": 3, "strides": 2, "padding": "same"}, [1, 2, 3, 4, 5],
                   [1, 10, 100]).tolist() == [210, 432, 54]


def test_causal_padding_sees_only_the_past():
    # k=2, d=2: pad 2 zeros before; y[o] = 1*x[o-2] + 10*x[o]
    assert _conv1d({"kernel_size": 2, "dilation_rate": 2, "padding": "causal"}, [1, 2, 3, 4],
                   [1, 10]).tolist() == [10, 20, 31, 42]


def test_transposed_conv_valid_with_output_padding():
    # n=2, k=3, s=2, op=1: length (2-1)*2 + 3 + 1 = 6
    # x0=1 lands on 0,1,2 as 1,10,100; x1=2 lands on 2,3,4 as 2,20,200; position 5 is padding
    y = _conv1d({"kernel_size": 3, "strides": 2, "padding": "valid", "output_padding": 1}, [1, 2],
                [1, 10, 100], cls="Conv1DTranspose")
    assert y.tolist() == [1, 10, 102, 20, 200, 0]


def test_transposed_conv_same_with_output_padding():
    # n=2, k=3, s=2, op=1: length (2-1)*2 + 3%2 + 1 = 4; Keras pads left min(ceil(3/2), 2) = 2 of the
    # K-1 = 2 positions, so nothing is cropped at the start: [1, 10, 100+2, 20]
    y = _conv1d({"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1}, [1, 2],
                [1, 10, 100], cls="Conv1DTranspose")
    assert y.tolist() == [1, 10, 102, 20]


def test_transposed_conv_same_without_output_padding_crops_the_start():
    # n=2, k=4, s=2: length n*s = 4; crop (K - s) // 2 = 1 from the full [1, 10, 102, 1020, 200, 2000]
    y = _conv1d({"kernel_size": 4, "strides": 2, "padding": "same"}, [1, 2], [1, 10, 100, 1000],
                cls="Conv1DTranspose")
    assert y.tolist() == [10, 102, 1020, 200]


def test_depthwise_channel_order_is_c_times_multiplier_plus_m():
    # C=2, depth_multiplier=2, k=1: output channel c*2 + m is x[c] * kernel[0, c, m]
    spec = {"class_name": "DepthwiseConv1D", "config": {"kernel_size": 1, "depth_multiplier": 2,
                                                        "use_bias": False}}
    kernel = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (k=1, C=2, m=2)
    y = reference.forward(spec, np.array([[[1.0, 10.0]]]), {"kernel": kernel})
    assert y.ravel().tolist() == [1, 2, 30, 40]


def test_bilinear_upsampling_uses_half_pixel_centres():
    # output o samples (o + 0.5)/2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped to the edges)
    spec = {"class_name": "UpSampling2D", "config": {"size": (1, 2), "interpolation": "bilinear"}}
    y = reference.forward(spec, np.array([1.0, 2.0]).reshape(1, 1, 2, 1), {})
    assert y.ravel().tolist() == [1, 1.25, 1.75, 2]


@pytest.mark.parametrize("size", [2, 3, 7])
def test_area_upsampling_by_an_integer_factor_copies_exactly(size):
    # output o covers [o, o+1)/size, inside input o // size: its average is that input, a copy;
    # (weights computed as size * (14/3 - 13/3) are a few units in the last place off 1)
    spec = {"class_name": "UpSampling2D", "config": {"size": (size, size), "interpolation": "area"}}
    x = np.random.default_rng(size).standard_normal((2, 2, 5, 3)) * 1e3
    expected = np.repeat(np.repeat(x, size, axis=1), size, axis=2)
    assert reference.forward(spec, x, {}).tobytes() == expected.tobytes()


def test_grouped_conv_keeps_groups_apart():
    # groups=2, C=2, F=2, k=1: filter 0 sees only channel 0, filter 1 only channel 1
    spec = {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 1, "groups": 2, "use_bias": False}}
    y = reference.forward(spec, np.array([[[3.0, 5.0]]]), {"kernel": np.array([[[2.0, 7.0]]])})
    assert y.ravel().tolist() == [6, 35]


def test_bias_and_activation_follow_the_convolution():
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "relu"}}
    y = reference.forward(spec, np.array([[[1.0], [-2.0]]]), {"kernel": np.ones((1, 1, 1)), "bias": np.array([0.5])})
    assert y.ravel().tolist() == [1.5, 0.0]


@pytest.mark.parametrize("spec, shape, expected", [
    ({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}},
     (2, 5, 5, 3), (2, 3, 3, 4)),
    ({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "data_format": "channels_first"}},
     (2, 3, 5, 6), (2, 4, 3, 4)),
    ({"class_name": "Conv3DTranspose", "config": {"filters": 2, "kernel_size": 3, "strides": 2}},
     (1, 4, 4, 4, 1), (1, 9, 9, 9, 2)),
    ({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 1, "strides": 3}},
     (1, 4, 1), (1, 12, 2)),  # (4-1)*3 + max(1, 3)
    ({"class_name": "SeparableConv2D", "config": {"filters": 5, "kernel_size": 2, "depth_multiplier": 3}},
     (1, None, 7, 2), (1, None, 6, 5)),
    ({"class_name": "UpSampling3D", "config": {"size": (1, 2, 3)}}, (None, 2, 2, 2, 4), (None, 2, 4, 6, 4)),
    ({"class_name": "ZeroPadding1D", "config": {"padding": (1, 3)}}, (2, 4, 3), (2, 8, 3)),
])
def test_output_shapes(spec, shape, expected):
    assert reference.output_shape(spec, shape) == expected

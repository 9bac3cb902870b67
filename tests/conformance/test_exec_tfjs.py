"""TensorFlow.js through the exec protocol: the client works, and each finding of
docs/findings/tfjs.md is pinned on a minimal layer.

A pin asserts what Keras 3 does and is a strict xfail naming the TF.js behaviour that breaks it
(TensorFlow.js 4.22.0 under Node 20, both backends deterministic on this machine): a TF.js
release that fixes a finding turns its pin into a failure, to be moved to the fixed list. The
tests need Node and `npm ci` in clients/tfjs; without them they are skipped, saying so.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance.exec_protocol import ImplementationError
from conv_conformance.oracle.tolerance import allowed_errors

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "tfjs"
pytestmark = pytest.mark.skipif(shutil.which("node") is None or not (CLIENT / "node_modules").is_dir(),
                                reason="TensorFlow.js client not installed: needs `node` and `npm ci` in clients/tfjs")


def _adapter(backend: str):
    from conv_conformance.conformance.adapters.exec_process import TfjsAdapter, TfjsWasmAdapter

    return TfjsAdapter() if backend == "cpu" else TfjsWasmAdapter()


@pytest.fixture(scope="module")
def tfjs():
    adapter = _adapter("cpu")
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def wasm():
    adapter = _adapter("wasm")
    yield adapter
    adapter.close()


def _arrays(spec: dict, shape: tuple):
    rng = np.random.default_rng(1)

    def draw(s):
        return (rng.choice([-1, 1], size=s) * rng.uniform(0.5, 1, size=s)).astype(np.float32)

    return draw(shape), {k: draw(s) for k, s in reference.weight_shapes(spec, shape).items()}, draw


def keras_forward(adapter, config: dict, shape: tuple) -> None:
    """The adapter's output has Keras 3's shape and values (within the allowed error)."""
    spec = reference.normalize(config)
    x, w, _ = _arrays(spec, shape)
    x64, w64 = x.astype(np.float64), {k: v.astype(np.float64) for k, v in w.items()}
    out = adapter.forward(spec, x, w)
    expected = reference.forward(spec, x64, w64)
    assert out.shape == expected.shape, f"out.shape={out.shape}, but should be {expected.shape}"
    allowed, _ = allowed_errors(spec, x64, w64, None, "float32")
    assert np.all(np.abs(out - expected) <= allowed), f"max error {np.max(np.abs(out - expected)):.3g}"


def keras_vjp(adapter, config: dict, shape: tuple) -> None:
    """The adapter's gradients have Keras 3's shapes and values."""
    spec = reference.normalize(config)
    x, w, draw = _arrays(spec, shape)
    dy = draw(reference.output_shape(spec, shape))
    x64, w64 = x.astype(np.float64), {k: v.astype(np.float64) for k, v in w.items()}
    grads = adapter.vjp(spec, x, w, dy)
    expected = reference.vjp(spec, x64, w64, dy.astype(np.float64))
    _, allowed = allowed_errors(spec, x64, w64, dy.astype(np.float64), "float32")
    for name, value in expected.items():
        assert grads[name].shape == value.shape
        assert np.all(np.abs(grads[name] - value) <= allowed[name]), name


def rejects(adapter, config: dict, shape: tuple) -> None:
    """The adapter raises on a configuration Keras rejects."""
    spec = {"class_name": config["class_name"], "config": config["config"]}
    x = np.ones(shape, np.float32)
    try:
        adapter.forward(spec, x, {})
    except ImplementationError:
        return
    raise AssertionError("returned a result on a configuration Keras rejects")


def _conv(name: str, **config):
    return {"class_name": name, "config": config}


# ---------------------------------------------------------------------- the client works

@pytest.mark.parametrize("config, shape", [
    (_conv("Conv2D", filters=3, kernel_size=3, strides=2, padding="same"), (2, 7, 6, 2)),
    (_conv("Conv2D", filters=2, kernel_size=3, data_format="channels_first", activation="relu"), (1, 3, 6, 6)),
    (_conv("DepthwiseConv2D", kernel_size=3, depth_multiplier=2, data_format="channels_first"), (1, 3, 5, 5)),
    (_conv("Cropping2D", cropping=[[1, 0], [0, 2]]), (2, 4, 5, 3)),
    (_conv("UpSampling2D", size=2), (1, 3, 3, 2)),
])
def test_tfjs_computes_what_keras_computes(tfjs, config, shape):
    keras_forward(tfjs, config, shape)


def test_tfjs_gradients(tfjs):
    keras_vjp(tfjs, _conv("Conv2D", filters=2, kernel_size=3, strides=2), (2, 7, 7, 3))


def test_tfjs_declines_what_it_cannot_express(tfjs):
    from conv_conformance.conformance import Unsupported

    with pytest.raises(Unsupported, match="groups"):
        keras_forward(tfjs, _conv("Conv2D", filters=4, kernel_size=1, groups=2), (1, 3, 3, 4))
    with pytest.raises(Unsupported, match="Cropping1D"):
        keras_forward(tfjs, {"class_name": "Cropping1D", "config": {}}, (1, 4, 2))


# ---------------------------------------------------------------------- pinned findings (both backends)

def _pin(reason: str, raises=AssertionError):
    return pytest.mark.xfail(strict=True, raises=raises, reason=f"TF.js 4.22.0: {reason}")


@_pin("Conv1D channels_first returns its output in channels_last layout (tfjs-conv1d-channels-first)")
def test_conv1d_channels_first(tfjs):
    keras_forward(tfjs, _conv("Conv1D", filters=2, kernel_size=3, data_format="channels_first"), (1, 3, 6))


@_pin("CAUSAL padding not implemented in conv1dWithBias (tfjs-conv1d-causal)", ImplementationError)
def test_conv1d_causal(tfjs):
    keras_forward(tfjs, _conv("Conv1D", filters=2, kernel_size=2, padding="causal", use_bias=False), (1, 5, 3))


@_pin("no gradients for dilation_rate > 1 (tfjs-dilated-gradients)", ImplementationError)
def test_dilated_gradients(tfjs):
    keras_vjp(tfjs, _conv("Conv2D", filters=2, kernel_size=2, dilation_rate=2), (1, 5, 5, 1))


@_pin("DepthwiseConv2D ignores dilation_rate (tfjs-depthwise-dilation)")
def test_depthwise_dilation(tfjs):
    keras_forward(tfjs, _conv("DepthwiseConv2D", kernel_size=3, dilation_rate=2, padding="same"), (1, 7, 7, 1))


@_pin("SeparableConv2D refuses strides > 1 with dilation_rate > 1 (tfjs-separable-stride-dilation)",
      ImplementationError)
def test_separable_stride_and_dilation(tfjs):
    keras_forward(tfjs, _conv("SeparableConv2D", filters=2, kernel_size=3, strides=2, dilation_rate=2), (1, 9, 9, 1))


@_pin("SeparableConv2D channels_first adds its bias in channels_last layout (tfjs-separable-channels-first-bias)",
      ImplementationError)
def test_separable_channels_first_bias(tfjs):
    keras_forward(tfjs, _conv("SeparableConv2D", filters=2, kernel_size=3, data_format="channels_first"), (1, 1, 7, 7))


@_pin("Conv2DTranspose ignores dilation_rate (tfjs-transpose-dilation)")
def test_transpose_dilation(tfjs):
    keras_forward(tfjs, _conv("Conv2DTranspose", filters=2, kernel_size=3, dilation_rate=2), (1, 4, 4, 1))


@_pin("Conv3D 'same' padding is not clamped at 0 when a stride exceeds the kernel (tfjs-conv3d-same-negative-padding)")
def test_conv3d_same_negative_padding(tfjs):
    keras_forward(tfjs, _conv("Conv3D", filters=1, kernel_size=1, strides=2, padding="same"), (1, 4, 4, 4, 1))


@_pin("no gradient for Conv3DBackpropInputV2 (tfjs-conv3d-transpose-gradient)", ImplementationError)
def test_conv3d_transpose_gradient(tfjs):
    keras_vjp(tfjs, _conv("Conv3DTranspose", filters=1, kernel_size=1), (1, 2, 2, 2, 1))


@_pin("hard_sigmoid is Keras 2's 0.2 x + 0.5 (tfjs-hard-sigmoid)")
def test_hard_sigmoid(tfjs):
    keras_forward(tfjs, _conv("Conv2D", filters=1, kernel_size=1, activation="hard_sigmoid"), (1, 3, 3, 1))


@_pin("bilinear UpSampling2D does not sample at half-pixel centres (tfjs-bilinear)")
def test_bilinear(tfjs):
    keras_forward(tfjs, _conv("UpSampling2D", size=2, interpolation="bilinear"), (1, 3, 3, 1))


@_pin("the bias gradient of an empty batch cannot be reshaped (tfjs-empty-batch-gradients)", ImplementationError)
def test_empty_batch_gradients(tfjs):
    keras_vjp(tfjs, _conv("Conv3D", filters=2, kernel_size=2), (0, 2, 2, 2, 2))


@_pin("Cropping2D accepts data_format='channels_middle' (tfjs-accepts-invalid)")
def test_accepts_an_unknown_data_format(tfjs):
    rejects(tfjs, _conv("Cropping2D", cropping=[[0, 0], [0, 0]], data_format="channels_middle"), (1, 2, 4, 4))


# ---------------------------------------------------------------------- pinned findings (WebAssembly only)

def test_wasm_computes_what_keras_computes(wasm):
    keras_forward(wasm, _conv("Conv2D", filters=3, kernel_size=3, strides=2, padding="same"), (2, 7, 6, 2))


@_pin("WASM raises 'divide by zero' on an empty channels_first batch (tfjs-wasm-empty-batch)", ImplementationError)
def test_wasm_empty_batch(wasm):
    keras_forward(wasm, _conv("Conv2D", filters=2, kernel_size=1, data_format="channels_first"), (0, 1, 3, 3))


@_pin("WASM has no Conv2DBackpropFilter kernel (tfjs-wasm-no-conv-gradients)", ImplementationError)
def test_wasm_conv_gradients(wasm):
    keras_vjp(wasm, _conv("Conv2D", filters=2, kernel_size=3, strides=2), (2, 7, 7, 3))


@_pin("WASM Conv3DTranspose computes wrong values (tfjs-wasm-conv3d-transpose)")
def test_wasm_conv3d_transpose(wasm):
    keras_forward(wasm, _conv("Conv3DTranspose", filters=2, kernel_size=2, data_format="channels_first"),
                  (1, 1, 3, 3, 5))

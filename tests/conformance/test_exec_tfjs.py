"""TensorFlow.js through the exec protocol: the client works, and each finding of
docs/findings/tfjs.md is pinned on a minimal layer.

A pin asserts what Keras 3 does and is a strict xfail naming the catalogue entry (JS1..JS13 on
both backends, JW1..JW4 on WebAssembly; conformance/findings/catalogue.json) whose condition and
version range hold for the pinned case and the installed TF.js (measured on 4.22.0 under Node 20,
both backends deterministic on this machine): a TF.js release that fixes a finding turns its pin
into a failure. The tests need Node and `npm ci` in clients/tfjs; without them they are skipped,
saying so.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance import findings
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

def _tfjs_version() -> str | None:
    try:
        return json.loads((CLIENT / "node_modules" / "@tensorflow" / "tfjs" / "package.json").read_text("utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        return None


def _pin(finding_id: str, config: dict, shape: tuple, raises=AssertionError, *, adapter: str = "tfjs",
         kind: str = "valid"):
    """A strict xfail where the catalogue entry's condition holds for this case and its version
    range holds for the installed TF.js (the pin asserts Keras 3's behaviour)."""
    finding = findings.load()[finding_id]
    version = _tfjs_version()
    in_range = version is not None and all(findings.version_in_range(version, spec) for spec in finding.versions.values())
    applies = (in_range and adapter in finding.adapters
               and findings.load().holds(finding_id, config, list(shape), "float32", {}, kind=kind, adapter=adapter))
    return pytest.mark.xfail(applies, strict=True, raises=raises,
                             reason=f"{finding_id} (TF.js {version}): {finding.title}")


def _case(name: str, shape: tuple, **config):
    return {"class_name": name, "config": config}, shape


CONV1D_CF = _case("Conv1D", (1, 3, 6), filters=2, kernel_size=3, data_format="channels_first")
CONV1D_CAUSAL = _case("Conv1D", (1, 5, 3), filters=2, kernel_size=2, padding="causal", use_bias=False)
DILATED = _case("Conv2D", (1, 5, 5, 1), filters=2, kernel_size=2, dilation_rate=2)
DEPTHWISE_DILATED = _case("DepthwiseConv2D", (1, 7, 7, 1), kernel_size=3, dilation_rate=2, padding="same")
SEPARABLE_STRIDE_DILATION = _case("SeparableConv2D", (1, 9, 9, 1), filters=2, kernel_size=3, strides=2, dilation_rate=2)
SEPARABLE_CF = _case("SeparableConv2D", (1, 1, 7, 7), filters=2, kernel_size=3, data_format="channels_first")
TRANSPOSE_DILATED = _case("Conv2DTranspose", (1, 4, 4, 1), filters=2, kernel_size=3, dilation_rate=2)
CONV3D_SAME = _case("Conv3D", (1, 4, 4, 4, 1), filters=1, kernel_size=1, strides=2, padding="same")
CONV3D_TRANSPOSE = _case("Conv3DTranspose", (1, 2, 2, 2, 1), filters=1, kernel_size=1)
HARD_SIGMOID = _case("Conv2D", (1, 3, 3, 1), filters=1, kernel_size=1, activation="hard_sigmoid")
BILINEAR = _case("UpSampling2D", (1, 3, 3, 1), size=2, interpolation="bilinear")
EMPTY_BATCH = _case("Conv3D", (0, 2, 2, 2, 2), filters=2, kernel_size=2)
CHANNELS_MIDDLE = _case("Cropping2D", (1, 2, 4, 4), cropping=[[0, 0], [0, 0]], data_format="channels_middle")


@_pin("JS1", *CONV1D_CF)
def test_conv1d_channels_first(tfjs):
    keras_forward(tfjs, *CONV1D_CF)


@_pin("JS2", *CONV1D_CAUSAL, ImplementationError)
def test_conv1d_causal(tfjs):
    keras_forward(tfjs, *CONV1D_CAUSAL)


@_pin("JS3", *DILATED, ImplementationError)
def test_dilated_gradients(tfjs):
    keras_vjp(tfjs, *DILATED)


@_pin("JS4", *DEPTHWISE_DILATED)
def test_depthwise_dilation(tfjs):
    keras_forward(tfjs, *DEPTHWISE_DILATED)


@_pin("JS5", *SEPARABLE_STRIDE_DILATION, ImplementationError)
def test_separable_stride_and_dilation(tfjs):
    keras_forward(tfjs, *SEPARABLE_STRIDE_DILATION)


@_pin("JS6", *SEPARABLE_CF, ImplementationError)
def test_separable_channels_first_bias(tfjs):
    keras_forward(tfjs, *SEPARABLE_CF)


@_pin("JS7", *TRANSPOSE_DILATED)
def test_transpose_dilation(tfjs):
    keras_forward(tfjs, *TRANSPOSE_DILATED)


@_pin("JS8", *CONV3D_SAME)
def test_conv3d_same_negative_padding(tfjs):
    keras_forward(tfjs, *CONV3D_SAME)


@_pin("JS9", *CONV3D_TRANSPOSE, ImplementationError)
def test_conv3d_transpose_gradient(tfjs):
    keras_vjp(tfjs, *CONV3D_TRANSPOSE)


@_pin("JS10", *HARD_SIGMOID)
def test_hard_sigmoid(tfjs):
    keras_forward(tfjs, *HARD_SIGMOID)


@_pin("JS11", *BILINEAR)
def test_bilinear(tfjs):
    keras_forward(tfjs, *BILINEAR)


@_pin("JS12", *EMPTY_BATCH, ImplementationError)
def test_empty_batch_gradients(tfjs):
    keras_vjp(tfjs, *EMPTY_BATCH)


@_pin("JS13", *CHANNELS_MIDDLE, kind="invalid")
def test_accepts_an_unknown_data_format(tfjs):
    rejects(tfjs, *CHANNELS_MIDDLE)


# ---------------------------------------------------------------------- pinned findings (WebAssembly only)

WASM_EMPTY = _case("Conv2D", (0, 1, 3, 3), filters=2, kernel_size=1, data_format="channels_first")
WASM_GRADIENTS = _case("Conv2D", (2, 7, 7, 3), filters=2, kernel_size=3, strides=2)
WASM_CONV3D_TRANSPOSE = _case("Conv3DTranspose", (1, 1, 3, 3, 5), filters=2, kernel_size=2, data_format="channels_first")


def test_wasm_computes_what_keras_computes(wasm):
    keras_forward(wasm, _conv("Conv2D", filters=3, kernel_size=3, strides=2, padding="same"), (2, 7, 6, 2))


@_pin("JW1", *WASM_EMPTY, ImplementationError, adapter="tfjs-wasm")
def test_wasm_empty_batch(wasm):
    keras_forward(wasm, *WASM_EMPTY)


@_pin("JW2", *WASM_GRADIENTS, ImplementationError, adapter="tfjs-wasm")
def test_wasm_conv_gradients(wasm):
    keras_vjp(wasm, *WASM_GRADIENTS)


@_pin("JW3", *WASM_CONV3D_TRANSPOSE, adapter="tfjs-wasm")
def test_wasm_conv3d_transpose(wasm):
    keras_forward(wasm, *WASM_CONV3D_TRANSPOSE)

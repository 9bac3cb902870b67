"""The deployment-runtime adapters (keras-jax/-torch/-numpy, onnxruntime[-noopt],
openvino, litert[-noxnnpack]) against the reference.

Every case is scored by the harness itself (``conformance.scoring.check``) in
a worker process (``runner.Isolated``), as ``conv-conformance run`` scores it:
each Keras backend needs a process whose first ``import keras`` sees its
``KERAS_BACKEND``, and the worker is where the adapters load in a run. One
worker per adapter serves all its cases; each case's model (ONNX graph,
TFLite conversion) is built once per case.

A known divergence of a runtime is a strict xfail whose condition names the
runtime version it was measured on (docs/divergences.md has the evidence).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.oracle.cases import case_set, make_case, materialize
from tests.conformance.test_adapters import CASES, INVALID, forward_score

# adapter name -> (module that must import, "module:Class", pytest marks)
RUNTIMES = {
    "keras-jax": ("jax", "keras_backends:KerasJaxAdapter", [pytest.mark.jax]),
    "keras-torch": ("torch", "keras_backends:KerasTorchAdapter", [pytest.mark.torch]),
    "keras-numpy": ("jax", "keras_backends:KerasNumpyAdapter", [pytest.mark.jax]),
    "onnxruntime": ("onnxruntime", "onnxruntime:OnnxRuntimeAdapter", []),
    "onnxruntime-noopt": ("onnxruntime", "onnxruntime:OnnxRuntimeNoOptAdapter", []),
    "openvino": ("openvino", "openvino:OpenVinoAdapter", []),
    "litert": ("ai_edge_litert", "litert:LiteRtAdapter", [pytest.mark.tensorflow]),
    "litert-noxnnpack": ("ai_edge_litert", "litert:LiteRtNoXnnpackAdapter", [pytest.mark.tensorflow]),
}
_PREFIX = "conv_conformance.conformance.adapters."
_workers: dict = {}

# A few cases per layer family (shared with the framework adapters' tests), plus declined ones.
FAMILY_CASES = ("conv1d-causal-dil-groups", "conv2d-same-stride-relu", "conv3d-same", "conv2dt-same-s2",
                "conv1dt-valid-op", "depthwise2d-stride-dil", "separable1d-stride", "cropping3d-cf",
                "zeropadding1d", "upsampling2d-nearest-cf", "upsampling2d-bilinear", "upsampling2d-bicubic",
                "upsampling2d-lanczos3", "conv2d-sparsemax")
FLOAT64_CASES = ("conv2d-same-stride-relu", "conv2dt-same-s2", "upsampling2d-bilinear")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


@pytest.fixture(scope="module", autouse=True)
def _close_workers():
    yield
    for worker in _workers.values():
        worker.close()
    _workers.clear()


def worker(name: str):
    """The adapter's worker process (one per adapter for the module); skips when its runtime is missing."""
    if name not in _workers:
        requirement, target, _ = RUNTIMES[name]
        pytest.importorskip(requirement)
        from conv_conformance.conformance.runner import Isolated

        _workers[name] = Isolated(_PREFIX + target, timeout=300)
    return _workers[name]


def _params(names=tuple(RUNTIMES)):
    return [pytest.param(n, marks=RUNTIMES[n][2], id=n) for n in names]


# Cases of this file only (R7: keras-torch backward contiguity; R14: keras-jax float64 tanh).
LOCAL_CASES = {
    "conv2d-one-filter-batch1": ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 2,
                                                                     "strides": [1, 2]}}, (1, 4, 4, 2)),
    "conv1dt-one-channel": ({"class_name": "Conv1DTranspose", "config": {"filters": 3, "kernel_size": 3}},
                            (1, 3, 1)),
    "conv2d-tanh": ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 2, "activation": "tanh"}},
                    (1, 3, 3, 2)),
}


def score(name: str, case_name: str, dtype: str):
    """The harness's CaseResult for one case of the shared tables, scored in the adapter's worker."""
    spec, shape = {**CASES, **LOCAL_CASES}[case_name] if case_name in {**CASES, **LOCAL_CASES} \
        else INVALID[case_name]
    kind = "invalid" if case_name in INVALID else "valid"
    case = make_case(reference.normalize(spec) if kind == "valid" else spec, shape, kind)
    return worker(name).check(case, materialize(case, dtype), dtype)


# ---------------------------------------------------------------- expectations

def declined(name: str, case_name: str, dtype: str) -> str | None:
    """Why the adapter declines the case's forward pass, or None."""
    cfg = reference.normalize(CASES[case_name][0])["config"]
    interp = cfg.get("interpolation")
    if interp in ("lanczos3", "lanczos5") and name in ("keras-torch", "onnxruntime", "onnxruntime-noopt",
                                                       "openvino", "litert", "litert-noxnnpack"):
        return "no lanczos"
    if cfg.get("activation") == "sparsemax" and name.startswith(("onnxruntime", "openvino")):
        return "no ONNX operator for sparsemax"
    if interp == "bicubic" and name.startswith("litert"):
        return "ResizeBicubic needs Flex"
    if dtype != "float32" and name in ("openvino", "litert", "litert-noxnnpack"):
        return "float32 only"
    if dtype == "float64" and name.startswith("onnxruntime") and not case_name.startswith(("cropping", "zeropadding")):
        return "ORT CPU has no float64 Conv/ConvTranspose/Resize kernel"
    return None


def divergence(name: str, case_name: str, dtype: str) -> str | None:
    """Why the runtime is known to differ from Keras 3 semantics on this case (docs/divergences.md R*), or None."""
    cfg = reference.normalize(CASES[case_name][0])["config"]
    if name == "keras-torch" and cfg.get("interpolation") == "bicubic" and _version("keras").startswith("3.15."):
        return "R1: Keras torch backend bicubic is F.interpolate's (a=-0.75, edges clamped), not Keras's (a=-0.5)"
    if cfg.get("activation") == "sparsemax" and _version("keras").startswith("3.15.") \
            and name.startswith(("keras-", "litert")):
        return ("R6 (K3 on every backend): Keras's sparsemax takes tau from the sum of the support's cumulative "
                "sums (keras/src/backend/{jax,torch,numpy,tensorflow}/nn.py alike)")
    if name == "keras-numpy" and dtype == "float64" and _version("keras").startswith("3.15."):
        return ("R2: Keras numpy backend demotes float64 to float32 (dtypes.result_type; convert_to_tensor of the "
                "inputs, ops.add of the bias); transposed, depthwise and separable convolutions raise TypeError")
    if name == "openvino" and cfg.get("interpolation") == "bicubic" and _version("openvino").startswith("2026.4"):
        return "R4: OpenVINO CPU Interpolate cubic ignores ONNX Resize exclude_outside=1 (edge taps clamped)"
    return None


# ---------------------------------------------------------------- tests

def _cases(dtypes=("float32",)):
    out = []
    for name in RUNTIMES:
        for dtype in dtypes:
            cases = FAMILY_CASES if dtype == "float32" else FLOAT64_CASES
            for case_name in cases:
                out.append(pytest.param(name, case_name, dtype, marks=RUNTIMES[name][2],
                                        id=f"{name}-{case_name}-{dtype}"))
    return out


@pytest.mark.parametrize("name, case_name, dtype", _cases(("float32", "float64")))
def test_runtime_matches_reference(name, case_name, dtype, request):
    result = score(name, case_name, dtype)
    why = declined(name, case_name, dtype)
    if why:
        assert result.verdicts["output"] == "unsupported", (why, result.verdicts, result.message)
        return
    reason = divergence(name, case_name, dtype)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    assert result.verdicts["shape"] == "pass", result.message
    assert result.verdicts["output"] == "pass", result.message
    grad = result.verdicts["gradient"]
    if name in ("keras-jax", "keras-torch"):
        assert grad == "pass", result.message
    else:
        assert grad == "unsupported" and "no vjp" in result.message, result.message


@pytest.mark.parametrize("case_name", ["strides-and-dilation", "output-padding-ge-strides", "unknown-padding"])
@pytest.mark.parametrize("name", _params())
def test_runtime_rejects_what_keras_rejects(name, case_name):
    result = score(name, case_name, "float32")
    assert result.verdicts == {"error_behaviour": "pass"}, result.message


@pytest.mark.parametrize("name", _params())
def test_runtime_records_versions_and_environment(name):
    info = worker(name).info
    assert info is not None and info.name == name
    expected = {"keras-jax": {"keras", "jax"}, "keras-torch": {"keras", "torch"}, "keras-numpy": {"keras", "jax"},
                "onnxruntime": {"onnxruntime", "onnx"}, "onnxruntime-noopt": {"onnxruntime", "onnx"},
                "openvino": {"openvino", "onnx"}, "litert": {"ai_edge_litert", "tensorflow"},
                "litert-noxnnpack": {"ai_edge_litert", "tensorflow"}}[name]
    assert expected <= set(info.versions), info.versions
    facts = info.environment["adapter"]
    if name.startswith("keras-"):
        backend = name.split("-")[1]
        assert facts["keras_backend"] == backend and facts["KERAS_BACKEND"] == backend, facts
        if backend in ("jax", "numpy"):
            assert facts["jax_enable_x64"] == "True", facts
    elif name.startswith("onnxruntime"):
        level = "ORT_DISABLE_ALL" if name.endswith("noopt") else "ORT_ENABLE_ALL"
        assert facts["ort_graph_optimization_level"] == level and facts["ort_providers"] == "CPUExecutionProvider"
        assert (facts["onnx_opset"], facts["onnx_ir_version"]) == ("21", "10")
    elif name == "openvino":
        # the precision the compiled model reports, not the hint we passed
        assert facts["ov_inference_precision_float32"] == "<Type: 'float32'>", facts
        assert "ov_default_inference_precision" in facts
    else:
        assert facts["litert_xnnpack_delegate"] == str(name == "litert"), facts


@pytest.mark.jax
def test_keras_backend_mismatch_is_refused():
    """keras already imported with another backend: the adapter refuses to load and names both backends."""
    pytest.importorskip("jax")
    code = textwrap.dedent("""
        import os
        os.environ["KERAS_BACKEND"] = "numpy"
        import keras
        from conv_conformance.conformance.adapters.keras_backends import KerasJaxAdapter
        try:
            KerasJaxAdapter()
        except RuntimeError as exc:
            print("REFUSED", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "REFUSED" in out.stdout, out.stderr[-2000:]
    assert "'jax' backend" in out.stdout and "'numpy' backend" in out.stdout, out.stdout


def test_keras_numpy_has_no_vjp():
    from conv_conformance.conformance.adapters import keras_backends

    assert not hasattr(keras_backends.KerasNumpyAdapter, "vjp")
    assert callable(keras_backends.KerasJaxAdapter.vjp) and callable(keras_backends.KerasTorchAdapter.vjp)


# ---------------------------------------------------------------- the ONNX graph

def _graph(spec: dict, shape: tuple):
    pytest.importorskip("onnx")
    from conv_conformance.conformance.adapters import onnx_graph

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = {k: rng.standard_normal(s).astype(np.float32) for k, s in reference.weight_shapes(spec, shape).items()}
    return onnx_graph.build(spec, x, w).model


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize("case_name", ["conv2d-same-stride-relu", "conv2dt-same-s2", "depthwise2d-stride-dil",
                                       "upsampling2d-bicubic", "zeropadding3d-cf"])
def test_onnx_graph_is_valid_pinned_and_explicit(case_name):
    import onnx

    model = _graph(*CASES[case_name])
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10 and [(o.domain, o.version) for o in model.opset_import] == [("", 21)]
    for node in model.graph.node:
        assert "auto_pad" not in _attrs(node), node


def test_onnx_conv_transpose_window():
    """Keras's window as pads/output_padding, derived by hand from Keras's formulas:
    'same', k=3, s=2, n=5: natural length 11, Keras length 10, crop 0 before and 1 after;
    'valid', k=2, s=3, n=4: natural length 11, Keras length 12 (= n*s): 1 zero appended."""
    same = _graph({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 3, "strides": 2,
                                                                "padding": "same"}}, (1, 5, 3))
    node = next(n for n in same.graph.node if n.op_type == "ConvTranspose")
    assert _attrs(node)["pads"] == [0, 1] and "output_padding" not in _attrs(node)
    valid = _graph({"class_name": "Conv1DTranspose", "config": {"filters": 2, "kernel_size": 2, "strides": 3}},
                   (1, 4, 3))
    node = next(n for n in valid.graph.node if n.op_type == "ConvTranspose")
    assert _attrs(node)["pads"] == [0, 0] and _attrs(node)["output_padding"] == [1]


def test_onnx_depthwise_is_group_conv_in_keras_channel_order():
    """DepthwiseConv2D with C=3, M=2: Conv(group=3), weight (6, 1, k, k) with row c*M + m = kernel[..., c, m]."""
    from onnx import numpy_helper

    spec, shape = CASES["depthwise2d-stride-dil"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = {k: rng.standard_normal(s).astype(np.float32) for k, s in reference.weight_shapes(spec, shape).items()}
    pytest.importorskip("onnx")
    from conv_conformance.conformance.adapters import onnx_graph

    model = onnx_graph.build(spec, x, w).model
    node = next(n for n in model.graph.node if n.op_type == "Conv")
    assert _attrs(node)["group"] == 3
    weight = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == node.input[1]))
    assert weight.shape == (6, 1, 3, 3)
    for c in range(3):
        for m in range(2):
            np.testing.assert_array_equal(weight[c * 2 + m, 0], w["kernel"][:, :, c, m])


def test_onnx_resize_modes_match_keras():
    bicubic = _graph(*CASES["upsampling2d-bicubic"])
    node = next(n for n in bicubic.graph.node if n.op_type == "Resize")
    a = _attrs(node)
    assert (a["mode"], a["coordinate_transformation_mode"], a["cubic_coeff_a"], a["exclude_outside"]) \
        == (b"cubic", b"half_pixel", -0.5, 1)
    nearest = _graph(*CASES["upsampling2d-nearest-cf"])
    a = _attrs(next(n for n in nearest.graph.node if n.op_type == "Resize"))
    assert (a["mode"], a["coordinate_transformation_mode"], a["nearest_mode"]) == (b"nearest", b"asymmetric", b"floor")


def test_onnx_graph_declines_what_onnx_cannot_express():
    from conv_conformance.conformance import Unsupported

    with pytest.raises(Unsupported, match="lanczos3"):
        _graph(*CASES["upsampling2d-lanczos3"])
    with pytest.raises(Unsupported, match="sparsemax"):
        _graph(*CASES["conv2d-sparsemax"])


# ---------------------------------------------------------------- LiteRT delegate

@pytest.mark.tensorflow
def test_litert_variants_differ_by_the_xnnpack_delegate():
    """The converted CONV_2D is taken by the XNNPACK delegate in `litert`, run by LiteRT's kernel in the other."""
    pytest.importorskip("ai_edge_litert")
    from conv_conformance.conformance.adapters.litert import LiteRtAdapter, LiteRtNoXnnpackAdapter

    spec, shape = CASES["conv2d-same-stride-relu"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = {k: rng.standard_normal(s).astype(np.float32) for k, s in reference.weight_shapes(spec, shape).items()}
    assert "DELEGATE" in LiteRtAdapter().ops(spec, x, w)
    assert LiteRtNoXnnpackAdapter().ops(spec, x, w) == ["CONV_2D"]


# ---------------------------------------------------------------- pinned runtime findings

@pytest.mark.parametrize("name", ["onnxruntime", "onnxruntime-noopt"])
def test_ort_sigmoid_is_absolutely_not_relatively_accurate(name, request):
    """R3: ORT's CPU Sigmoid (MLAS logistic) errs by up to ~6e-8 absolute, so sigmoid(-17.96) = 1.19e-7
    against 1.58e-8 (measured with onnxruntime 1.32.0 on x86-64; optimizations on and off alike)."""
    pytest.importorskip("onnxruntime")
    import importlib
    import platform

    if _version("onnxruntime").startswith("1.32.") and platform.machine() == "x86_64":
        request.applymarker(pytest.mark.xfail(strict=True, reason="R3: ORT CPU Sigmoid relative error for x < -5"))
    module, attr = RUNTIMES[name][1].split(":")
    adapter = getattr(importlib.import_module(_PREFIX + module), attr)()
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "sigmoid"}}
    x = np.array([[[-17.9623], [-9.9278], [-4.9947], [1.0]]], np.float32)
    w = {"kernel": np.ones((1, 1, 1), np.float32), "bias": np.zeros(1, np.float32)}
    result = forward_score(adapter, spec, x, w)
    assert result.passed, result.message


@pytest.mark.kernels
def test_openvino_one_channel_corner(request):
    """R5 (O1 in OpenVINO's bundled oneDNN): a 2-D convolution with one input channel, row stride <
    column stride and output width 1 computes wrong values, deterministically (the same wrong
    values on every call and in every process), when oneDNN dispatches to AVX-512; with
    ONEDNN_MAX_CPU_ISA=AVX2 it is right. Measured with openvino 2026.4.1 at INFERENCE_PRECISION_HINT f32."""
    pytest.importorskip("openvino")
    from conv_conformance.conformance import environment
    from conv_conformance.conformance.adapters.openvino import OpenVinoAdapter
    from tests.framework_corners import onednn_one_channel_corner

    spec, shape = CASES["conv2d-onednn-one-channel"]
    assert onednn_one_channel_corner(spec, shape)  # the premise: the case is O1's corner
    if _version("openvino").startswith("2026.4.") and environment.onednn_isa() == "avx512":
        request.applymarker(pytest.mark.xfail(strict=True, reason="R5: OpenVINO oneDNN AVX-512 one-channel corner"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    w = {k: rng.standard_normal(s).astype(np.float32) for k, s in reference.weight_shapes(spec, shape).items()}
    result = forward_score(OpenVinoAdapter(), spec, x, w)
    assert result.passed, result.message


@pytest.mark.parametrize("case_name", ["conv2d-one-filter-batch1", "conv1dt-one-channel"])  # R7's
@pytest.mark.parametrize("name", _params(("keras-torch", "keras-jax")))
def test_keras_torch_backward_contiguity(name, case_name, request):
    """R7: Keras's torch backend hands PyTorch permuted kernels, so it inherits P5 (conv2d backward,
    one output channel, several input channels, NHWC input, batch 1 in float32) and P2 (conv_transpose
    backward with one input channel): the gradient raises RuntimeError "grad_weight ... contiguous".
    Measured with keras 3.15.1 and torch 2.13.0+cpu; keras-jax computes both right."""
    if name == "keras-torch" and _version("keras").startswith("3.15.") and _version("torch").startswith("2.13."):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R7: torch backward needs contiguous kernels"))
    result = score(name, case_name, "float32")
    assert result.verdicts["output"] == "pass", result.message
    assert result.verdicts["gradient"] == "pass", result.message


def test_list_adapters_shows_the_runtimes_importable():
    """`conv-conformance list-adapters` after `pip install -e .[all]`: every runtime adapter is
    registered and its module imports (importing it imports no framework: keras is imported
    only when an adapter is built, after KERAS_BACKEND is set)."""
    from conv_conformance.conformance.registry import list_adapters

    infos = {info.name: info for info in list_adapters()}
    for name, (_, target, _) in RUNTIMES.items():
        assert name in infos, f"{name} is not registered (pip install -e .[all] refreshes the entry points)"
        assert infos[name].target == _PREFIX + target and infos[name].error is None, infos[name]
    code = ("import sys; import conv_conformance.conformance.adapters.keras_backends, "
            "conv_conformance.conformance.adapters.litert; print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr[-1000:]


def test_openvino_mish_is_within_the_documented_formulas_allowance():
    """R13 (withdrawn): OpenVINO's CPU Mish (ONNX Mish) loses relative accuracy for x < -5 (112 ulps
    at x = -5.0, mish(-18.15) = -0.0 against -2.38e-7, openvino 2026.4.1, f32 precision), as Keras's
    documented z * tanh(log(exp(z) + 1)) does in float32, whose allowance the suite gives mish."""
    pytest.importorskip("openvino")
    from conv_conformance.conformance.adapters.openvino import OpenVinoAdapter

    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "mish"}}
    x = np.array([[[-18.1478], [-4.9966], [1.0]]], np.float32)
    w = {"kernel": np.ones((1, 1, 1), np.float32), "bias": np.zeros(1, np.float32)}
    result = forward_score(OpenVinoAdapter(), spec, x, w)
    assert result.passed, result.message


# R9 and R10: a channels_first graph the TFLite converter cannot rewrite (conversion) or lowers into
# a SpaceToBatchND that LiteRT's kernel rejects (prepare). Measured with tensorflow 2.21.0 (whose
# converter emits the model) and ai-edge-litert 2.3.0; channels_last twins convert and pass.
LITERT_CHANNELS_FIRST = {
    "conv1d-cf-bias": ("R9", "'tf.Transpose' op x should be of the same rank",
                       {"class_name": "Conv1D", "config": {"filters": 3, "kernel_size": 2,
                                                           "data_format": "channels_first"}}, (1, 2, 5)),
    "conv3d-cf-bias": ("R9", "'tf.Transpose' op x should be of the same rank",
                       {"class_name": "Conv3D", "config": {"filters": 3, "kernel_size": 2,
                                                           "data_format": "channels_first"}}, (1, 2, 3, 4, 5)),
    "conv1d-cf-nobias": ("R9", "'tfl.transpose' op expect output type",
                         {"class_name": "Conv1D", "config": {"filters": 3, "kernel_size": 2, "use_bias": False,
                                                             "data_format": "channels_first"}}, (1, 2, 5)),
    "conv2d-cf-dilated": ("R10", "space_to_batch_nd.cc",
                          {"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": 2, "dilation_rate": 2,
                                                              "data_format": "channels_first"}}, (1, 2, 6, 7)),
}


def _channels_last(spec: dict, shape: tuple) -> tuple[dict, tuple]:
    config = {k: v for k, v in spec["config"].items() if k != "data_format"}
    return {"class_name": spec["class_name"], "config": config}, (shape[0], *shape[2:], shape[1])


@pytest.mark.parametrize("case_name", list(LITERT_CHANNELS_FIRST))
@pytest.mark.parametrize("name", _params(("litert", "litert-noxnnpack")))
def test_litert_channels_first_conversion(name, case_name, request):
    """R9 (channels_first bias on 1-D/3-D layers, and 1-D channels_first without bias: the converter's
    NCHW->NHWC rewrite assumes rank 4) and R10 (a dilated channels_first Conv2D converts but fails at
    prepare in SPACE_TO_BATCH_ND): the harness records an `error` naming the converter's or the
    kernel's message. The channels_last twin of every case passes, so it is the layout, not the layer."""
    finding, message, spec, shape = LITERT_CHANNELS_FIRST[case_name]
    twin, twin_shape = _channels_last(spec, shape)
    twin_case = make_case(reference.normalize(twin), twin_shape, "valid")
    assert worker(name).check(twin_case, materialize(twin_case, "float32"), "float32").verdicts["output"] == "pass"
    case = make_case(reference.normalize(spec), shape, "valid")
    result = worker(name).check(case, materialize(case, "float32"), "float32")
    if _version("tensorflow").startswith("2.21.") and _version("ai-edge-litert").startswith("2.3."):
        assert result.verdicts["output"] == "error" and message in result.message, (result.verdicts, result.message)
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"{finding}: {message}"))
    assert result.verdicts["output"] == "pass", result.message


@pytest.mark.parametrize("name", _params(("keras-jax", "keras-torch")))
def test_keras_jax_tanh_float64(name, request):
    """R14: on the JAX backend `keras.ops.tanh` casts its input to `dtypes.result_type(x.dtype, float)`
    (keras/src/backend/jax/numpy.py), and Keras's type lattice maps float64 to float32 on every backend
    but TensorFlow (BIT64_TO_BIT32_DTYPE), x64 enabled or not: a float64 layer with activation='tanh'
    returns float32 values (ratio ~1e7). The convolution itself stays float64 (the linear twin passes);
    keras-torch's tanh does not cast. Measured with keras 3.15.1, jax 0.10.2."""
    spec, shape = LOCAL_CASES["conv2d-tanh"]
    linear = make_case(reference.normalize({**spec, "config": {**spec["config"], "activation": "linear"}}),
                       shape, "valid")
    assert worker(name).check(linear, materialize(linear, "float64"), "float64").verdicts["output"] == "pass"
    if name == "keras-jax" and _version("keras").startswith("3.15."):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R14: keras jax backend tanh demotes float64"))
    result = score(name, "conv2d-tanh", "float64")
    assert result.verdicts["output"] == "pass", result.message
    assert result.verdicts["gradient"] == "pass", result.message


def _litert_versions_of_the_findings() -> bool:
    return _version("tensorflow").startswith("2.21.") and _version("ai-edge-litert").startswith("2.3.")


def _scored(name: str, spec: dict, shape: tuple, dtype: str):
    case = make_case(reference.normalize(spec), shape, "valid")
    return worker(name).check(case, materialize(case, dtype), dtype)


@pytest.mark.parametrize("name", _params(("keras-torch",)))
def test_keras_torch_hard_sigmoid_gradient_float64(name, request):
    """R8 (P1 through Keras): the torch backend's hard_sigmoid is `F.hardsigmoid`, whose backward
    multiplies by 1/6 rounded to float32, so a float64 layer's gradient is float32-accurate (ratio
    ~3e6). The linear twin's gradient passes: it is the activation. Measured with keras 3.15.1 and
    torch 2.13.0, on AMD EPYC with and without AVX-512."""
    spec = {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 2, "activation": "hard_sigmoid"}}
    linear = {**spec, "config": {**spec["config"], "activation": "linear"}}
    assert _scored(name, linear, (1, 4, 4, 2), "float64").verdicts["gradient"] == "pass"
    if _version("keras").startswith("3.15.") and _version("torch").startswith("2.13."):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R8: torch hardsigmoid backward's 1/6 in float32"))
    result = _scored(name, spec, (1, 4, 4, 2), "float64")
    assert result.verdicts["output"] == "pass", result.message
    assert result.verdicts["gradient"] == "pass", result.message


@pytest.mark.parametrize("name", _params(("litert", "litert-noxnnpack")))
def test_litert_inherits_the_channels_first_bias_axis(name, request):
    """R11's K2 part: the converted graph is Keras's, so a channels_first Conv2D whose last spatial
    length equals its channel count adds the bias along that axis (ratio ~6e6). The twin whose last
    length differs passes, so it is the coincidence of lengths, not channels_first."""
    spec = {"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": 1, "data_format": "channels_first"}}
    assert _scored(name, spec, (1, 2, 4, 5), "float32").verdicts["output"] == "pass"
    if _litert_versions_of_the_findings():
        request.applymarker(pytest.mark.xfail(strict=True, reason="R11 (K2): bias along the last spatial axis"))
    result = _scored(name, spec, (1, 2, 4, 3), "float32")
    assert result.verdicts["output"] == "pass", result.message


@pytest.mark.parametrize("name", _params(("litert", "litert-noxnnpack")))
def test_litert_inherits_the_transposed_same_padding_failure(name, request):
    """R11's K6 part: a transposed 'same' convolution with `kernel_size % 2 + output_padding == 0`
    fails at prepare in LiteRT's TRANSPOSE_CONV ("computed_input_height != SizeOfDimension"); the
    same layer with output_padding=None converts and passes."""
    spec = {"class_name": "Conv2DTranspose", "config": {"filters": 2, "kernel_size": 2, "strides": 2,
                                                         "padding": "same", "output_padding": 0}}
    twin = {**spec, "config": {**spec["config"], "output_padding": None}}
    assert _scored(name, twin, (1, 3, 3, 2), "float32").verdicts["output"] == "pass"
    result = _scored(name, spec, (1, 3, 3, 2), "float32")
    if _litert_versions_of_the_findings():
        assert result.verdicts["output"] == "error" and "computed_input_height" in result.message, result.message
        request.applymarker(pytest.mark.xfail(strict=True, reason="R11 (K6): TRANSPOSE_CONV prepare fails"))
    assert result.verdicts["output"] == "pass", result.message


@pytest.mark.parametrize("case_id", ["Conv1D-a7dfe615ece5", "DepthwiseConv2D-5ec512a0ccdb"])
@pytest.mark.parametrize("name", _params(("litert", "litert-noxnnpack")))
def test_litert_mish_under_xnnpack(name, case_id):
    """R12 (withdrawn): TFLite has no MISH builtin; under the XNNPACK delegate the converted
    exp/log/tanh run in XNNPACK's approximations, within the allowance of Keras's documented
    z * tanh(log(exp(z) + 1)) evaluated in float32 (these standard cases missed a bound without
    it by 1.20 and 1.42); LiteRT's own kernels stay within it too."""
    [case] = [c for c in case_set("standard", layers=[case_id.split("-")[0]]) if c.id == case_id]
    result = worker(name).check(case, materialize(case, "float32"), "float32")
    assert result.verdicts["output"] == "pass", result.message

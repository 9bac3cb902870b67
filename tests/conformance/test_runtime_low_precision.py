"""The runtime adapters' float16 and bfloat16 paths (onnxruntime, openvino, litert).

Each path is the one a user deploys: ONNX graphs whose inputs, weights and outputs are float16 or
bfloat16; OpenVINO compiled with ``INFERENCE_PRECISION_HINT`` f16/bf16; LiteRT's XNNPACK
``FORCE_FP16`` inference. Results are compared with the float64 reference through the harness's
one comparison routine at the dtype's allowed error and its strict low-precision class
(``oracle.tolerance.bounds_strict_scale``). What a runtime cannot run is declined with a message
naming what is missing, and a known divergence is a strict xfail whose condition names the
runtime version and the CPU capability it was measured with (docs/divergences.md).
"""
from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.calls import cast
from conv_conformance.conformance.compare import score
from conv_conformance.oracle.tolerance import bounds_strict_scale

ml_dtypes = pytest.importorskip("ml_dtypes")

CONV = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "activation": "relu"}}
CONV_SHAPE = (1, 6, 6, 16)
#: 8 products and a bias per element: the rigorous bfloat16 bound stays finite (n * u < 1/2)
SMALL = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 2}}
SMALL_SHAPE = (1, 5, 5, 2)
U = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def _draw(spec: dict, shape: tuple, dtype: str, seed: int = 0) -> tuple[np.ndarray, dict]:
    """Inputs and weights with magnitudes in [0.5, 1) and random signs, exact in `dtype` (as the cases draw them)."""
    rng = np.random.default_rng(seed)

    def draw(s):
        return cast(rng.uniform(0.5, 1.0, s) * rng.choice([-1.0, 1.0], s), dtype)

    return draw(shape), {k: draw(s) for k, s in reference.weight_shapes(spec, shape).items()}


def _scored(actual, spec: dict, x: np.ndarray, w: dict):
    """The harness's Score of `actual` against the reference, with the strict class of x's dtype."""
    x64, w64 = x.astype(np.float64), {k: v.astype(np.float64) for k, v in w.items()}
    y = reference.forward(spec, x64, w64)
    modes, strict, _ = bounds_strict_scale(spec, x64, w64, np.ones_like(y), x.dtype.name)
    return score("out", actual, y, modes["rigorous"][0], strict=strict[0], call=f"{spec} {x.dtype.name}")


def _float16_representable(y: np.ndarray) -> bool:
    y = np.asarray(y, np.float32)
    return bool(np.all(y.astype(np.float16).astype(np.float32) == y))


# ---------------------------------------------------------------- the ONNX graph

@pytest.mark.parametrize("dtype, elem, opset", [("float16", 10, 21), ("bfloat16", 16, 22)])
def test_low_precision_graph_holds_its_dtype_throughout(dtype, elem, opset):
    """Inputs, weights and output in the case's dtype (a converter's low-precision export), never
    float32 with a Cast at the edge; bfloat16 at opset 22, where Conv first admits it."""
    onnx = pytest.importorskip("onnx")
    from conv_conformance.conformance.adapters import onnx_graph

    x, w = _draw(CONV, CONV_SHAPE, dtype)
    model = onnx_graph.build(CONV, x, w).model
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", opset)]
    graph = model.graph
    assert [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)] == [elem, elem]
    floats = [t for t in graph.initializer if t.data_type not in (6, 7)]  # int32/int64 shape constants aside
    assert floats and all(t.data_type == elem for t in floats), [(t.name, t.data_type) for t in floats]
    assert "Cast" not in {n.op_type for n in graph.node}


def test_onnx_graph_declines_an_operator_without_the_dtype():
    """ONNX Shrink (soft_shrink, hard_shrink) has no bfloat16 at any opset: declined naming both."""
    pytest.importorskip("onnx")
    from conv_conformance.conformance.adapters import onnx_graph

    spec = {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 1, "activation": "soft_shrink"}}
    x, w = _draw(spec, (1, 3, 2), "bfloat16")
    with pytest.raises(Unsupported, match=r"Shrink-9 \(opset 22\) does not admit bfloat16"):
        onnx_graph.build(spec, x, w)
    x16, w16 = _draw(spec, (1, 3, 2), "float16")
    assert onnx_graph.build(spec, x16, w16).dtype == "float16"


# ---------------------------------------------------------------- ONNX Runtime

@pytest.fixture(scope="module", params=["OnnxRuntimeAdapter", "OnnxRuntimeNoOptAdapter"])
def ort_adapter(request):
    pytest.importorskip("onnxruntime")
    from conv_conformance.conformance.adapters import onnxruntime

    return getattr(onnxruntime, request.param)()


def test_ort_float16_graph_is_scored_inside_the_strict_class(ort_adapter):
    """ORT computes the float16 graph's Conv in float32 between Casts: one rounding to float16."""
    x, w = _draw(CONV, CONV_SHAPE, "float16")
    y = ort_adapter.forward(CONV, x, w)
    assert y.dtype == np.float16
    result = _scored(y, CONV, x, w)
    assert result.passed and result.strict_ratio <= 1, result.message


def test_ort_float16_placement_is_recorded(ort_adapter):
    facts = ort_adapter.environment()
    native = set(facts["ort_float16_native_ops"].split(","))
    widened = set(facts["ort_float16_cast_to_float32_ops"].split(","))
    assert not native & widened and {"Conv", "Transpose"} <= native | widened, facts
    assert "Transpose" in native  # data movement has float16 kernels on every ORT CPU build
    if _version("onnxruntime").startswith("1.32."):
        # measured: ORT 1.32 CPU EP on x86 has no float16 Conv, ConvTranspose or Resize kernel
        assert {"Conv", "ConvTranspose", "Resize"} <= widened, facts


def test_ort_bfloat16_conv_is_declined_naming_the_missing_kernel(ort_adapter):
    x, w = _draw(CONV, CONV_SHAPE, "bfloat16")
    with pytest.raises(Unsupported, match=r"no bfloat16 kernel .*Conv\(22\)"):
        ort_adapter.forward(CONV, x, w)


def test_ort_bfloat16_data_movement_runs_in_bfloat16(ort_adapter):
    """Pad has a bfloat16 CPU kernel: the bfloat16 bits go in and come back through OrtValues."""
    spec = {"class_name": "ZeroPadding2D", "config": {"padding": [[1, 0], [0, 2]]}}
    x, _ = _draw(spec, (2, 3, 4, 2), "bfloat16")
    y = ort_adapter.forward(spec, x, {})
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y.astype(np.float64),
                                  np.pad(x.astype(np.float64), [(0, 0), (1, 0), (0, 2), (0, 0)]))


# ---------------------------------------------------------------- OpenVINO

@pytest.fixture(scope="module")
def ov_adapter():
    pytest.importorskip("openvino")
    from conv_conformance.conformance.adapters.openvino import OpenVinoAdapter

    return OpenVinoAdapter()


def _ov_native(ov_adapter, capability: str) -> bool:
    return capability in ov_adapter.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_openvino_records_the_precision_each_dtype_compiles_to(ov_adapter):
    facts = ov_adapter.environment()
    for dtype, capability, hint in (("float16", "FP16", "float16"), ("bfloat16", "BF16", "bfloat16")):
        used = facts[f"ov_inference_precision_{dtype}"]
        if not _ov_native(ov_adapter, capability):
            # without native f16/bf16 arithmetic the plugin keeps f32, whatever the hint asks
            assert used == "<Type: 'float32'>" and facts[f"ov_convolution_precision_{dtype}"] == "f32", facts
        else:
            assert used == f"<Type: '{hint}'>", facts


def test_openvino_float16_model_is_scored_inside_the_strict_class(ov_adapter):
    x, w = _draw(CONV, CONV_SHAPE, "float16")
    y = ov_adapter.forward(CONV, x, w)
    assert y.dtype == np.float16
    result = _scored(y, CONV, x, w)
    assert result.passed and result.strict_ratio <= 1, result.message


def test_openvino_bfloat16_model_is_scored(ov_adapter):
    x, w = _draw(SMALL, SMALL_SHAPE, "bfloat16")
    y = ov_adapter.forward(SMALL, x, w)
    assert y.dtype == x.dtype
    result = _scored(y, SMALL, x, w)
    assert result.passed and np.isfinite(result.worst["allowed"]), result.message


def test_a_bfloat16_model_fed_without_its_element_type_is_caught(ov_adapter):
    """The wrong variant: handing OpenVINO the ml_dtypes array as is (its Python API maps no NumPy
    type to bf16 and reads the bits as float16). The harness must fail it; the adapter passes."""
    x, w = _draw(SMALL, SMALL_SHAPE, "bfloat16")
    assert _scored(ov_adapter.forward(SMALL, x, w), SMALL, x, w).passed  # compiles and caches the model
    compiled = ov_adapter._last[1]
    naive = np.asarray(compiled([x])[compiled.output(0)])
    assert not _scored(naive, SMALL, x, w).passed


def _ov_bf16_cast(values: np.ndarray) -> np.ndarray:
    """OpenVINO's f32 -> bf16 conversion of `values` (ONNX Cast), read back as float64."""
    import openvino as ov
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)], "cast",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(values.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, list(values.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)
    core = ov.Core()
    request = core.compile_model(core.read_model(model.SerializeToString()), "CPU",
                                 {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
    request.infer([values])
    bits = np.array(request.get_output_tensor(0).data).view(np.uint16).astype(np.uint32) << 16
    return bits.view(np.float32).astype(np.float64)


def test_openvino_rounds_float32_to_bfloat16_to_nearest(ov_adapter, request):
    """1 + 0xFF00 * 2^-23 lies 0x0100 * 2^-23 below 1 + 2^-7 and 0xFF00 * 2^-23 above 1: its nearest
    bfloat16 is 1 + 2^-7. On CPUs without native bf16 OpenVINO 2026.4 truncates it to 1 (R15: it
    adds half an ulp only when the kept last bit is odd)."""
    pytest.importorskip("onnx")
    if _version("openvino").startswith("2026.4") and not _ov_native(ov_adapter, "BF16"):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R15: OpenVINO f32->bf16 truncates when the "
                                                                  "kept last bit is even (no AVX512_BF16)"))
    values = (np.uint32(0x3F800000) + np.array([0xFF00, 0x8001, 0x18001, 0x17FFF], np.uint32)).view(np.float32)
    nearest = np.array([1 + 2 ** -7, 1 + 2 ** -7, 1 + 2 * 2 ** -7, 1 + 2 ** -7])
    np.testing.assert_array_equal(_ov_bf16_cast(values), nearest)


# ---------------------------------------------------------------- LiteRT

@pytest.fixture(scope="module")
def litert_adapters():
    pytest.importorskip("ai_edge_litert")
    from conv_conformance.conformance.adapters.litert import LiteRtAdapter, LiteRtNoXnnpackAdapter

    return LiteRtAdapter(), LiteRtNoXnnpackAdapter()


@pytest.mark.tensorflow
def test_litert_float16_is_xnnpack_half_precision_inference(litert_adapters):
    """Under FORCE_FP16 every output element is a float16 value (XNNPACK stores its result in float16);
    the float32 interpreter's result on the same model is not, so the check tells the two apart."""
    litert, _ = litert_adapters
    spec = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3}}
    x, w = _draw(spec, CONV_SHAPE, "float16")
    y = litert.forward(spec, x, w)
    assert _float16_representable(y)
    assert _scored(y, spec, x, w).passed
    y32 = litert.forward(spec, x.astype(np.float32), {k: v.astype(np.float32) for k, v in w.items()})
    assert not _float16_representable(y32)


@pytest.mark.tensorflow
def test_litert_declines_what_it_has_no_path_for(litert_adapters):
    litert, noxnnpack = litert_adapters
    x, w = _draw(CONV, CONV_SHAPE, "float16")
    with pytest.raises(Unsupported, match="builtin kernels have no float16 arithmetic"):
        noxnnpack.forward(CONV, x, w)
    xb, wb = _draw(CONV, CONV_SHAPE, "bfloat16")
    for adapter in (litert, noxnnpack):
        with pytest.raises(Unsupported, match="TFLite has no bfloat16 kernels"):
            adapter.forward(CONV, xb, wb)


@pytest.mark.tensorflow
def test_litert_compiled_model_returns_an_operatorless_models_input(litert_adapters, request):
    """ZeroPadding1D(padding=0) converts to a model with no operator, its output tensor its input.
    LiteRT 2.3's CompiledModel leaves the output buffer unwritten (R16)."""
    litert, _ = litert_adapters
    if _version("ai-edge-litert").startswith("2.3"):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R16: CompiledModel leaves an operatorless "
                                                                  "model's output buffer unwritten"))
    spec = {"class_name": "ZeroPadding1D", "config": {"padding": 0}}
    x, _ = _draw(spec, (2, 4, 3), "float16")
    np.testing.assert_array_equal(litert.forward(spec, x, {}), x.astype(np.float32))


@pytest.mark.tensorflow
def test_litert_float16_depthwise_sums_in_float32(litert_adapters, request):
    """Taps 2048 (first) and 8 x 0.5625: summed in float32 and rounded once, 2052.5 -> 2052; a float16
    running sum that starts at 2048 drops every 0.5625 (below half an ulp, 1) and ends at 2048 (R17)."""
    litert, _ = litert_adapters
    if _version("ai-edge-litert").startswith("2.3"):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R17: XNNPACK's float16 depthwise convolution "
                                                                  "accumulates in float16"))
    spec = {"class_name": "DepthwiseConv2D", "config": {"kernel_size": 3, "use_bias": False}}
    x = np.full((1, 3, 3, 8), 0.75, np.float16)
    x[0, 0, 0, :] = 32
    w = np.full((3, 3, 8, 1), 0.75, np.float16)
    w[0, 0, :, 0] = 64
    np.testing.assert_array_equal(litert.forward(spec, x, {"kernel": w}), np.full((1, 1, 1, 8), 2052.0))


@pytest.mark.tensorflow
def test_litert_float16_sigmoid_keeps_subnormal_results(litert_adapters, request):
    """sigmoid(-10) = 4.54e-5 is a float16 subnormal (nearest: 762 * 2^-24); XNNPACK's float16 sigmoid
    returns 0 (R18)."""
    litert, _ = litert_adapters
    if _version("ai-edge-litert").startswith("2.3"):
        request.applymarker(pytest.mark.xfail(strict=True, reason="R18: XNNPACK's float16 sigmoid flushes "
                                                                  "subnormal results to zero"))
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "sigmoid",
                                               "use_bias": False}}
    y = litert.forward(spec, np.full((1, 1, 1), -10.0, np.float16), {"kernel": np.ones((1, 1, 1), np.float16)})
    assert float(y[0, 0, 0]) == pytest.approx(762 * 2.0 ** -24, abs=2.0 ** -25)

"""The low-precision strict class at float16 and bfloat16 (oracle.tolerance): no false alarm on honest
float32-accumulating variants at every rounding placement, its power, the mutants it catches through
the one scoring path, and the error against the output's rounding (conformance.precision)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance import precision
from conv_conformance.conformance.compare import error_ratios
from conv_conformance.conformance.scoring import check
from conv_conformance.oracle import cases, tolerance
from tests import lowp_emulation as emulation

LOW = ("float16", "bfloat16")


def _case(spec: dict, shape):
    return cases.make_case(reference.normalize(spec), shape, "valid")


def _networks_subset(every: int = 37):
    return [c for c in cases.case_set("networks")
            if reference.LAYERS[c.layer].family in ("conv", "conv_transpose", "depthwise", "separable")][::every]


# ------------------------------------------------------------------ no false alarm

@pytest.mark.parametrize("dtype", LOW)
def test_honest_float32_accumulation_never_exceeds_the_strict_class_on_networks_cases(dtype):
    worst = 0.0
    for c in _networks_subset():
        m = cases.materialize(c, dtype)
        for placement in emulation.PLACEMENTS:
            y = emulation.honest(c.spec, m.inputs, m.weights, dtype, placement)
            ratio = float(error_ratios(y, m.expected_output, m.strict_output).max())
            assert ratio <= 1.0, (c.id, placement, ratio)
            worst = max(worst, ratio)
    assert worst > 0.5  # the class is tight: one rounding of the result reaches most of it


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "silu", "relu"])
@pytest.mark.parametrize("dtype", LOW)
def test_honest_variants_with_activations_and_bias_stay_inside(dtype, activation):
    spec = {"class_name": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "activation": activation}}
    c = _case(spec, (2, 9, 9, 24))
    m = cases.materialize(c, dtype)
    for placement in emulation.PLACEMENTS:
        y = emulation.honest(c.spec, m.inputs, m.weights, dtype, placement)
        assert float(error_ratios(y, m.expected_output, m.strict_output).max()) <= 1.0, placement


def test_the_placements_round_differently():
    spec = {"class_name": "Conv2D", "config": {"filters": 8, "kernel_size": 3, "activation": "silu"}}
    c = _case(spec, (2, 9, 9, 24))
    m = cases.materialize(c, "bfloat16")
    outs = {p: emulation.honest(c.spec, m.inputs, m.weights, "bfloat16", p) for p in emulation.PLACEMENTS}
    assert not np.array_equal(outs["fused"], outs["conv_then_bias"])
    assert not np.array_equal(outs["conv_then_bias"], outs["op_by_op"])


# ------------------------------------------------------------------ power

@pytest.mark.parametrize("dtype", LOW)
def test_the_strict_class_catches_four_unit_roundoffs_at_the_largest_element(dtype):
    u = tolerance.unit_roundoff(dtype)
    ratios = []
    for c in _networks_subset(every=53):
        m = cases.materialize(c, dtype)
        y = np.abs(m.expected_output)
        big = np.unravel_index(np.argmax(y), y.shape)
        ratios.append(m.strict_output[big] / y[big] / u)
        assert m.allowed_output[big] >= m.strict_output[big]  # never looser than the rigorous bound here
    assert np.median(ratios) <= 4.0


def test_rigorous_and_probabilistic_bounds_are_unchanged_by_the_strict_class():
    spec = reference.normalize({"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3}})
    c = cases.make_case(spec, (1, 7, 7, 16), "valid")
    m = cases.materialize(c, "float16")
    modes = tolerance.allowed_errors_modes(c.spec, m.inputs, m.weights, m.output_grad, "float16")
    np.testing.assert_array_equal(m.allowed_output, modes["rigorous"][0])
    assert np.all(m.strict_output < modes["probabilistic"][0])
    m32 = cases.materialize(c, "float32")  # no low-precision class at float32: the probabilistic bound
    np.testing.assert_array_equal(m32.strict_output,
                                  tolerance.allowed_errors_modes(c.spec, m32.inputs, m32.weights, m32.output_grad,
                                                                 "float32")["probabilistic"][0])


# ------------------------------------------------------------------ mutants, through the scoring path

class _Emulated:
    """An adapter returning ``produce(spec, inputs, weights, dtype)`` in the case dtype (no vjp)."""

    name = "emulated"

    def __init__(self, produce):
        self.produce = produce

    def forward(self, spec, inputs, weights):
        dtype = str(np.asarray(inputs).dtype)
        x = np.asarray(inputs).astype(np.float64)
        w = {k: np.asarray(v).astype(np.float64) for k, v in weights.items()}
        return self.produce(spec, x, w, dtype).astype(emulation.NUMPY_DTYPES[dtype])


_CONV = {"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 3}}
_SHAPE = (2, 9, 9, 64)  # 576 products and the bias per element


def _scored(produce, dtype, spec=_CONV, shape=_SHAPE):
    c = _case(spec, shape)
    m = cases.materialize(c, dtype)
    return check(_Emulated(produce), c, m, dtype), m


@pytest.mark.parametrize("dtype", LOW)
def test_an_honest_adapter_passes_through_the_scoring_path(dtype):
    result, _ = _scored(lambda s, x, w, d: emulation.honest(s, x, w, d, "conv_then_bias"), dtype)
    assert result.verdicts["output"] == "pass" and result.strict_ratio["output"] <= 1
    assert "accumulates below float32" not in result.message


@pytest.mark.parametrize("dtype", LOW)
def test_accumulation_in_the_dtype_is_caught(dtype):
    result, _ = _scored(emulation.accumulated_in_dtype, dtype)
    assert result.verdicts["output"] in ("quality_warning", "fail")
    assert result.strict_ratio["output"] > 1
    assert "accumulates below float32" in result.message


@pytest.mark.parametrize("dtype", LOW)
def test_partial_sums_rounded_to_the_dtype_are_caught(dtype):
    result, _ = _scored(lambda s, x, w, d: emulation.split_rounded(s, x, w, d, parts=4), dtype)
    assert result.verdicts["output"] in ("quality_warning", "fail")
    assert result.strict_ratio["output"] > 1


def test_flushing_float16_subnormals_is_caught():
    spec = {"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 3, "activation": "sigmoid"}}

    def flushed(s, x, w, d):
        return emulation.flush_subnormals(emulation.honest(s, x, w, d, "conv_then_bias"), d)

    result, m = _scored(flushed, "float16", spec)
    assert np.any((np.abs(m.expected_output) < 6.1e-5) & (m.expected_output != 0))  # the case reaches them
    assert result.verdicts["output"] in ("quality_warning", "fail")
    assert result.strict_ratio["output"] > 1
    honest, _ = _scored(lambda s, x, w, d: emulation.honest(s, x, w, d, "conv_then_bias"), "float16", spec)
    assert honest.verdicts["output"] == "pass"


# ------------------------------------------------------------------ error against the output's rounding

def test_two_honest_adapters_that_round_differently_show_different_figures():
    c = _case({"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 3}}, _SHAPE)
    m = cases.materialize(c, "bfloat16")
    once = precision.rounding_error(emulation.honest(c.spec, m.inputs, m.weights, "bfloat16", "fused"),
                                    m.expected_output, "bfloat16")
    twice = precision.rounding_error(emulation.honest(c.spec, m.inputs, m.weights, "bfloat16", "conv_then_bias"),
                                     m.expected_output, "bfloat16")
    assert once.bits_lost < 0.05 and once.worst_u <= 1.0  # correctly rounded (to float32's accuracy)
    assert 0.2 < twice.bits_lost < precision.ACCUMULATION_BITS and twice.worst_u > once.worst_u
    assert twice.median_u > once.median_u
    mutant = precision.rounding_error(emulation.accumulated_in_dtype(c.spec, m.inputs, m.weights, "bfloat16"),
                                      m.expected_output, "bfloat16")
    assert mutant.bits_lost > precision.ACCUMULATION_BITS


def test_rounding_error_of_the_correctly_rounded_result_is_zero_bits():
    e = np.linspace(-3, 3, 101) * (1 + 2.0 ** -20)
    r = precision.rounding_error(emulation.rnd(e, "float16"), e, "float16")
    assert r.bits_lost == 0.0 and r.worst_u <= 1.0
    assert precision.rounding_error(np.full(3, np.nan), np.ones(3), "float16") is None


def test_the_report_records_the_error_against_rounding_per_case_and_per_run(tmp_path):
    import json

    from conv_conformance.conformance.report import ReportWriter

    c = _case({"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 3}}, _SHAPE)
    c = dataclasses.replace(c, gradient=False)
    m = cases.materialize(c, "bfloat16")
    writer = ReportWriter(tmp_path, {"profile": "smoke", "dtype": "bfloat16"})
    for i, placement in enumerate(("fused", "conv_then_bias")):
        adapter = _Emulated(lambda s, x, w, d, p=placement: emulation.honest(s, x, w, d, p))
        writer.add(i, check(adapter, c, m, "bfloat16"))
    summary = writer.finish()["precision"]
    records = [r["precision"] for r in json.loads((tmp_path / "report.json").read_text())["cases"]]
    assert records[0]["bits_lost"] < 0.05 < 0.2 < records[1]["bits_lost"]
    assert records[0]["worst_u"] <= 1.0 < records[1]["worst_u"]
    assert summary["worst_u"] == records[1]["worst_u"] and summary["max_bits_lost"] == records[1]["bits_lost"]
    assert summary["median_u"] == pytest.approx((records[0]["median_u"] + records[1]["median_u"]) / 2, abs=1e-3)

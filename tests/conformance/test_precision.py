"""Effective precision (conformance.precision): low-precision arithmetic is caught at float32,
an honest float32 implementation is not (the false-alarm rate, measured here)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance import precision
from conv_conformance.conformance.scoring import check
from conv_conformance.oracle import cases


def _round_bf16(a: np.ndarray) -> np.ndarray:
    bits = np.asarray(a, dtype=np.float32).view(np.uint32)
    bits = (bits + np.uint32(0x7FFF) + ((bits >> 16) & 1)) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


def _round_tf32(a: np.ndarray) -> np.ndarray:
    """float32 rounded to TF32's 10 stored mantissa bits (11 with the implicit one), to nearest even."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32)
    bits = (bits + np.uint32(0xFFF) + ((bits >> 13) & 1)) & np.uint32(0xFFFFE000)
    return bits.view(np.float32)


class _SequentialConv2D:
    """Conv2D, 'valid', stride 1, channels_last, linear activation: every output element summed
    term by term (the worst order for the error) in float32, with the products or the partial
    sums passed through ``products`` / ``accumulate`` (float32 by default: an honest adapter)."""

    name = "sequential"

    def __init__(self, products=np.float32, accumulate=np.float32):
        self.products, self.accumulate = products, accumulate

    def forward(self, spec, inputs, weights):
        x, w = np.asarray(inputs, np.float32), np.asarray(weights["kernel"], np.float32)
        kh, kw, c, f = w.shape
        n, h, wd, _ = x.shape
        acc = np.zeros((n, h - kh + 1, wd - kw + 1, f), np.float32)
        for a in range(kh):
            for b in range(kw):
                for ch in range(c):
                    term = self.products(x[:, a:a + h - kh + 1, b:b + wd - kw + 1, ch, None] * w[a, b, ch])
                    acc = self.accumulate(acc + term)
        if "bias" in weights:
            acc = self.accumulate(acc + np.asarray(weights["bias"], np.float32))
        return acc


def _case(channels: int, filters: int = 8, size: int = 10, bias: bool = True) -> cases.Case:
    spec = reference.normalize({"class_name": "Conv2D", "config": {"filters": filters, "kernel_size": 3,
                                                                   "use_bias": bias}})
    return cases.make_case(spec, (1, size, size, channels), "valid")


def _forward_only(case: cases.Case) -> cases.Case:
    return cases.Case(**{**case.__dict__, "gradient": False})


@pytest.mark.parametrize("channels", [3, 32, 128])
def test_bfloat16_accumulation_is_caught_at_float32(channels):
    case = _forward_only(_case(channels))
    m = cases.materialize(case, "float32")
    result = check(_SequentialConv2D(accumulate=_round_bf16), case, m, "float32")
    assert result.verdicts["output"] == "fail", result.message
    assert result.precision["short"] and 7 < result.precision["bits"] < 10  # about 8 - log2(sqrt 6) / ...


def test_tf32_products_are_caught_at_float32():
    case = _forward_only(_case(64))
    result = check(_SequentialConv2D(products=_round_tf32), case, cases.materialize(case, "float32"), "float32")
    assert result.verdicts["output"] == "fail", result.message
    assert 11 <= result.precision["bits"] < 24 - precision.MARGIN_BITS
    # every element is within the rigorous bound: only the effective precision sees it
    assert result.worst_ratio["output"] <= 1.0
    assert "bits of precision" in result.message


def test_the_reference_and_honest_float32_pass_with_their_precision_recorded():
    case = _forward_only(_case(32))
    m = cases.materialize(case, "float32")
    honest = check(_SequentialConv2D(), case, m, "float32")
    assert honest.verdicts["output"] == "pass", honest.message
    assert 23 <= honest.precision["bits"] <= 27 and not honest.precision["short"]
    assert honest.to_json()["precision"] == honest.precision
    from conv_conformance.conformance.adapters.reference import ReferenceAdapter

    exact = check(ReferenceAdapter(), case, m, "float32")  # float64 result: rounded inputs only
    assert exact.verdicts["output"] == "pass"
    assert exact.precision["bits"] is None or exact.precision["bits"] > 30  # None: every element exact


def test_false_alarm_rate_of_honest_float32_recursive_summation():
    """The worst honest order (recursive, term by term) over 60 cases of different sizes: the
    estimate stays within a bit of 24 (the model's u / sqrt(6) per element); the check fails
    only below 24 - MARGIN_BITS = 20, 16 times the model's RMS error over a whole case."""
    bits = []
    for k in range(60):
        case = _forward_only(_case(channels=1 + 7 * (k % 12), filters=1 + k % 5, size=5 + k % 4, bias=k % 2 == 0))
        m = cases.materialize(case, "float32")
        est = precision.effective_precision(_SequentialConv2D().forward(case.spec, m.inputs, m.weights),
                                            m.expected_output, m.output_scale, "float32")
        if est is not None:
            bits.append(est.bits)
    assert len(bits) >= 40
    assert min(bits) > 24 - precision.MARGIN_BITS + 2, min(bits)
    assert 23 < float(np.median(bits)) < 26, np.median(bits)


def test_no_estimate_without_sums_or_with_too_few_elements():
    e = np.ones(100)
    assert precision.effective_precision(e, e, None, "float32") is None
    assert precision.effective_precision(e[:4], e[:4], np.ones(4), "float32") is None
    exact = precision.effective_precision(e, e, np.ones(100), "float32")
    assert math.isinf(exact.bits) and not exact.short and exact.to_json()["bits"] is None
    off = precision.effective_precision(e + 2.0 ** -10, e, np.ones(100), "float32")
    assert off.short and abs(off.bits - (10 - math.log2(math.sqrt(6)))) < 1e-9


def test_the_report_records_precision_per_case_and_per_adapter(tmp_path):
    import json

    from conv_conformance.conformance.report import ReportWriter

    case = _forward_only(_case(16))
    m = cases.materialize(case, "float32")
    writer = ReportWriter(tmp_path, {"profile": "smoke", "dtype": "float32"})
    writer.add(0, check(_SequentialConv2D(), case, m, "float32"))
    writer.add(1, check(_SequentialConv2D(accumulate=_round_bf16), case, m, "float32"))
    summary = writer.finish()
    assert summary["precision"]["cases"] == 2 and summary["precision"]["short"] == 1
    assert 7 < summary["precision"]["min_bits"] < 10
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["precision"]["short"] for c in report["cases"]] == [False, True]

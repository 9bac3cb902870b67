"""Baseline comparison (reports.compare) on hand-built and real pairs of runs."""
from __future__ import annotations

import copy

import pytest

from conv_conformance.reports.compare import CompareError, compare, render
from tests.reports import builders


def _pair(verdict_base, verdict_new, ratio_base=0.1, ratio_new=0.1):
    def run(v, r):
        return builders.report([builders.case("Conv2D-1", builders.conv2d(), {"output": v},
                                              ratios={"output": r})])
    return compare(run(verdict_base, ratio_base), run(verdict_new, ratio_new))


@pytest.mark.parametrize("base, new, bucket, regression", [
    ("pass", "fail", "newly_failing", True),
    ("unsupported", "fail", "newly_failing", True),
    ("pass", "error", "newly_erroring", True),
    ("fail", "crash", "newly_erroring", True),
    ("pass", "unsupported", "newly_unsupported", True),
    ("fail", "pass", "newly_passing", False),
    ("error", "fail", "other_changes", False),
    ("fail", "unsupported", "other_changes", False),
    ("quality_warning", "fail", "newly_failing", True),
    ("waived", "fail", "newly_failing", True),
    ("pass", "quality_warning", "other_changes", False),
    ("fail", "waived", "other_changes", False),
])
def test_verdict_transitions(base, new, bucket, regression):
    result = _pair(base, new)
    assert [c.case_id for c in getattr(result, bucket)] == ["Conv2D-1"]
    assert (result.regressions > 0) is regression


@pytest.mark.parametrize("rb, rn, worse, better", [
    (0.2, 0.9, True, False),      # x4.5 and above 0.5
    (0.2, 0.45, False, False),    # x2.25 but still under 0.5
    (0.4, 0.7, False, False),     # above 0.5 but only x1.75
    (0.0, 0.6, True, False),
    (0.9, 0.1, False, True),
    (0.1, "nan", True, False),
    (0.3, "inf", True, False),
    ("inf", "inf", False, False),  # unchanged, though infinite
    ("inf", 0.3, False, True),
])
def test_ratio_changes(rb, rn, worse, better):
    result = _pair("pass", "pass", rb, rn)
    assert bool(result.ratio_worse) is worse and bool(result.ratio_better) is better
    assert (result.regressions == 1) is worse


def test_threshold_is_configurable():
    assert _pair("pass", "pass", 0.4, 0.7).ratio_worse == []
    r = builders.report([builders.case("a", builders.conv2d(), {"output": "pass"}, ratios={"output": 0.4})])
    s = builders.report([builders.case("a", builders.conv2d(), {"output": "pass"}, ratios={"output": 0.7})])
    assert len(compare(r, s, threshold=1.5).ratio_worse) == 1
    with pytest.raises(CompareError, match="factor > 1"):
        compare(r, s, threshold=1.0)


def test_same_run_twice_has_no_changes(mixed):
    result = compare(mixed, copy.deepcopy(mixed))
    assert result.regressions == 0 and result.compared == len(mixed["cases"])
    assert "✅ no regressions" in render(result)


def test_hand_built_pair(clean, mixed):
    result = compare(clean, mixed)
    assert {c.case_id for c in result.newly_failing} == {"Conv2D-000000000007", "Conv2D-000000000008",
                                                          "Conv2D-inv000000001"}
    assert {c.case_id for c in result.newly_erroring} == {f"Conv2D-e{i:011x}" for i in range(3)}
    assert result.regressions == 7
    text = render(result)
    assert text.startswith("## conv-conformance compare: ❌ 7 regressions")
    assert "| newly failing | 3 | yes |" in text
    back = compare(mixed, clean)
    assert back.regressions == 0 and len({c.case_id for c in back.newly_passing}) == 7


def test_corpus_ids_must_match(clean, mixed):
    other = builders.report(builders.mixed_cases()[:5], corpus_id="corpus-bbbb")
    with pytest.raises(CompareError, match="different case sets.*corpus-aaaa.*corpus-bbbb.*--shared-only"):
        compare(clean, other)
    result = compare(clean, other, shared_only=True)
    assert result.compared == 5 and result.regressions == 0


def test_missing_cases_are_regressions(clean):
    fewer = copy.deepcopy(clean)
    dropped = fewer["cases"].pop()["id"]
    result = compare(clean, fewer)
    assert result.missing == [dropped] and result.regressions == 1
    assert compare(clean, fewer, shared_only=True).regressions == 0


def test_real_pairs(real):
    ref, wrong, mixed = real["reference"], real["wrong"], real["mixed"]
    assert compare(ref, ref).regressions == 0
    broke = compare(ref, wrong)
    assert broke.regressions > 0
    # every valid case's output fails with WrongValues (but on an empty batch: no values); nothing else changes
    valid = {c["id"] for c in ref["cases"] if c["kind"] == "valid" and c["input_shape"][0] != 0}
    assert {c.case_id for c in broke.newly_failing} == valid
    assert {c.category for c in broke.newly_failing} == {"output"}
    fixed = compare(mixed, ref)
    assert fixed.regressions == 0 and fixed.newly_passing

"""The pytest plugin, run in a fresh pytest process (pytester)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conv_conformance.oracle.cases import case_set
from tests.conformance.conftest import BROKEN

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tester(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_own="def test_own():\n    assert 1 + 1 == 2\n")
    return pytester


def test_without_an_adapter_the_plugin_adds_nothing(tester):
    result = tester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == 0
    assert [line for line in result.outlines if "::" in line] == ["test_own.py::test_own"]


def test_cases_are_items_with_stable_ids(tester):
    cases = case_set("smoke", layers=["Conv1D", "Cropping1D"])
    result = tester.runpytest_subprocess("--conv-adapter=reference", "--conv-layers=Conv1D,Cropping1D",
                                         "--collect-only", "-q")
    ids = [line for line in result.outlines if line.startswith("conv-conformance::")]
    assert ids == [f"conv-conformance::{c.id}" for c in cases]
    run = tester.runpytest_subprocess("--conv-adapter=reference", "--conv-layers=Conv1D,Cropping1D",
                                      "-k", "Conv1D")
    run.assert_outcomes(passed=sum(c.layer == "Conv1D" for c in cases) + 0, deselected=
                        sum(c.layer != "Conv1D" for c in cases) + 1)


def test_failures_in_parallel_with_junit(tester):
    cases = case_set("smoke", layers=["ZeroPadding1D"])
    wrong = {c.id for c in cases if c.kind == "valid" and c.input_shape[0] > 0}  # an empty batch has no values
    result = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:WrongValues", "--conv-layers=ZeroPadding1D",
                                         "-n", "2", "--junitxml=junit.xml", "--conv-dtype=float64")
    result.assert_outcomes(passed=len(cases) - len(wrong) + 1, failed=len(wrong))
    assert "out differs from the reference beyond the allowed error" in result.stdout.str()
    tree = ET.parse(tester.path / "junit.xml")
    testcases = tree.getroot().iter("testcase")
    failed = {tc.get("name") for tc in testcases if tc.find("failure") is not None}
    assert failed == wrong


def test_unsupported_cases_are_skipped(tester):
    cases = case_set("smoke", layers=["Cropping2D"])
    result = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:Declines", "--conv-layers=Cropping2D")
    result.assert_outcomes(passed=1, skipped=len(cases))


@pytest.mark.parametrize("args, text", [(["--conv-adapter=mylib"], "Unknown adapter 'mylib'"),
                                        (["--conv-adapter=reference", "--conv-layers=Conv4D"],
                                         "Received: Conv4D")])
def test_unknown_adapter_or_layer_is_a_usage_error(tester, args, text):
    result = tester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert text in result.stderr.str()


def test_conv_adapter_fixture(tester):
    tester.makepyfile(test_fixture="def test_it(conv_adapter, conv_dtype):\n"
                                   "    assert conv_adapter.name == 'reference' and conv_dtype == 'float16'\n")
    result = tester.runpytest_subprocess("--conv-adapter=reference", "--conv-dtype=float16",
                                         "--conv-layers=Cropping1D", "test_fixture.py", "-k", "test_it")
    result.assert_outcomes(passed=1, deselected=len(case_set("smoke", layers=["Cropping1D"])))


def test_hangs_time_out_and_crashes_stay_in_their_worker(tester):
    """Per-case timeout from pytest-timeout; with -n, a case that kills its process fails alone
    (pytest-xdist replaces the worker) and the other cases still run."""
    pytest.importorskip("pytest_timeout")
    cases = case_set("smoke", layers=["Cropping1D", "ZeroPadding1D"])
    hanging = sum(c.layer == "Cropping1D" for c in cases)  # valid or not, its forward never returns
    result = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:Hangs", "--conv-layers=Cropping1D,ZeroPadding1D",
                                         "--timeout=2")
    result.assert_outcomes(passed=len(cases) - hanging + 1, failed=hanging)
    assert "Timeout" in result.stdout.str()
    crashed = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:Exits", "--conv-layers=Cropping1D,ZeroPadding1D",
                                          "-n", "2")
    outcomes = crashed.parseoutcomes()
    assert outcomes.get("failed") == hanging
    assert outcomes.get("passed") == len(cases) - hanging + 1

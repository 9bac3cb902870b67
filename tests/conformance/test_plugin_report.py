"""``pytest --conv-report DIR``: the same report.json as ``conv-conformance run``, assembled in the
controlling pytest process from what the (xdist) workers send back, and the same verdicts as the CLI
case for case. Each run is a fresh pytest process (pytester)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conv_conformance.cli import main as cli_main
from conv_conformance.conformance.pytest_plugin.worker import decode, encode
from conv_conformance.conformance.record import CaseResult
from conv_conformance.oracle.cases import case_set, corpus_id
from tests.conformance.conftest import BROKEN

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
CHEAP = ["Cropping1D", "ZeroPadding1D"]  # Cropping1D is where the conditional broken adapters misbehave


@pytest.fixture
def tester(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytester


def _load(path: Path) -> dict:
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in report"))


def _verdicts(report: dict) -> dict[str, dict[str, str]]:
    return {c["id"]: c["verdicts"] for c in report["cases"]}


def test_records_survive_the_report_channel_with_infinite_ratios():
    result = CaseResult(id="Conv1D-x", layer="Conv1D", spec={"class_name": "Conv1D", "config": {}},
                        input_shape=[1, 4, 2], kind="valid", dtype="float32",
                        verdicts={"shape": "pass", "output": "fail"}, worst_ratio={"output": math.inf},
                        message="m", seconds=0.5)
    back = decode(encode(result))
    assert back == result and back.worst_ratio["output"] == math.inf


def test_report_from_xdist_workers_is_the_cli_report(tester, tmp_path, validate_report):
    """WrongValues in float64 over -n 2: schema-valid, corpus id of the case set, the adapter's name and
    environment from the workers, and the CLI's verdicts, ratios and summary for every case."""
    cases = case_set("smoke", layers=CHEAP)
    result = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:WrongValues", f"--conv-layers={','.join(CHEAP)}",
                                         "--conv-dtype=float64", "-n", "2", "--conv-report=out", "-p", "no:cacheprovider")
    # WrongValues shifts every output element: every valid case with a non-empty output fails
    wrong = {c.id for c in cases if c.kind == "valid" and 0 not in c.input_shape}
    valid = len(wrong)
    result.assert_outcomes(passed=len(cases) - valid, failed=valid)
    assert "NOT CONFORMANT" in result.stdout.str() and "report: out/report.json" in result.stdout.str()
    report = _load(tester.path / "out" / "report.json")
    validate_report(report)
    assert not (tester.path / "out" / "report.partial.jsonl").exists()
    assert report["corpus_id"] == corpus_id(cases) and report["profile"] == "smoke"
    assert report["dtype"] == "float64" and report["jobs"] == 2 and report["interrupted"] is False
    assert report["adapter"]["name"] == "wrong-values" and report["adapter"]["target"] == f"{BROKEN}:WrongValues"
    assert report["environment"]["cpu"]["isa"] and "numpy" in report["environment"]
    assert [c["id"] for c in report["cases"]] == [c.id for c in cases]  # case-set order, not arrival order
    failing = {c["id"] for c in report["cases"] if c["verdicts"].get("output") == "fail"}
    assert failing == wrong
    assert report["summary"]["conformant"] is False and report["summary"]["by_category"]["output"]["fail"] == valid

    assert cli_main(["run", "--adapter", f"{BROKEN}:WrongValues", "--layers", ",".join(CHEAP), "--dtype", "float64",
                     "--out", str(tmp_path)]) == 1
    cli = _load(tmp_path / "report.json")
    assert _verdicts(report) == _verdicts(cli)
    assert {c["id"]: c["worst_ratio"] for c in report["cases"]} == {c["id"]: c["worst_ratio"] for c in cli["cases"]}
    assert report["summary"]["counts"] == cli["summary"]["counts"]
    assert report["summary"]["by_category"] == cli["summary"]["by_category"]


def test_a_dead_xdist_worker_is_a_crash_and_the_other_cases_still_count(tester, validate_report):
    cases = case_set("smoke", layers=CHEAP)
    result = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:Exits", f"--conv-layers={','.join(CHEAP)}",
                                         "-n", "2", "--conv-report=out", "-p", "no:cacheprovider")
    crashed = {c.id for c in cases if c.layer == "Cropping1D"}
    assert result.parseoutcomes().get("failed") == len(crashed)
    report = _load(tester.path / "out" / "report.json")
    validate_report(report)
    assert report["summary"]["cases"] == len(cases) and report["interrupted"] is False
    by_id = {c["id"]: c for c in report["cases"]}
    for case in cases:
        verdicts = set(by_id[case.id]["verdicts"].values())
        assert verdicts == ({"crash"} if case.id in crashed else {"pass"}), case.id
    crash = by_id[sorted(crashed)[0]]
    assert "pytest-xdist worker" in crash["message"] and "died while running this case" in crash["message"]
    assert report["summary"]["counts"]["crash"] == len(crashed)


def test_a_pytest_timeout_expiry_is_a_timeout_and_a_partial_run_claims_nothing(tester, validate_report):
    """pytest-timeout stops a hanging case: timeout verdict. -k selects part of the case set: the report
    holds the cases that ran and is marked interrupted, never conformant."""
    pytest.importorskip("pytest_timeout")
    cases = case_set("smoke", layers=CHEAP)
    hang = next(c for c in cases if c.layer == "Cropping1D" and c.kind == "valid")
    result = tester.runpytest_subprocess(f"--conv-adapter={BROKEN}:Hangs", f"--conv-layers={','.join(CHEAP)}",
                                         "--timeout=1", "-k", f"ZeroPadding1D or {hang.id}", "--conv-report=out",
                                         "-p", "no:cacheprovider")
    zero = [c for c in cases if c.layer == "ZeroPadding1D"]
    result.assert_outcomes(passed=len(zero), failed=1, deselected=len(cases) - len(zero) - 1)
    assert f"PARTIAL ({len(zero) + 1} of {len(cases)} cases scored)" in result.stdout.str()
    report = _load(tester.path / "out" / "report.json")
    validate_report(report)
    assert report["timeout"] == 1.0 and report["interrupted"] is True and report["summary"]["conformant"] is False
    by_id = {c["id"]: c for c in report["cases"]}
    assert set(by_id) == {hang.id} | {c.id for c in zero}
    assert set(by_id[hang.id]["verdicts"].values()) == {"timeout"}
    assert "Timeout (>1.0s) from pytest-timeout" in by_id[hang.id]["message"]
    assert all(set(by_id[c.id]["verdicts"].values()) == {"pass"} for c in zero)


def test_a_conforming_adapter_in_one_process_is_conformant(tester, validate_report):
    cases = case_set("smoke", layers=CHEAP)
    result = tester.runpytest_subprocess("--conv-adapter=reference", f"--conv-layers={','.join(CHEAP)}",
                                         "--conv-report=out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(cases))
    report = _load(tester.path / "out" / "report.json")
    validate_report(report)
    assert report["summary"]["conformant"] is True and report["jobs"] == 1 and report["timeout"] is None
    assert report["threads_per_job"] is None  # the plugin leaves the libraries' thread defaults alone
    assert report["summary"]["counts"]["pass"] == len(cases)


def test_conv_report_without_an_adapter_is_a_usage_error(tester):
    result = tester.runpytest_subprocess("--conv-report=out", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conv-report needs --conv-adapter" in result.stderr.str()
    assert not (tester.path / "out").exists()


DECLARED = "tests.conformance.fixtures.declared"


def _waiver(**over) -> dict:
    return {"id": "CC-1", "cases": ["Conv1D-*"], "reason": "known 1% scale error", "link": "https://example.org/1",
            "expires": "9.0.0", "match": {"adapter": "bad"}, **over}


def test_waivers_in_the_plugin_as_in_the_cli(tester, validate_report):
    """--conv-waivers: the covered failing cases are xfailed (waived), in xdist workers too, and the
    report holds the CLI's waived verdicts, waiver records and summary (applied list, warnings)."""
    (tester.path / "w.json").write_text(json.dumps({"waiver": [_waiver(), _waiver(id="CC-2", cases=["None-*"])]}))
    layers = "Conv1D,Cropping1D"
    assert cli_main(["run", "--adapter", f"{DECLARED}:Bad", "--layers", layers, "--out", str(tester.path / "cli"),
                     "--waivers", str(tester.path / "w.json")]) == 0
    cli = _load(tester.path / "cli" / "report.json")
    waived = [c["id"] for c in cli["cases"] if c["verdicts"].get("output") == "waived"]
    assert waived  # the premise: Bad fails these Conv1D cases
    result = tester.runpytest_subprocess(f"--conv-adapter={DECLARED}:Bad", f"--conv-layers={layers}", "-n", "2",
                                         "--conv-waivers=w.json", "--conv-report=out", "-p", "no:cacheprovider", "-rx")
    result.assert_outcomes(passed=len(cli["cases"]) - len(waived), xfailed=len(waived))
    assert "waived by CC-1 (https://example.org/1)" in result.stdout.str()
    report = _load(tester.path / "out" / "report.json")
    validate_report(report)
    assert _verdicts(report) == _verdicts(cli)
    assert {c["id"]: c.get("waiver") for c in report["cases"]} == {c["id"]: c.get("waiver") for c in cli["cases"]}
    assert sorted(report["summary"]["waivers"]["applied"][0]["cases"]) == sorted(waived)
    assert report["summary"]["waivers"]["warnings"] == cli["summary"]["waivers"]["warnings"] != []
    assert report["summary"]["conformant"] is True


@pytest.mark.parametrize("args, text", [
    (["--conv-waivers=w.json"], "--conv-waivers needs --conv-adapter"),
    (["--conv-adapter=reference", "--conv-waivers=missing.json"], "cannot read waiver file"),
    (["--conv-adapter=reference", "--conv-waivers=w.json"], "expired")])
def test_a_bad_waiver_option_is_a_usage_error(tester, args, text):
    (tester.path / "w.json").write_text(json.dumps({"waiver": [_waiver(expires="0.0.1")]}))
    result = tester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert text in result.stderr.str()

"""The environment a verdict depends on: detected, recorded in report.json, compared between
runs; nondeterministic results as their own verdict; exception summaries that name the cause."""
from __future__ import annotations

import json
import sys

import pytest

from conv_conformance.conformance import environment
from conv_conformance.cli import main
from conv_conformance.conformance.calls import summarize_exception
from conv_conformance.conformance.scoring import check
from conv_conformance.oracle.cases import materialize
from tests.conformance.conftest import BROKEN
from tests.conformance.fixtures import broken


def test_detect_records_the_cpu_and_only_imported_frameworks(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    env = environment.detect({"runtime": "mine 1.0"})
    assert set(env["cpu"]) == {"vendor", "model", "cores", "isa"} and int(env["cpu"]["cores"]) >= 1
    assert env["knobs"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["adapter"] == {"runtime": "mine 1.0"}
    assert ("tensorflow" in env) == ("tensorflow" in sys.modules)
    flat = environment.flatten(env)
    assert flat["cpu.vendor"] == env["cpu"]["vendor"] and flat["adapter.runtime"] == "mine 1.0"


@pytest.mark.parametrize("flags, cap, expected", [
    ("sse4_2,avx,avx2,fma,avx512f", None, "avx512"),
    ("sse4_2,avx,avx2,fma,avx512f", "AVX2", "avx2"),
    ("sse4_2,avx,avx2,fma,avx512f", "avx512_core_amx", "avx512"),
    ("sse4_2,avx,avx2,fma", None, "avx2"),
    ("sse4_2,avx,avx2,fma", "AVX512_CORE", "avx2"),  # a cap never raises the ISA
    ("sse4_2", None, "sse41"),
    ("sse4_2,avx,avx2,fma,avx512f", "SSE41", "sse41"),
])
def test_onednn_isa_is_the_cpu_capped_by_onednn_max_cpu_isa(monkeypatch, flags, cap, expected):
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    assert environment.onednn_isa({"isa": flags}) == expected


def test_report_json_records_the_workers_environment(tmp_path, validate_report, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert main(["run", "--adapter", "reference", "--layers", "Cropping1D", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    env = report["environment"]
    assert env["cpu"] == environment.cpu_info()
    assert env["knobs"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"  # the worker's, which inherits the variable
    assert env["knobs"]["OMP_NUM_THREADS"] == "1"        # the harness's thread limit, set in the worker
    from conv_conformance.reports import html, markdown

    assert "oneDNN ISA avx2" in markdown.render(report)
    assert 'id="environment"' in html.render(report) and "ONEDNN_MAX_CPU_ISA=AVX2" in html.render(report)


def _report_with(env: dict) -> dict:
    return {"environment": env}


def test_compare_warns_naming_each_deciding_field_that_differs():
    from conv_conformance.reports import environment_differences

    base = {"cpu": {"vendor": "GenuineIntel", "isa": "avx2,avx512f"}, "onednn_isa": "avx512",
            "tensorflow": {"version": "2.21.0", "onednn": "True"}, "knobs": {"OMP_NUM_THREADS": "1"}}
    new = {"cpu": {"vendor": "AuthenticAMD", "isa": "avx2"}, "onednn_isa": "avx2",
           "tensorflow": {"version": "2.21.0", "onednn": "False"}, "knobs": {"OMP_NUM_THREADS": "2"}}
    fields = [f for f, _, _ in environment_differences(_report_with(base), _report_with(new))]
    assert fields == ["cpu.vendor", "cpu.isa", "onednn_isa", "tensorflow.onednn"]
    assert environment_differences(_report_with(base), _report_with(base)) == []


def test_compare_cli_prints_the_warning(tmp_path, capsys):
    assert main(["run", "--adapter", "reference", "--layers", "Cropping1D", "--out", str(tmp_path / "a")]) == 0
    base = json.loads((tmp_path / "a" / "report.json").read_text())
    new = json.loads(json.dumps(base))
    new["environment"]["tensorflow"] = {"version": "2.21.0", "onednn": "False"}
    base["environment"]["tensorflow"] = {"version": "2.21.0", "onednn": "True"}
    for name, report in (("base.json", base), ("new.json", new)):
        (tmp_path / name).write_text(json.dumps(report))
    from conv_conformance.cli import main as reports_main

    capsys.readouterr()
    assert reports_main(["compare", str(tmp_path / "base.json"), str(tmp_path / "new.json")]) == 0
    out, err = capsys.readouterr()
    assert "warning: the baseline ran with tensorflow.onednn='True', the new run with tensorflow.onednn='False'" \
        in err
    assert "differ in environment fields that decide verdicts" in out


# ---------------------------------------------------------------- nondeterministic

def test_a_wrong_result_that_changes_between_calls_is_nondeterministic(few_cases):
    case = next(c for c in few_cases if c.layer == broken.TARGET and c.kind == "valid")
    result = check(broken.Flaky(), case, materialize(case), "float32")
    assert result.verdicts["output"] == "nondeterministic"
    assert "over 3 identical calls" in result.message


def test_a_repeatable_wrong_result_stays_fail(few_cases):
    case = next(c for c in few_cases if c.layer == broken.TARGET and c.kind == "valid")
    assert check(broken.WrongValues(), case, materialize(case), "float32").verdicts["output"] == "fail"


def test_a_right_result_is_called_once_without_repeat(few_cases):
    case = next(c for c in few_cases if c.layer == "Conv1D" and c.kind == "valid")
    broken.Flaky.calls = 0
    result = check(broken.Flaky(), case, materialize(case), "float32")
    assert result.verdicts["output"] == "pass" and "determinism" not in result.verdicts


def test_repeat_scores_bitwise_determinism(tmp_path, validate_report):
    out = tmp_path / "r"
    status = main(["run", "--adapter", f"{BROKEN}:Jittery", "--layers", "Conv1D", "--repeat", "3",
                   "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    valid = [c for c in report["cases"] if c["kind"] == "valid"]
    assert valid and all(c["verdicts"]["output"] == "pass" for c in valid)
    # an empty batch has no bits to jitter
    assert all(c["verdicts"]["determinism"] == ("fail" if c["input_shape"][0] else "pass") for c in valid)
    assert report["repeat"] == 3 and status == 1


@pytest.mark.parametrize("value", ["1", "0", "x"])
def test_repeat_below_two_is_a_usage_error(value, capsys):
    assert main(["run", "--adapter", "reference", "--repeat", value]) == 2
    assert "--repeat: must be an integer >= 2" in capsys.readouterr().err


# ---------------------------------------------------------------- messages name the cause

def test_summary_of_a_keras_wrapped_tensorflow_error_is_the_cause():
    text = ("Exception encountered when calling Conv2D.call().\n\n"
            "\x1b[1m{{function_node __wrapped__Conv2D_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
            "The Conv2D op currently only supports the NHWC tensor format on the CPU. The op was given the "
            "format: NCHW [Op:Conv2D] name: \x1b[0m\n\nArguments received by Conv2D.call():\n"
            "  \u2022 inputs=tf.Tensor(shape=(2, 3, 6, 5), dtype=float32)")

    class UnimplementedError(Exception):
        pass

    assert summarize_exception(UnimplementedError(text)) == (
        "UnimplementedError: The Conv2D op currently only supports the NHWC tensor format on the CPU. "
        "The op was given the format: NCHW")


def test_summary_of_a_plain_error_is_its_first_line():
    assert summarize_exception(ValueError("bad kernel\nmore")) == "ValueError: bad kernel"
    assert summarize_exception(RuntimeError()) == "RuntimeError"

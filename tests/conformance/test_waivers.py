"""Waiver files (conformance.waivers): validation, matching conditions, waived verdicts, warnings."""
from __future__ import annotations

import json

import pytest

from conv_conformance.cli import main
from conv_conformance.conformance.record import CaseResult
from conv_conformance.conformance.waivers import WaiverError, WaiverSet, load, parse

DECLARED = "tests.conformance.fixtures.declared"


def entry(**over):
    base = {"id": "CC-7", "cases": ["Conv2D-*"], "reason": "suite fault: wrong expected value",
            "link": "https://example.org/7", "expires": "0.2.0", "match": {"adapter": "mylib"}}
    base.update(over)
    return base


@pytest.mark.parametrize("bad, words", [
    ({"id": "CC-7"}, "has no `cases`"),
    (entry(link="see the wiki"), "http"),
    (entry(expires="0.1.0"), "expired"),
    (entry(expires="soon"), "suite version"),
    (entry(reason=" "), "reason"),
    (entry(match={"versions": {"torch": ">=2"}}), "adapter"),
    (entry(match={"adapter": "x", "versions": {"torch": "two"}}), "version range"),
    (entry(categories=["speed"]), "categories"),
    (entry(colour="red"), "unknown keys"),
])
def test_malformed_or_expired_waivers_are_errors(bad, words):
    with pytest.raises(WaiverError, match=words):
        parse({"waiver": [bad]}, "0.1.0")


def test_duplicate_ids_are_an_error():
    with pytest.raises(WaiverError, match="unique"):
        parse({"waiver": [entry(), entry()]}, "0.1.0")


def test_conditions_adapter_versions_environment_dtype():
    (w,) = parse({"waiver": [entry(match={"adapter": "mylib", "versions": {"mylib": ">=1.0,<2"},
                                          "environment": {"onednn_isa": "AVX512*", "knobs.TF_ENABLE_ONEDNN_OPTS": "1"},
                                          "dtype": ["float16"]})]}, "0.1.0")
    adapter = {"name": "mylib", "versions": {"mylib": "1.4"}}
    env = {"onednn_isa": "AVX512_CORE_AMX", "knobs": {"TF_ENABLE_ONEDNN_OPTS": "1"}}
    assert w.conditions(adapter, env, "float16") == []
    assert len(w.conditions({"name": "mylib", "versions": {"mylib": "2.0"}}, env, "float16")) == 1
    assert len(w.conditions(adapter, {**env, "onednn_isa": "AVX2"}, "float16")) == 1
    assert len(w.conditions(adapter, {"onednn_isa": "AVX512"}, "float16")) == 1   # knob absent
    assert len(w.conditions(adapter, env, "float32")) == 1
    assert len(w.conditions({"name": "other", "versions": {"mylib": "1.4"}}, env, "float16")) == 1


def _result(case_id, **verdicts):
    return CaseResult(id=case_id, layer=case_id.split("-")[0], spec={}, input_shape=[1], kind="valid",
                      dtype="float32", verdicts=dict(verdicts))


def test_apply_waives_only_failing_covered_categories_and_warns_about_the_rest():
    ws = WaiverSet(parse({"waiver": [entry(categories=["gradient"]), entry(id="CC-8", cases=["Conv3D-*"]),
                                     entry(id="CC-9", match={"adapter": "other"})]}, "0.1.0"))
    ws.bind({"name": "mylib", "versions": {}}, {}, "float32")
    r = _result("Conv2D-1", shape="pass", output="fail", gradient="error")
    ws.apply(r)
    assert r.verdicts == {"shape": "pass", "output": "fail", "gradient": "waived"}
    assert r.waiver == {"id": "CC-7", "link": "https://example.org/7", "waived": {"gradient": "error"}}
    assert r.verdict == "fail"
    untouched = _result("Conv1D-1", output="fail")
    ws.apply(untouched)
    assert untouched.verdicts == {"output": "fail"} and untouched.waiver is None
    summary = ws.summary()
    assert summary["applied"] == [{"id": "CC-7", "link": "https://example.org/7",
                                   "reason": "suite fault: wrong expected value", "cases": ["Conv2D-1"]}]
    warnings = " | ".join(summary["warnings"])
    assert "CC-8 matches nothing: no case id matches Conv3D-*" in warnings
    assert "CC-9 matches nothing: it does not apply to this run" in warnings


def test_toml_and_json_files(tmp_path):
    toml = tmp_path / "w.toml"
    toml.write_text('[[waiver]]\nid = "A"\ncases = "Conv2D-*"\nreason = "r"\nlink = "https://x.org"\n'
                    'expires = "1.0"\n[waiver.match]\nadapter = "a"\n')
    (tmp_path / "w.json").write_text(json.dumps({"waiver": [entry()]}))
    assert load(toml, "0.1.0")[0].cases == ("Conv2D-*",)
    assert load(tmp_path / "w.json", "0.1.0")[0].id == "CC-7"
    (tmp_path / "bad.toml").write_text("[[waiver]\n")
    with pytest.raises(WaiverError, match="not valid TOML"):
        load(tmp_path / "bad.toml", "0.1.0")


def test_run_with_waivers_reports_waived_and_a_bad_file_exits_2(tmp_path, capsys, validate_report):
    waivers = tmp_path / "w.json"
    waivers.write_text(json.dumps({"waiver": [entry(id="CC-1", cases=["Conv1D-*"], match={"adapter": "bad"}),
                                              entry(id="CC-2", cases=["Nothing-*"], match={"adapter": "bad"})]}))
    assert main(["run", "--adapter", f"{DECLARED}:Bad", "--layers", "Conv1D,Cropping1D", "--out", str(tmp_path / "r"),
                 "--waivers", str(waivers)]) == 0
    captured = capsys.readouterr()
    assert "warning: waiver CC-2 matches nothing" in captured.err and "waived by CC-1" in captured.out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    valid = [c for c in report["cases"] if c["layer"] == "Conv1D" and c["kind"] == "valid"]
    conv1d = [c for c in valid if c["verdicts"]["output"] == "waived"]  # an empty output passes as is
    assert conv1d and all(c["verdicts"]["output"] in ("waived", "pass") for c in valid)
    assert all(c["waiver"]["waived"]["output"] == "fail" for c in conv1d)
    assert report["summary"]["counts"]["waived"] == len(conv1d) and report["summary"]["conformant"] is True
    assert report["summary"]["waivers"]["applied"][0]["cases"] == [c["id"] for c in conv1d]
    validate_report(report)
    waivers.write_text(json.dumps({"waiver": [entry(expires="0.0.1")]}))
    assert main(["run", "--adapter", "reference", "--layers", "Cropping1D", "--out", str(tmp_path / "s"),
                 "--waivers", str(waivers)]) == 2
    assert "expired" in capsys.readouterr().err

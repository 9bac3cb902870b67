"""JUnit XML, parsed back with ElementTree."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from conv_conformance.reports import junit
from tests.reports import builders


def _parse(report):
    return ET.fromstring(junit.render(report).encode("utf-8"))


def test_one_testcase_per_case_and_category(mixed):
    root = _parse(mixed)
    cases = root.findall("./testsuite/testcase")
    expected = {(c["layer"], f"{c['id']}[{cat}]") for c in mixed["cases"] for cat in c["verdicts"]}
    assert {(tc.get("classname"), tc.get("name")) for tc in cases} == expected
    assert len(cases) == len(expected) == 37


def test_verdicts_map_to_junit_elements(mixed):
    root = _parse(mixed)
    suite = root.find("testsuite")
    by_name = {tc.get("name"): tc for tc in suite.findall("testcase")}
    fail = by_name["Conv2D-000000000008[output]"].find("failure")
    assert fail is not None and fail.get("message") == "out differs"
    assert "expected 1.5, actual 1.6, allowed error 0.001" in fail.text
    err = by_name["Conv2D-e00000000001[gradient]"].find("error")
    assert err.get("type") == "UnimplementedError" and "dilation 4 not supported" in err.text
    assert by_name["Cropping1D-000000000001[shape]"].find("skipped") is not None
    assert list(by_name["Conv2D-000000000001[output]"]) == []
    # failures: 2 output + 1 error behaviour; errors: 3 cases x 3 categories; skipped: 2
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == \
        ("37", "3", "9", "2")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["corpus_id"] == "corpus-aaaa" and props["conformant"] == "false"
    assert props["version.mylib"] == "1.0"


def test_control_characters_still_parse():
    c = builders.case("Conv2D-x", builders.conv2d(), {"output": "error"},
                      exception={"type": "E", "message": "bad\x00byte \x1b[31mred\x1b[0m"},
                      message="nul\x00 and \x07 bell")
    root = _parse(builders.report([c]))
    err = root.find("./testsuite/testcase/error")
    assert err.get("message") == "nul\ufffd and \ufffd bell"
    assert "bad\ufffdbyte" in err.text


@pytest.mark.parametrize("name", ["reference", "mixed", "wrong"])
def test_real_runs(real, name):
    report = real[name]
    suite = _parse(report).find("testsuite")
    n = sum(len(c["verdicts"]) for c in report["cases"])
    assert int(suite.get("tests")) == len(suite.findall("testcase")) == n
    by_cat = report["summary"]["by_category"]
    assert int(suite.get("failures")) == sum(v["fail"] for v in by_cat.values())
    assert int(suite.get("errors")) == sum(v["error"] + v["timeout"] + v["crash"] for v in by_cat.values())
    assert int(suite.get("skipped")) == sum(v["unsupported"] for v in by_cat.values())


def test_quality_warning_and_waived_pass_with_a_note():
    cases = [builders.case("Conv2D-q", builders.conv2d(), {"shape": "pass", "output": "quality_warning"},
                           ratios={"output": 0.8}, message="out is within the loose precision class"),
             builders.case("Conv2D-w", builders.conv2d(), {"shape": "pass", "output": "waived"})]
    cases[1]["waiver"] = {"id": "CC-3", "link": "https://example.org/3", "waived": {"output": "fail"}}
    suite = _parse(builders.report(cases)).find("testsuite")
    by_name = {tc.get("name"): tc for tc in suite.findall("testcase")}
    quality = by_name["Conv2D-q[output]"]
    assert [el.tag for el in quality] == ["system-out"] and quality[0].text.startswith("quality_warning: out is")
    waived = by_name["Conv2D-w[output]"]
    assert [el.tag for el in waived] == ["system-out"] and "waived by CC-3 (https://example.org/3)" in waived[0].text
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("4", "0", "0", "0")

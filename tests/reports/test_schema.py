"""reports/schema.json: real and hand-built reports validate; broken ones are
refused with the offending field named."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from conv_conformance import reports
from conv_conformance.reports import ReportError


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(reports.schema())
    assert reports.schema()["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("name", ["reference", "mixed", "wrong"])
def test_real_runs_validate(real, name):
    report = real[name]
    assert reports.validate(report) is report
    assert report["summary"]["cases"] == len(report["cases"]) > 0


def test_hand_built_reports_validate(mixed, clean):
    reports.validate(mixed)
    reports.validate(clean)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", 0, 3.5])
def test_ratio_accepts_numbers_and_nonfinite_strings(mixed, value):
    mixed["cases"][0]["worst_ratio"]["output"] = value
    mixed["cases"][0]["worst"]["output"]["actual"] = value
    reports.validate(mixed)


@pytest.mark.parametrize("mutate, field", [
    (lambda r: r["cases"][3]["verdicts"].__setitem__("output", "passed"), "cases[3].verdicts.output"),
    (lambda r: r["cases"][3]["verdicts"].__setitem__("outputs", "pass"), "cases[3].verdicts"),
    (lambda r: r.pop("corpus_id"), "(top level)"),
    (lambda r: r["summary"]["counts"].pop("crash"), "summary.counts"),
    (lambda r: r["cases"][0]["worst_ratio"].__setitem__("output", "Infinity"), "cases[0].worst_ratio.output"),
    (lambda r: r.__setitem__("schema_version", 2), "schema_version"),
    (lambda r: r["cases"][1].__setitem__("kind", "weird"), "cases[1].kind"),
    (lambda r: r.__setitem__("started", "yesterday"), "started"),
])
def test_invalid_reports_name_the_field(mixed, mutate, field):
    bad = copy.deepcopy(mixed)
    mutate(bad)
    with pytest.raises(ReportError) as info:
        reports.validate(bad, source="run.json")
    assert f"field {field}:" in str(info.value)
    assert "run.json is not a valid conv-conformance report" in str(info.value)


def test_load_errors(tmp_path, mixed):
    with pytest.raises(ReportError, match="not found"):
        reports.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ReportError, match="is not JSON"):
        reports.load(tmp_path / "x.json")
    (tmp_path / "ok.json").write_text(json.dumps(mixed))
    assert reports.load(tmp_path / "ok.json")["corpus_id"] == "corpus-aaaa"


def test_real_summary_matches_cases(real):
    """The summary the harness wrote agrees with the per-case verdicts."""
    for report in real.values():
        counts = reports.summarize_counts(report["cases"])
        assert counts == report["summary"]["counts"]

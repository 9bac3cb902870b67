"""The report, scoreboard and compare commands through the real console script."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.reports import builders
from tests.reports.conftest import cli


@pytest.fixture
def saved(tmp_path, mixed, clean):
    paths = {}
    for name, report in {"mixed": mixed, "clean": clean,
                         "other": builders.report(builders.mixed_cases()[:4], corpus_id="corpus-bbbb")}.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(report))
    return paths


def test_report_formats_from_a_real_run(runs, tmp_path):
    run = str(runs["mixed"])
    out = tmp_path / "junit.xml"
    assert cli("report", run, "--format", "junit", "--out", str(out)).returncode == 0
    report = json.loads(runs["mixed"].read_text())
    failing = sum(v in ("fail", "mutation", "nondeterministic") for c in report["cases"] for v in c["verdicts"].values())
    assert failing > 0 and ET.parse(out).getroot().find("testsuite").get("failures") == str(failing)
    md = cli("report", run, "--format", "markdown")
    assert md.returncode == 0 and md.stdout.startswith("## conv-conformance: mixed — ❌ NOT conformant")
    page = tmp_path / "r.html"
    assert cli("report", run, "--format", "html", "--out", str(page)).returncode == 0
    assert 'id="scoreboard"' in page.read_text()


def test_report_usage_errors(saved, tmp_path):
    missing = cli("report", str(tmp_path / "nope.json"), "--format", "html")
    assert missing.returncode == 2 and "report file not found" in missing.stderr
    (tmp_path / "bad.json").write_text(json.dumps({"schema_version": 1, "cases": []}))
    bad = cli("report", str(tmp_path / "bad.json"), "--format", "junit")
    assert bad.returncode == 2 and "is not a valid conv-conformance report: field" in bad.stderr
    fmt = cli("report", str(saved["mixed"]), "--format", "pdf")
    assert fmt.returncode == 2 and "invalid choice: 'pdf'" in fmt.stderr


def test_scoreboard(runs, tmp_path):
    out = tmp_path / "board"
    proc = cli("scoreboard", str(runs["reference"]), str(runs["mixed"]), str(runs["wrong"]), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    md = (out / "scoreboard.md").read_text()
    assert "| Layer | reference | mixed | wrong-values |" in md
    assert "| **conformant** | **yes** | **no** | **no** |" in md
    row = next(line for line in md.splitlines() if line.startswith("| UpSampling1D |"))
    assert row.split("|")[2].strip().startswith("✅") and "unsupported" in row.split("|")[3]
    assert (out / "scoreboard.html").read_text().count("<table") == 2


def test_compare_exit_codes(saved, runs, tmp_path):
    same = cli("compare", str(runs["reference"]), str(runs["reference"]))
    assert same.returncode == 0 and "✅ no regressions" in same.stdout
    worse = cli("compare", str(runs["reference"]), str(runs["wrong"]), "--out", str(tmp_path / "c.md"))
    assert worse.returncode == 1 and "regressions" in worse.stdout
    assert (tmp_path / "c.md").read_text() == worse.stdout
    better = cli("compare", str(runs["mixed"]), str(runs["reference"]))
    assert better.returncode == 0
    refused = cli("compare", str(saved["clean"]), str(saved["other"]))
    assert refused.returncode == 2 and "different case sets" in refused.stderr
    shared = cli("compare", str(saved["clean"]), str(saved["other"]), "--shared-only")
    assert shared.returncode == 0 and "Compared 4 cases" in shared.stdout
    thr = cli("compare", str(saved["clean"]), str(saved["mixed"]), "--threshold", "0.5")
    assert thr.returncode == 2 and "must be a factor > 1" in thr.stderr

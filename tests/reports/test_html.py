"""The self-contained HTML page (reports.html): escaping, offline, reproducers."""
from __future__ import annotations

import html.parser
import os
import subprocess
import sys

import pytest

from conv_conformance.reports import html as report_html
from tests.reports import builders
from tests.reports.adapters import INJECTED
from tests.reports.conftest import ROOT


class _Collector(html.parser.HTMLParser):
    """Tags, attributes and script bodies of a page, from a real HTML parser."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def _parse(page):
    p = _Collector()
    p.feed(page)
    return p


def test_injected_markup_is_inert(mixed):
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    mixed["cases"][8]["exception"]["message"] = evil
    mixed["cases"][8]["message"] = evil
    mixed["adapter"]["name"] = evil
    mixed["cases"][0]["spec"]["config"]["padding"] = evil
    page = report_html.render(mixed)
    parsed = _parse(page)
    assert [t for t, _ in parsed.tags].count("script") == 1          # only our own
    assert not any(t == "img" for t, _ in parsed.tags)
    assert "alert(1)" not in "".join(parsed.scripts)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_self_contained(mixed):
    page = report_html.render(mixed)
    parsed = _parse(page)
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            assert not attrs.get(name), (tag, attrs)
        assert not (tag == "link"), attrs
    csp = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_sections_and_failures(mixed):
    page = report_html.render(mixed)
    parsed = _parse(page)
    ids = {a.get("id") for _, a in parsed.tags}
    assert {"scoreboard", "heatmap", "failures", "verdict"} <= ids
    details = [a for t, a in parsed.tags if t == "details" and a.get("class") == "failure"]
    assert len(details) == 3 + 2 + 1           # one per failing case in each cluster
    assert "Conv2D output fails when padding=&#39;same&#39; and strides=[2, 2]" in page


def test_heatmap_rates(mixed):
    rows = {(r["argument"], r["value"]): r for r in report_html.heatmap(mixed)["Conv2D"]}
    same = rows[("padding", "'same'")]
    # padding='same': 4 valid cases, 2 fail (strides 2)
    assert (same["cases"], same["failing"], same["rate"], same["output"]) == (4, 2, 0.5, 45.5)
    assert ("filters", "2") not in rows          # constant arguments are left out
    assert report_html.heat_color(0.0) != report_html.heat_color(1.0)


def test_member_cap(mixed):
    cases = [builders.case(f"Conv2D-{i}", builders.conv2d(), {"output": "error"},
                           exception={"type": "E", "message": "same"}) for i in range(35)]
    page = report_html.render(builders.report(cases))
    assert page.count("<details class=\"failure\"") == 30 and "... and 5 more" in page


def test_real_run_page_and_reproducer(real, tmp_path):
    report = real["mixed"]
    page = report_html.render(report)
    assert INJECTED not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    failing = next(c for c in report["cases"] if c["verdicts"].get("output") == "fail")
    script = report_html.reproducer(report, failing)
    assert "Case.from_json(" in script
    path = tmp_path / "repro.py"
    path.write_text(script)
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first == repr(failing["verdicts"])       # the reproducer scores it as the run did


@pytest.mark.parametrize("name", ["reference", "wrong"])
def test_real_runs_render(real, name):
    page = report_html.render(real[name])
    assert 'id="scoreboard"' in page
    assert ("not conformant" in page) is (name == "wrong")


def test_levels_table_and_coverage():

    cases = [builders.case("Conv2D-1", builders.conv2d(), {"shape": "pass", "output": "pass"}),
             builders.case("Conv2D-2", builders.conv2d(activation="relu"), {"shape": "unsupported", "output": "unsupported"}),
             builders.case("Conv2D-3", builders.conv2d(data_format="channels_first"), {"shape": "pass", "output": "waived"})]
    page = report_html.render(builders.report(cases))
    assert 'id="levels"' in page and "partial (declined: activation:relu)" in page
    assert "coverage 2/3 cases fully scored (66.7%), 1 declined" in page

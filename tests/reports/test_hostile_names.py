"""Adapter names, versions and messages holding HTML, script or XML-breaking characters: inert in
the HTML report, and the JUnit XML still parses with the text kept (control characters replaced)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from conv_conformance.reports import html as report_html
from conv_conformance.reports import junit
from tests.reports import builders

EVIL = '<script>alert(1)</script>]]><x a="1"/>&amp;\x00\x1b[31m\'"'


def _report():
    case = builders.case("Conv2D-x", builders.conv2d(), {"output": "error"},
                         exception={"type": f"E{EVIL}", "message": EVIL}, message=EVIL)
    return builders.report([case], adapter=EVIL, versions={EVIL: EVIL, "numpy": "2.4.0"})


def test_junit_parses_and_keeps_the_text():
    root = ET.fromstring(junit.render(_report()))
    suite = root.find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    kept = EVIL.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")
    assert any(kept in (v or "") for v in props.values()), props
    err = suite.find("testcase/error")
    assert kept in err.get("message")


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in = tag == "script"

    def handle_data(self, data):
        if self._in:
            self.scripts.append(data)

    def handle_endtag(self, tag):
        self._in = False


def test_html_escapes_names_versions_and_messages():
    page = report_html.render(_report())
    parsed = _Tags()
    parsed.feed(page)
    benign = _Tags()
    benign.feed(report_html.render(builders.report([builders.case("Conv2D-x", builders.conv2d(),
                                                                  {"output": "error"})])))
    assert parsed.tags.count("script") == benign.tags.count("script")  # only the report's own
    assert "alert(1)" not in "".join(parsed.scripts)
    assert "x" not in parsed.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

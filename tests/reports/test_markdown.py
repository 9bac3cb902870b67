"""The Markdown summary (reports.markdown)."""
from __future__ import annotations

import re

from conv_conformance.reports import VERDICTS, markdown
from tests.reports import builders


def _table_row(text, first):
    for line in text.splitlines():
        if line.startswith(f"| {first} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"no row {first!r}")


def test_verdict_counts_and_layer_table(mixed):
    text = markdown.render(mixed)
    assert text.startswith("## conv-conformance: mylib — ❌ NOT conformant")
    expected = {"pass": 7, "unsupported": 1, "fail": 3, "error": 3}  # every other verdict: 0
    assert "| " + " | ".join(VERDICTS) + " |" in text
    assert "| " + " | ".join(str(expected.get(v, 0)) for v in VERDICTS) + " |" in text
    assert _table_row(text, "Conv2D") == ["Conv2D", "8 pass, 3 error", "6 pass, 2 fail, 3 error",
                                          "8 pass, 3 error", "1 pass, 1 fail"]
    assert _table_row(text, "Cropping1D") == ["Cropping1D", "1 unsupported", "1 unsupported", "-", "-"]


def test_worst_ratio_and_clusters(mixed):
    text = markdown.render(mixed)
    assert "| 45.5 | Conv2D-000000000008 | [0, 1, 2, 0] | 1.5 | 1.6 | 0.001 |" in text
    assert "| 2 | fail | Conv2D output fails when padding='same' and strides=\\[2, 2\\] | Conv2D |" in text


def test_conformant_run(clean):
    text = markdown.render(clean)
    assert "✅ conformant" in text and "No failures." in text


def test_adapter_strings_are_inert():
    c = builders.case("Conv2D-x", builders.conv2d(), {"output": "error"},
                      exception={"type": "E", "message": "<img src=x onerror=alert(1)> | *bold* [link](http://x)"})
    text = markdown.render(builders.report([c], adapter="<b>evil</b>"))
    assert "<img" not in text and "<b>" not in text
    assert "&lt;img src=x onerror=alert(N)&gt; \\| \\*bold\\* \\[link\\](http://x)" in text


def test_long_lists_are_capped():
    cases = []
    for i in range(12):      # 12 different exceptions -> 12 clusters, 8 shown
        cases.append(builders.case(f"Conv2D-{i}", builders.conv2d(), {"output": "error"},
                                   exception={"type": f"Error{chr(65 + i)}", "message": "x"}))
    text = markdown.render(builders.report(cases))
    assert len(re.findall(r"^\| 1 \| error \| Error", text, re.M)) == 8
    assert "... and 4 more clusters (4 failures)" in text


def test_real_mixed_run(real):
    text = markdown.render(real["mixed"])
    assert "❌ NOT conformant" in text
    assert "Conv2D output fails when padding='same'" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert len(text.splitlines()) < 100      # short enough for a CI job summary


def test_levels_and_coverage_are_shown():
    cases = [builders.case("Conv2D-1", builders.conv2d(), {"shape": "pass", "output": "quality_warning"}),
             builders.case("Conv2D-2", builders.conv2d(data_format="channels_first"),
                           {"shape": "unsupported", "output": "unsupported"}),
             builders.case("Cropping1D-1", builders.cropping1d([1, 0]), {"shape": "unsupported", "output": "unsupported"})]
    text = markdown.render(builders.report(cases))
    assert "Coverage 1/3 cases fully scored (33.3%), 2 declined" in text
    assert _table_row(text.split("### Conformance level per layer")[1], "Conv2D") == [
        "Conv2D", "conformant at the core (declined: channels\\_first)", "2", "1", "0"]
    assert _table_row(text.split("### Conformance level per layer")[1], "Cropping1D")[1] == "not implemented"

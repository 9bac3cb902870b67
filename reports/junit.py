"""JUnit XML for CI test tabs: one ``<testcase>`` per case and category.

``classname`` is the layer, ``name`` is ``f"{case_id}[{category}]"``. A fail
verdict becomes ``<failure>``, error/timeout/crash ``<error>`` (its ``type`` is
the verdict or the exception type), unsupported ``<skipped>``; each carries the
case's message, and the element text has the worst element and the exception.
quality_warning and waived (allowed verdicts) are passed test cases whose
``<system-out>`` says which, with the waiver's id and link.
Built with :mod:`xml.etree.ElementTree`; characters XML 1.0 cannot hold (NUL,
most control characters, which adapters' messages may contain) are replaced by
U+FFFD so the file always parses.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from conv_conformance.conformance.levels import category_line

from . import CATEGORIES, FAILING, finding_note, fmt_ratio, with_findings

__all__ = ["render", "to_element"]

_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: object) -> str:
    return _XML_INVALID.sub("\ufffd", str(text))


def _detail(case: dict, category: str) -> str:
    lines = [f"layer: {case['layer']}  kind: {case['kind']}  dtype: {case['dtype']}",
             f"input_shape: {case['input_shape']}",
             f"spec: {json.dumps(case['spec'], sort_keys=True)}"]
    worst = (case.get("worst") or {}).get(category)
    if worst:
        name = f" {worst['name']}" if worst.get("name") else ""
        lines.append(f"worst{name} at {worst['index']}: expected {worst['expected']}, "
                     f"actual {worst['actual']}, allowed error {worst['allowed']}, "
                     f"ratio {fmt_ratio((case.get('worst_ratio') or {}).get(category))}")
    exc = case.get("exception")
    if exc:
        lines.append(f"exception: {exc['type']}: {exc['message']}")
    return "\n".join(lines)


def to_element(report: dict) -> ET.Element:
    """The ``<testsuites>`` element of a report (one ``<testsuite>`` per run)."""
    adapter = report["adapter"]["name"]
    root = ET.Element("testsuites", name="conv-conformance")
    suite = ET.SubElement(root, "testsuite", name=_clean(f"conv-conformance[{adapter}]"),
                          timestamp=report["started"], hostname=report["platform"].get("system", ""))
    props = ET.SubElement(suite, "properties")
    meta = {"suite_version": report["suite_version"], "corpus_id": report["corpus_id"],
            "profile": report["profile"], "dtype": report["dtype"],
            "adapter": adapter, "conformant": str(report["summary"]["conformant"]).lower()}
    meta.update({f"version.{k}": v for k, v in sorted(report["adapter"]["versions"].items())})
    # each category's counts apart: a declined optional category does not hide a clean output
    meta.update({f"category.{c}": category_line({c: n}) for c, n in (report["summary"].get("by_category") or {}).items()
                 if any(n.values())})
    for name, value in meta.items():
        ET.SubElement(props, "property", name=_clean(name), value=_clean(value if value is not None else ""))

    tally = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    with_findings(report)
    for case in report["cases"]:
        verdicts = case["verdicts"]
        seconds = float(case.get("seconds") or 0.0)
        total_time += seconds
        for category in (c for c in CATEGORIES if c in verdicts):
            verdict = verdicts[category]
            tc = ET.SubElement(suite, "testcase", classname=_clean(case["layer"]),
                               name=_clean(f"{case['id']}[{category}]"),
                               time=f"{seconds / len(verdicts):.6f}")
            tally["tests"] += 1
            message = _clean(case.get("message") or verdict)
            if verdict in FAILING and case.get("findings") and not case.get("new"):  # names the known finding
                message = _clean(f"{finding_note(case)}: {case.get('message') or verdict}")
            if verdict in ("fail", "mutation", "nondeterministic"):
                el = ET.SubElement(tc, "failure", message=message, type=verdict)
                tally["failures"] += 1
            elif verdict in ("error", "timeout", "crash"):
                exc = case.get("exception") or {}
                el = ET.SubElement(tc, "error", message=message,
                                   type=_clean(exc.get("type") or verdict))
                tally["errors"] += 1
            elif verdict == "unsupported":
                el = ET.SubElement(tc, "skipped", message=message)
                tally["skipped"] += 1
            elif verdict in ("quality_warning", "waived"):  # allowed: a passed test case, noted
                note = (f"waived by {(case.get('waiver') or {}).get('id', '?')} "
                        f"({(case.get('waiver') or {}).get('link', '')}): " if verdict == "waived" else "")
                ET.SubElement(tc, "system-out").text = _clean(f"{verdict}: {note}{case.get('message') or ''}")
                continue
            else:
                continue
            if verdict != "unsupported":
                note = finding_note(case) if verdict in FAILING else ""
                el.text = _clean((f"{note}\n" if note else "") + _detail(case, category))
    for el in (root, suite):
        el.set("tests", str(tally["tests"]))
        el.set("failures", str(tally["failures"]))
        el.set("errors", str(tally["errors"]))
        el.set("skipped", str(tally["skipped"]))
        el.set("time", f"{total_time:.3f}")
    return root


def render(report: dict) -> str:
    """The JUnit XML document of a report, as text."""
    root = to_element(report)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

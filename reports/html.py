"""One self-contained HTML page per run (Jinja2, autoescape on).

The page holds the scoreboard (layers by category), a heatmap of the fail
rate and worst error ratio per layer and argument value, and the failures
grouped into clusters (:mod:`reports.clusters`), each failure expandable with
its spec, worst element and a runnable Python reproducer. CSS and JS are
inline and a Content-Security-Policy forbids every fetch, so the file works
offline and cannot call out. Every string from the report is escaped by the
template engine; nothing is marked safe.
"""
from __future__ import annotations

import json
import math
import pprint
from collections import defaultdict
from typing import Any

import jinja2

from conv_conformance.conformance.environment import flatten

from conv_conformance.conformance.levels import category_line, coverage_line, level_text, report_levels
from conv_conformance.oracle.case import make_case
from conv_conformance.vocabulary import DEFAULT_TOLERANCE

from conv_conformance.conformance import findings as known_findings

from . import (CATEGORIES, FAILING, VERDICTS, case_verdict, environment_line, fmt_ratio, layer_table, real,
               with_findings)
from .clusters import Cluster, arguments, clusters

__all__ = ["render", "environment", "heatmap", "reproducer", "heat_color"]

_MAX_MEMBERS = 30          # failures shown expanded per cluster; the rest listed by id


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report templates (autoescape on for everything)."""
    # this package by its installed name (conv_conformance.reports), never a top-level "reports"
    env = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["ratio"] = fmt_ratio
    env.filters["heat"] = heat_color
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True)
    env.globals.update(CATEGORIES=CATEGORIES, VERDICTS=VERDICTS, environment_line=environment_line,
                       report_levels=report_levels, level_text=level_text, coverage_line=coverage_line,
                       category_line=category_line)
    return env


def heat_color(rate: float | None) -> str:
    """Background colour of a heatmap cell: green at fail rate 0, through yellow, red at 1;
    grey when there is nothing to rate."""
    if rate is None or math.isnan(rate):
        return "#eeeeee"
    hue = 120.0 * (1.0 - min(max(rate, 0.0), 1.0))
    return f"hsl({hue:.0f}, 70%, 82%)"


def _worse(a: float | None, b: float | None) -> float | None:
    """The larger of two ratios, NaN counting as the worst, None as absent."""
    if a is None or b is None:
        return b if a is None else a
    return a if math.isnan(a) else b if math.isnan(b) else max(a, b)


def heatmap(report: dict) -> dict[str, list[dict]]:
    """Per layer, one row per argument value seen with at least two values in that
    layer's cases: ``{"argument", "value", "cases", "failing", "rate", "output", "gradient"}``
    (``rate`` = failing/cases, ``output``/``gradient`` = worst error ratio or None)."""
    cells: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
    values: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for case in report["cases"]:
        failing = case_verdict(case) in FAILING
        for arg, value in arguments(case).items():
            values[case["layer"]][arg].add(value)
            cell = cells[case["layer"]].setdefault((arg, value), {
                "argument": arg, "value": value, "cases": 0, "failing": 0, "output": None, "gradient": None})
            cell["cases"] += 1
            cell["failing"] += failing
            for cat in ("output", "gradient"):
                cell[cat] = _worse(cell[cat], real((case.get("worst_ratio") or {}).get(cat)))
    out = {}
    for layer in sorted(cells):
        rows = [c for (arg, _), c in sorted(cells[layer].items()) if len(values[layer][arg]) > 1]
        for row in rows:
            row["rate"] = row["failing"] / row["cases"]
        out[layer] = rows
    return out


def _literal(value: Any) -> str:
    """``value`` as a Python literal (True/None, not JSON's true/null)."""
    return pprint.pformat(value, width=96, sort_dicts=True)


def _case_json(case: dict) -> dict | None:
    """The oracle's JSON of a case (id, spec, shape, kind, seed, gradient): from the record
    if it carries seed and gradient, else rebuilt with ``oracle.cases.make_case`` and
    accepted only if the rebuilt id is the recorded one."""
    record = {k: case[k] for k in ("id", "layer", "spec", "input_shape", "kind")}
    if "seed" in case and "gradient" in case:
        return {**record, "seed": case["seed"], "gradient": case["gradient"]}
    try:
        rebuilt = make_case(case["spec"], case["input_shape"], case["kind"])
    except Exception:  # a spec the oracle cannot rebuild: the script rebuilds it itself
        return None
    return rebuilt.to_json() if rebuilt.id == case["id"] else None


def reproducer(report: dict, case: dict) -> str:
    """A Python script that rebuilds ``case``, scores the report's adapter on it as the
    harness does (printing verdicts, worst ratios and the message), then makes the raw
    ``forward`` call so a raised exception shows its traceback."""
    adapter = report["adapter"].get("target") or report["adapter"]["name"]
    dtype = case["dtype"]
    mode = report.get("tolerance") or DEFAULT_TOLERANCE
    found = _case_json(case)
    if found is not None:
        build = ["from conv_conformance.oracle.cases import Case, materialize", "",
                 f"case = Case.from_json({_literal(found)})"]
    else:
        build = ["from conv_conformance.oracle.cases import make_case, materialize", "",
                 f"case = make_case({_literal(case['spec'])},",
                 f"                 {case['input_shape']!r}, {case['kind']!r})",
                 f"assert case.id == {case['id']!r}, case.id"]
    return "\n".join([
        f"# Reproduce case {case['id']} ({case['layer']}, {dtype}) with adapter {adapter!r}.",
        "# Run where conv-conformance is installed and the adapter is importable.",
        "from conv_conformance.conformance.calls import cast",
        "from conv_conformance.conformance.scoring import check",
        "from conv_conformance.conformance.registry import load_adapter",
        *build,
        f"m = materialize(case, {dtype!r}, {mode!r})",
        f"adapter = load_adapter({adapter!r})",
        f"result = check(adapter, case, m, {dtype!r})",
        "print(result.verdicts)",
        "print(result.worst_ratio, result.worst)",
        "print(result.message)",
        "# the raw call, as the harness makes it:",
        f"y = adapter.forward(case.spec, cast(m.inputs, {dtype!r}),",
        f"                    {{k: cast(w, {dtype!r}) for k, w in m.weights.items()}})",
        "print('output shape', getattr(y, 'shape', None), 'expected',",
        "      None if m.expected_output is None else m.expected_output.shape)",
        "",
    ])


def _member_view(report: dict, cluster: Cluster, member: Any) -> dict:
    case = member.case
    worst = []
    for cat in CATEGORIES:
        w = (case.get("worst") or {}).get(cat)
        if w:
            worst.append({"category": cat, "ratio": (case.get("worst_ratio") or {}).get(cat), **w})
    return {"case": case, "categories": member.categories, "worst": worst,
            "ratio": member.worst_ratio, "reproducer": reproducer(report, case),
            "spec_json": json.dumps(case["spec"], indent=2, sort_keys=True)}


def render(report: dict) -> str:
    """The HTML page of one report."""
    with_findings(report)
    found = clusters(report)
    views = [{"cluster": cl,
              "members": [_member_view(report, cl, m) for m in cl.members[:_MAX_MEMBERS]],
              "more": [m.case["id"] for m in cl.members[_MAX_MEMBERS:]]} for cl in found]
    template = environment().get_template("report.html")
    table = layer_table(report)
    return template.render(report=report, summary=report["summary"], table=table,
                           categories=[c for c in CATEGORIES if any(c in row for row in table.values())],
                           heatmap=heatmap(report), clusters=views,
                           versions=sorted(report["adapter"]["versions"].items()),
                           environment_line=environment_line(report),
                           environment_fields=sorted(flatten(report.get("environment") or {}).items()),
                           suite_version=report["suite_version"], findings=_findings_view(report))


def _findings_view(report: dict) -> dict:
    """The known findings and new failures of a report, with links to their write-ups."""
    found = report["summary"].get("findings") or {}
    catalogue = known_findings.load()
    return {"text": known_findings.summary_text(found),
            "rows": [{"id": fid, "cases": n, "title": catalogue.by_id[fid].title if fid in catalogue.by_id else "",
                      "link": f"{known_findings.DOC_PAGE}#{known_findings.anchor(fid)}"}
                     for fid, n in (found.get("by_finding") or {}).items()],
             "new_cases": found.get("new_cases") or [], "fixed": known_findings.fixed_lines(found),
             "doc": known_findings.DOC_PAGE}

"""Markdown summary of a run, short enough for a CI job summary.

Overall verdict, counts, a table of layers by category, the worst error ratio
per category with the element where it occurred, and the largest failure
clusters. Long lists are capped with "... and N more". Every string that came
from an adapter goes through :func:`escape`, so it renders as text.
"""
from __future__ import annotations

import re

from conv_conformance.conformance.levels import category_line, coverage_line, level_text, report_levels

from conv_conformance.conformance import findings as known_findings

from . import CATEGORIES, VERDICTS, environment_line, fmt_ratio, layer_table, with_findings, worst_cases
from .clusters import clusters

__all__ = ["render", "escape", "counts_cell", "header"]

_MAX_CLUSTERS = 8
_MAX_WORST = 5
_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def escape(text: object, limit: int | None = 200) -> str:
    """``text`` as inert inline Markdown: one line, HTML metacharacters as
    entities, Markdown punctuation backslash-escaped, at most ``limit`` characters."""
    s = " ".join(str(text).split())
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", s)


def counts_cell(counts: dict[str, int]) -> str:
    """``"38 pass, 2 fail"``: the non-zero counts, best verdict first; "-" if none."""
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts.get(v)]
    return ", ".join(parts) if parts else "-"


def _mark(conformant: bool) -> str:
    return "✅ conformant" if conformant else "❌ NOT conformant"


def header(report: dict) -> list[str]:
    """Title and run line of a report (adapter, verdict, profile, dtype, corpus, versions)."""
    adapter = report["adapter"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(adapter["versions"].items()) if v)
    return [
        f"## conv-conformance: {escape(adapter['name'])} — {_mark(report['summary']['conformant'])}",
        "",
        f"Profile **{escape(report['profile'])}**, dtype **{report['dtype']}**, "
        f"{report['summary']['cases']} cases, corpus `{escape(report['corpus_id'], None)}`, "
        f"suite {escape(report['suite_version'])}, {report['started']}.  ",
        f"Versions: {escape(versions) or 'not reported'}.  ",
        f"Environment: {escape(environment_line(report), 600)}.  ",
        f"C{escape(coverage_line(*report_levels(report)))[1:]}.  ",
        f"By category: {escape(category_line(report['summary'].get('by_category') or {})) or '-'}.",
        "",
    ]


def findings_section(report: dict) -> list[str]:
    """Failing cases split by the catalogue of known findings: one row per finding (linked to its
    write-up), the new failing cases, and the findings reported as fixed?. Known findings do not
    make a run conformant."""
    found = report["summary"].get("findings") or {}
    text = known_findings.summary_text(found)
    if not text and not found.get("fixed"):
        return []
    catalogue = known_findings.load()
    lines = ["### Known findings and new failures", "",
             f"{escape(text) or 'No failing case'}. Known findings are divergences already catalogued "
             f"(docs/divergences.md); they are reported, never waived.", ""]
    if found.get("by_finding"):
        lines += ["| finding | cases | what |", "|---|---:|---|"]
        for fid, n in found["by_finding"].items():
            title = catalogue.by_id[fid].title if fid in catalogue.by_id else ""
            lines.append(f"| [{escape(fid)}]({known_findings.DOC_PAGE}#{known_findings.anchor(fid)}) | {n} | "
                         f"{escape(title)} |")
        lines.append("")
    if found.get("new"):
        ids = found.get("new_cases") or []
        lines += [f"**New** (no known finding explains them): {', '.join(escape(i) for i in ids[:20])}"
                  + (f" ... and {len(ids) - 20} more" if len(ids) > 20 else ""), ""]
    for line in known_findings.fixed_lines(found):
        lines += [escape(line, 400) + "  "]
    if found.get("fixed"):
        lines.append("")
    return lines


def render(report: dict) -> str:
    """The Markdown summary of one report."""
    summary = with_findings(report)["summary"]
    lines = header(report)
    lines += ["| " + " | ".join(VERDICTS) + " |", "|" + "---:|" * len(VERDICTS),
              "| " + " | ".join(str(summary["counts"].get(v, 0)) for v in VERDICTS) + " |", ""]
    lines += findings_section(report)

    table = layer_table(report)
    cats = [c for c in CATEGORIES if any(c in row for row in table.values())]
    lines += ["### Layers by category", "",
              "| Layer | " + " | ".join(c.replace("_", " ") for c in cats) + " |",
              "|---|" + "---|" * len(cats)]
    for layer, row in table.items():
        lines.append(f"| {escape(layer)} | " + " | ".join(counts_cell(row.get(c, {})) for c in cats) + " |")
    lines.append("")

    _, levels = report_levels(report)
    lines += ["### Conformance level per layer", "",
              "Core and optional features: docs/certification.md.", "",
              "| Layer | level | cases | declined | failing |", "|---|---|---:|---:|---:|"]
    for layer, entry in levels.items():
        lines.append(f"| {escape(layer)} | {escape(level_text(entry))} | {entry.get('cases', '-')} | "
                     f"{entry.get('declined', '-')} | {entry.get('failing', '-')} |")
    lines.append("")

    lines += ["### Worst error ratios", "",
              "Error ratio = |actual − expected| / allowed; a ratio above 1 fails.", ""]
    any_ratio = False
    for category in ("output", "gradient"):
        worst = worst_cases(report, category, limit=_MAX_WORST)
        if not worst:
            continue
        any_ratio = True
        worst = [(r, c) for r, c in worst if not r == 0.0]
        if not worst:
            lines += [f"**{category}**: worst ratio 0 (every element exact).", ""]
            continue
        lines += [f"**{category}**", "", "| ratio | case | where | expected | actual | allowed |",
                  "|---:|---|---|---:|---:|---:|"]
        for ratio, case in worst:
            w = (case.get("worst") or {}).get(category) or {}
            where = (f"{escape(w['name'])} " if w.get("name") else "") + str(w.get("index", "-"))
            lines.append(f"| {fmt_ratio(ratio)} | {escape(case['id'])} | {where} | "
                         f"{w.get('expected', '-')} | {w.get('actual', '-')} | {w.get('allowed', '-')} |")
        lines.append("")
    if not any_ratio:
        lines += ["No error ratios were computed.", ""]

    found = clusters(report)
    lines += ["### Largest failure clusters", ""]
    if not found:
        lines += ["No failures.", ""]
    else:
        lines += ["| cases | verdict | signature | layers |", "|---:|---|---|---|"]
        for cl in found[:_MAX_CLUSTERS]:
            layers = ", ".join(cl.layers[:4]) + (f" … +{len(cl.layers) - 4}" if len(cl.layers) > 4 else "")
            lines.append(f"| {cl.size} | {', '.join(cl.verdicts)} | {escape(cl.title)} | {escape(layers)} |")
        if len(found) > _MAX_CLUSTERS:
            rest = found[_MAX_CLUSTERS:]
            lines.append(f"\n... and {len(rest)} more clusters ({sum(c.size for c in rest)} failures)")
        lines.append("")
    return "\n".join(lines)

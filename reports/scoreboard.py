"""Several runs side by side: one column per adapter, one row per layer.

Each cell counts the layer's cases by overall verdict (the worst over its
categories). ``scoreboard.md`` is the per-layer table of docs/results;
``scoreboard.html`` is the same table, self-contained, with the run details.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from conv_conformance.conformance.levels import coverage_line, level_text, report_levels

from . import FAILING, VERDICTS, environment_line, layer_counts, worst_verdict
from .html import environment
from .markdown import counts_cell, escape

__all__ = ["columns", "render_markdown", "render_html", "write"]


def kernels_tag(report: dict) -> str:
    """``oneDNN on, AVX-512``: which CPU kernels the run's frameworks used (from its environment)."""
    env = report.get("environment") or {}
    parts = []
    onednn = [env[f].get(k) for f, k in (("tensorflow", "onednn"), ("torch", "mkldnn")) if f in env]
    if onednn:
        parts.append("oneDNN " + ("on" if "True" in onednn else "off"))
    isa = env.get("onednn_isa")
    if isa:
        parts.append({"avx512": "AVX-512", "avx2": "AVX2"}.get(isa, isa))
    return ", ".join(parts)


def _labels(reports: list[dict]) -> list[str]:
    """Column titles: the adapter name, qualified by what tells runs of the same adapter apart
    (dtype, profile, the kernels they ran: oneDNN on/off and its ISA)."""
    groups: dict[str, list[dict]] = {}
    for r in reports:
        groups.setdefault(r["adapter"]["name"], []).append(r)
    labels = []
    for r in reports:
        label, group = r["adapter"]["name"], groups[r["adapter"]["name"]]
        if len(group) > 1:
            parts = [f(r) for f in (lambda x: x["dtype"], lambda x: x["profile"], kernels_tag)
                     if len({f(g) for g in group}) > 1]
            if parts:
                label += f" ({', '.join(parts)})"
        labels.append(label)
    seen = Counter(labels)
    for i, label in enumerate(labels):         # still ambiguous: number them
        if seen[label] > 1:
            labels[i] = f"{label} #{i + 1}"
    return labels


def columns(reports: list[dict]) -> dict:
    """``{"labels", "layers", "cells": {layer: [counts per run]}, "totals": [counts per run]}``;
    a layer a run did not cover has ``None`` in its column."""
    per_run = [layer_counts(r) for r in reports]
    layers = sorted(set().union(*per_run))
    cells = {layer: [run.get(layer) for run in per_run] for layer in layers}
    totals = [{v: sum(c[v] for c in run.values()) for v in VERDICTS} for run in per_run]
    return {"labels": _labels(reports), "layers": layers, "cells": cells, "totals": totals}


def _cell(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "not run"
    total = sum(counts.values())
    if counts["pass"] == total:
        return f"✅ {total}"
    mark = "❌ " if any(counts[v] for v in FAILING) else ""
    return mark + counts_cell(counts)


def _versions(report: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(report["adapter"]["versions"].items()) if v)


def render_markdown(reports: list[dict]) -> str:
    """The scoreboard as a Markdown table (rows: layers; columns: runs)."""
    data = columns(reports)
    head = "| Layer | " + " | ".join(escape(label) for label in data["labels"]) + " |"
    lines = ["## conv-conformance scoreboard", "",
             "Cases per verdict (worst over shape, output, gradient, error behaviour); ✅ = every case passes.", "",
             head, "|---|" + "---|" * len(reports)]
    lines.append("| **conformant** | " + " | ".join(
        "**yes**" if r["summary"]["conformant"] else "**no**" for r in reports) + " |")
    levels = [report_levels(r)[1] for r in reports]
    for layer in data["layers"]:
        lines.append(f"| {escape(layer)} | " + " | ".join(
            _cell(c) + (f" — {escape(level_text(lv[layer]))}" if layer in lv else "")
            for c, lv in zip(data["cells"][layer], levels)) + " |")
    lines.append("| **all layers** | " + " | ".join(_cell(c) for c in data["totals"]) + " |")
    lines.append("| **coverage** | " + " | ".join(
        escape(coverage_line(*report_levels(r))) for r in reports) + " |")
    lines += ["", "Runs:", ""]
    for label, r in zip(data["labels"], reports):
        lines.append(f"- **{escape(label)}**: profile {escape(r['profile'])}, {r['dtype']}, "
                     f"corpus `{escape(r['corpus_id'], None)}`, {escape(_versions(r)) or 'no versions reported'}, "
                     f"{r['started']}; environment: {escape(environment_line(r), 600)}")
    if len({r["corpus_id"] for r in reports}) > 1:
        lines += ["", "Note: the runs use different case sets (corpus ids differ), so counts "
                      "are not directly comparable."]
    return "\n".join(lines) + "\n"


def render_html(reports: list[dict]) -> str:
    """The scoreboard as one self-contained HTML page."""
    data = columns(reports)
    worst = {layer: [worst_verdict([v for v in VERDICTS if c and c[v]]) if c else None
                     for c in cells] for layer, cells in data["cells"].items()}
    template = environment().get_template("scoreboard.html")
    return template.render(reports=reports, data=data, worst=worst,
                           levels=[report_levels(r)[1] for r in reports],
                           runs=list(zip(data["labels"], reports, map(_versions, reports))),
                           mixed_corpus=len({r["corpus_id"] for r in reports}) > 1,
                           suite_version=reports[0]["suite_version"] if reports else "")


def write(reports: list[dict], directory: str | Path) -> list[Path]:
    """Write ``scoreboard.md`` and ``scoreboard.html`` into ``directory``; return their paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    md, page = out / "scoreboard.md", out / "scoreboard.html"
    md.write_text(render_markdown(reports), "utf-8")
    page.write_text(render_html(reports), "utf-8")
    return [md, page]

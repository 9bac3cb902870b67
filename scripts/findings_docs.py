#!/usr/bin/env python3
"""Write docs/divergences.md, docs/keras2-vs-keras3.md and the reproducers from the catalogue of known findings.

    python scripts/findings_docs.py           # (re)write the pages and docs/findings/reproducers/*.py
    python scripts/findings_docs.py --check   # exit 1, naming the files, when a checked-in one differs
    python scripts/findings_docs.py --results # also docs/findings/known-in-results.md, and each stored
                                              # docs/results/**/report.json labelled known/new as a run
                                              # labels it now (verdicts untouched; no run; about a minute)

The catalogue (conformance/findings/catalogue.json) is the one source: the page's tables are its
entries (the prose around them is scripts/templates/divergences.md.j2), the Keras 2 vs Keras 3 page's
table is the entries whose ``doc`` has ``versus``, ``keras3`` and ``keras2`` (the prose:
scripts/templates/keras2-vs-keras3.md.j2), and each reproducer is generated from its entry's
``reproducer`` (conformance.findings.reproducers). tests/conformance/test_findings_reproducers.py
and tests/conformance/test_findings.py check that the checked-in files equal what this writes.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import jinja2

from conv_conformance.conformance import findings
from conv_conformance.conformance.findings.reproducers import filename, reproducer_script

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "divergences.md"
REPRODUCERS = ROOT / "docs" / "findings" / "reproducers"
TEMPLATE = ROOT / "scripts" / "templates" / "divergences.md.j2"
KERAS_PAGE = ROOT / "docs" / "keras2-vs-keras3.md"
KERAS_TEMPLATE = ROOT / "scripts" / "templates" / "keras2-vs-keras3.md.j2"
#: The Keras 2 vs Keras 3 table's columns: (label, field of the entry's ``doc``), before the id column.
KERAS_COLUMNS = [("What", "versus"), ("Keras 3", "keras3"), ("Keras 2", "keras2")]
RESULTS = ROOT / "docs" / "results"
RESULTS_PAGE = ROOT / "docs" / "findings" / "known-in-results.md"

#: The header of each section's table: (label, field of the entry's ``doc``), after the id column.
HEADERS = {
    "keras": [("What differs", "what"), ("Exact condition", "condition"), ("Evidence", "evidence")],
    "onednn": [("What differs", "what"), ("Exact condition", "condition"), ("Evidence", "evidence")],
    "tf-keras": [("What differs", "what"), ("Exact condition", "condition")],
    "torch": [("What differs", "what"), ("Exact condition", "condition")],
    "jax": [("what", "what"), ("condition", "condition"), ("evidence and pin", "evidence")],
    "runtimes": [("Runtime", "runtime"), ("What differs", "what"), ("Exact condition", "condition"),
                 ("Evidence / pin", "evidence")],
    "training": [("who", "who"), ("what", "what"), ("exact condition", "condition"), ("evidence / pin", "evidence")],
    "tfjs": [("What TF.js does", "what"), ("Condition", "condition"), ("Evidence / pin", "evidence")],
    "low-precision": [("What", "what"), ("Condition", "condition"), ("Evidence", "evidence")],
}


def _in_a_run(f: findings.Finding) -> str:
    """What a run reports under the entry's condition, from the catalogue's fields."""
    if f.condition is None or "note" in f.verdicts:
        return "note (no category fails)"
    repro = f" [reproducer](findings/reproducers/{filename(f)})" if reproducer_script(f) else ""
    return (f"{' or '.join(f.verdicts)} in {', '.join(c.replace('_', ' ') for c in f.categories)}; "
            f"adapters {', '.join(f'`{a}`' for a in f.adapters)}; {f.status}{repro}")


def table(catalogue: findings.Catalogue, section: str) -> str:
    """One section's table: id (with its anchor), the entry's doc fields, and what a run reports."""
    headers = HEADERS[section]
    lines = ["| # | " + " | ".join(label for label, _ in headers) + " | In a run |",
             "|---|" + "---|" * (len(headers) + 1)]
    for f in catalogue:
        if f.section != section:
            continue
        cells = [f.doc.get(key, "") for _, key in headers]
        lines.append(f'| <a id="{findings.anchor(f.id)}"></a>{f.id} | ' + " | ".join(cells)
                     + f" | {_in_a_run(f)} |")
    return "\n".join(lines)


def _template(path: Path) -> jinja2.Template:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(path.read_text("utf-8"))


def render_page(catalogue: findings.Catalogue | None = None) -> str:
    """docs/divergences.md as generated from the catalogue."""
    catalogue = catalogue or findings.load()
    return _template(TEMPLATE).render(table=lambda section: table(catalogue, section), count=len(catalogue.findings))


def heading_slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def keras_table(catalogue: findings.Catalogue) -> str:
    """The Keras 2 vs Keras 3 table: every entry whose ``doc`` fills its columns, the tf-keras
    section's first, then the others in the catalogue's section order. Each row links the
    divergences.md section whose table holds the entry: the docs' link check (tests/test_docs.py)
    resolves heading anchors only, not the entries' ``<a id>`` anchors."""
    order = {s["id"]: i for i, s in enumerate(catalogue.sections)}
    titles = {s["id"]: s["title"] for s in catalogue.sections}
    rows = sorted((f for f in catalogue if any(key in f.doc for _, key in KERAS_COLUMNS)),
                  key=lambda f: -1 if f.section == "tf-keras" else order.get(f.section, len(order)))
    lines = ["| " + " | ".join(label for label, _ in KERAS_COLUMNS) + " | Finding |",
             "|---|" + "---|" * len(KERAS_COLUMNS)]
    for f in rows:
        missing = [key for _, key in KERAS_COLUMNS if not f.doc.get(key)]
        if missing:
            raise ValueError(f"finding {f.id}: doc needs {', '.join(missing)} for docs/keras2-vs-keras3.md "
                             f"(it has {', '.join(k for _, k in KERAS_COLUMNS if f.doc.get(k))})")
        lines.append("| " + " | ".join(f.doc[key] for _, key in KERAS_COLUMNS)
                     + f" | [{f.id}](divergences.md#{heading_slug(titles[f.section])}) |")
    return "\n".join(lines)


def render_keras_page(catalogue: findings.Catalogue | None = None) -> str:
    """docs/keras2-vs-keras3.md as generated from the catalogue."""
    catalogue = catalogue or findings.load()
    return _template(KERAS_TEMPLATE).render(table=lambda: keras_table(catalogue))


def reproducer_files(catalogue: findings.Catalogue | None = None) -> dict[Path, str]:
    """docs/findings/reproducers/<id>.py (<id>.js for TensorFlow.js) for every entry with a reproducer."""
    catalogue = catalogue or findings.load()
    return {REPRODUCERS / filename(f): script for f in catalogue if (script := reproducer_script(f))}


def expected_files(results: bool = False) -> dict[Path, str]:
    """Every file this script writes, with its content (``results``: also the published runs' page
    and their reports, annotated)."""
    return {PAGE: render_page(), KERAS_PAGE: render_keras_page(), **reproducer_files(),
            **({RESULTS_PAGE: results_page(), **annotated_reports()} if results else {})}


def report_text(report: dict) -> str:
    """A report.json as conformance.report writes it: the head indented, one line per case."""
    head = {k: v for k, v in report.items() if k != "cases"}
    text = json.dumps(head, indent=1, allow_nan=False)
    lines = [json.dumps(case, allow_nan=False) for case in report["cases"]]
    return text[:-2] + ',\n "cases": [' + ",".join("\n  " + line for line in lines) + "\n ]\n}\n"


def annotated_reports(catalogue: findings.Catalogue | None = None) -> dict[Path, str]:
    """Every published report.json with its failing cases labelled known or new and its
    ``summary.findings`` recomputed from the catalogue (nothing else changes)."""
    catalogue = catalogue or findings.load()
    return {path: report_text(findings.annotate_report(json.loads(path.read_text("utf-8")), catalogue))
            for path in sorted(RESULTS.rglob("report.json"))}


def _kernels(report: dict) -> str:
    env = report.get("environment") or {}
    parts = [f"oneDNN ISA {env.get('onednn_isa', '?')}"]
    if "tensorflow" in env:
        parts.append(f"TF oneDNN {'on' if env['tensorflow'].get('onednn') == 'True' else 'off'}")
    return ", ".join(parts)


def _quality_cell(quality: dict) -> str:
    if not quality.get("known") and not quality.get("unexplained"):
        return "-"
    by = ", ".join(f"{fid} x{n}" for fid, n in quality.get("by_finding", {}).items())
    return f"{quality.get('known', 0)} known ({by}), {quality.get('unexplained', 0)} not catalogued"


def results_page(catalogue: findings.Catalogue | None = None) -> str:
    """The published runs (docs/results/**/report.json) with their failing cases split into known
    findings and new failures, computed from the stored reports as a run computes them now."""
    catalogue = catalogue or findings.load()
    rows, new_by_layer = [], {}
    for path in sorted(RESULTS.rglob("report.json")):
        report = findings.annotate_report(json.loads(path.read_text("utf-8")), catalogue)
        found = report["summary"]["findings"]
        quality = found.get("quality_warning") or {}
        if not found["known"] and not found["new"] and not found["fixed"] and not quality.get("known"):
            continue
        known = ", ".join(f"{fid} x{n}" for fid, n in found["by_finding"].items()) or "-"
        fixed = ", ".join(f["id"] for f in found["fixed"]) or "-"
        label = path.parent.relative_to(RESULTS).as_posix()
        rows.append(f"| [{label}](../results/{label}/report.json) | `{report['adapter']['name']}` | {report['dtype']} | "
                    f"{_kernels(report)} | {found['known'] + found['new']} | {found['known']} | {known} | "
                    f"{found['new']} | {fixed} | {_quality_cell(quality)} |")
        for case in report["cases"]:
            if case.get("new"):
                key = (report["adapter"]["name"], case["layer"])
                new_by_layer[key] = new_by_layer.get(key, 0) + 1
    lines = ["# Known findings and new failures in the published runs", "",
             "<!-- Generated by `python scripts/findings_docs.py --results` from docs/results/**/report.json "
             "and the catalogue of known findings; do not edit. -->", "",
             "Every published run whose cases fail, its failing cases split by the catalogue "
             "([divergences.md](../divergences.md)) as a run of this suite splits them now: **known** cases are "
             "explained by a finding (condition, adapter, versions, environment, category and verdict all match), "
             "**new** ones by none. The runs were not repeated: the stored reports were matched. fixed? lists "
             "findings whose condition covers cases of the run that all pass (stale entry, a condition broader "
             "than the bug, or a fix). See [regression-gate.md](../regression-gate.md). quality_warning: the cases "
             "outside the strict low-precision class (conformant, not failing) that a finding explains, and those none "
             "does.", "",
             "| run | adapter | dtype | kernels | failing | known | by finding | new | fixed? | quality_warning |",
             "|---|---|---|---|---:|---:|---|---:|---|---|", *rows, "",
             "## New failing cases by adapter and layer", "",
             "| adapter | layer | new failing cases |", "|---|---|---:|"]
    lines += [f"| `{a}` | {layer} | {n} |" for (a, layer), n in sorted(new_by_layer.items())] + [""]
    return "\n".join(lines)


def stale(files: dict[Path, str]) -> list[Path]:
    """The files whose checked-in content differs (or which are missing), and reproducers no entry has."""
    out = [path for path, text in files.items() if not path.exists() or path.read_text("utf-8") != text]
    if REPRODUCERS.is_dir():
        out += sorted(p for p in REPRODUCERS.glob("*.[pj][ys]") if p not in files)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 naming the stale files")
    parser.add_argument("--results", action="store_true",
                        help="also the published runs' page, docs/findings/known-in-results.md (reads every stored report)")
    args = parser.parse_args(argv)
    files = expected_files(args.results)
    if args.check:
        bad = stale(files)
        for path in bad:
            print(f"stale: {path.relative_to(ROOT)} (run python scripts/findings_docs.py)")
        return 1 if bad else 0
    REPRODUCERS.mkdir(parents=True, exist_ok=True)
    for path in REPRODUCERS.glob("*.[pj][ys]"):
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.write_text(text, "utf-8")
        if path.suffix in (".py", ".js"):
            path.chmod(0o755)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

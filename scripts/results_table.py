"""Markdown rows for the README's results tables, computed from report.json files.

    python scripts/results_table.py networks docs/results/networks/*/report.json
    python scripts/results_table.py runs docs/results/runtimes/*/report.json

``networks``: adapter | dtype | worst ratio (median case), rigorous | same, strict (the other
tolerance mode) | effective precision: fewest bits (cases with an estimate, how many short) | verdicts | minutes.
``runs``: adapter | dtype | cases | verdict counts | coverage | minutes.
The ratios are the larger of a case's output and gradient ratios; "median case" is over the cases
that have one.
"""
from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path


def _ratio(value) -> float:
    return float(value) if value is not None else float("nan")


def _case_ratio(case: dict, key: str) -> float | None:
    values = [_ratio(v) for k, v in (case.get(key) or {}).items() if k in ("output", "gradient") and v is not None]
    return max(values) if values else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _counts(report: dict) -> str:
    return ", ".join(f"{n} {v}" for v, n in report["summary"]["counts"].items() if n)


def _minutes(report: dict) -> str:
    try:
        t0, t1 = (datetime.fromisoformat(report[k]) for k in ("started", "finished"))
    except (KeyError, TypeError, ValueError):
        return "-"
    return f"{(t1 - t0).total_seconds() / 60:.1f}"


def _label(report: dict, path: Path) -> str:
    return report["adapter"]["name"] + (" (AVX2 kernels)" if path.parent.name.endswith("-avx2") else "")


def networks_row(report: dict, path: Path) -> str:
    cases = report["cases"]
    rig = [r for r in (_case_ratio(c, "worst_ratio") for c in cases) if r is not None]
    strict = [r for r in (_case_ratio(c, "strict_ratio") for c in cases) if r is not None]
    p = report["summary"].get("precision") or {}
    bits = f"{p.get('min_bits')} ({p.get('cases', 0)} cases, {p.get('short', 0)} short)" if p else "-"
    both = lambda xs: f"{_fmt(max(xs))} ({_fmt(statistics.median(xs))})" if xs else "-"  # noqa: E731
    return (f"| {_label(report, path)} | {report['dtype']} | {both(rig)} | {both(strict)} | {bits} | "
            f"{_counts(report)} | {_minutes(report)} |")


def runs_row(report: dict, path: Path) -> str:
    cov = report["summary"].get("coverage") or {}
    fraction = f"{100 * cov['fraction']:.1f}%" if cov.get("fraction") is not None else "-"
    return (f"| {_label(report, path)} | {report['dtype']} | {len(report['cases'])} | {_counts(report)} | "
            f"{fraction} | {_minutes(report)} |")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("networks", "runs"):
        print(__doc__, file=sys.stderr)
        return 2
    row = networks_row if argv[0] == "networks" else runs_row
    for name in argv[1:]:
        path = Path(name)
        print(row(json.loads(path.read_text()), path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

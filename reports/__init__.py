"""Render a saved run (report.json) for CI systems and people.

``report.json`` is written by the harness (``conformance``) and described by
``reports/schema.json`` (JSON Schema, draft 2020-12). This package loads and
validates it, and renders it as JUnit XML (:mod:`reports.junit`), a Markdown
summary (:mod:`reports.markdown`), one self-contained HTML page
(:mod:`reports.html`), a multi-adapter scoreboard (:mod:`reports.scoreboard`)
and a baseline comparison (:mod:`reports.compare`).
"""
from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from conv_conformance import _compat
from conv_conformance.conformance import findings as known_findings
from conv_conformance.conformance.environment import DECIDING, flatten
from conv_conformance.vocabulary import CATEGORIES, FAILING, VERDICTS, worst_verdict

_compat.alias_top_level(__name__)

__all__ = [
    "CATEGORIES",
    "VERDICTS",
    "FAILING",
    "ReportError",
    "schema",
    "validate",
    "load",
    "real",
    "worst_verdict",
    "case_verdict",
    "fmt_ratio",
    "layer_table",
    "layer_counts",
    "worst_cases",
    "environment_line",
    "environment_differences",
    "with_findings",
    "finding_note",
]

class ReportError(ValueError):
    """A file that is not a valid report.json; the message names the field."""


@functools.cache
def schema() -> dict:
    """The JSON Schema of report.json (``reports/schema.json``)."""
    return json.loads(resources.files(__name__).joinpath("schema.json").read_text("utf-8"))


def validate(report: Any, *, source: str = "report") -> dict:
    """Check ``report`` against :func:`schema`; return it, or raise :class:`ReportError`
    naming the first offending field as a JSON path (``cases[3].verdicts.output``)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(report))
    if errors:
        err = jsonschema.exceptions.best_match(errors)
        while err.context:  # anyOf/oneOf: report the deepest reason, not "not valid under any"
            err = jsonschema.exceptions.best_match(err.context)
        where = _json_path(err.absolute_path)
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise ReportError(f"{source} is not a valid conv-conformance report: "
                          f"field {where}: {err.message}{more}")
    return report


def _json_path(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load(path: str | Path) -> dict:
    """Read and validate one report.json; :class:`ReportError` says what is wrong."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ReportError(f"report file not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read report {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not JSON ({exc}); expected a report.json written by "
                          f"`conv-conformance run`") from None
    return validate(data, source=str(path))


def real(value: Any) -> float | None:
    """A report number as a float: the strings "inf", "-inf", "nan" become the
    non-finite floats; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return float(value)
    return float(value)


def case_verdict(case: dict) -> str:
    """A case's overall verdict: its worst verdict over the categories that apply."""
    return worst_verdict(case["verdicts"].values())


def fmt_ratio(value: Any) -> str:
    """A worst error ratio for display: 3 significant digits, "inf"/"nan" as such, "-" if absent."""
    x = real(value)
    if x is None:
        return "-"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.3g}"


def _zero() -> dict[str, int]:
    return {v: 0 for v in VERDICTS}


def layer_table(report: dict) -> dict[str, dict[str, dict[str, int]]]:
    """``{layer: {category: {verdict: count}}}`` over the report's cases, layers sorted;
    only categories that apply to at least one case of the layer appear."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for case in report["cases"]:
        row = table.setdefault(case["layer"], {})
        for category, verdict in case["verdicts"].items():
            row.setdefault(category, _zero())[verdict] += 1
    return {layer: {c: table[layer][c] for c in CATEGORIES if c in table[layer]} for layer in sorted(table)}


def layer_counts(report: dict) -> dict[str, dict[str, int]]:
    """``{layer: {verdict: count}}``: cases per overall (worst) verdict, layers sorted."""
    counts: dict[str, dict[str, int]] = {}
    for case in report["cases"]:
        counts.setdefault(case["layer"], _zero())[case_verdict(case)] += 1
    return dict(sorted(counts.items()))


def worst_cases(report: dict, category: str, *, limit: int | None = None) -> list[tuple[float, dict]]:
    """``(ratio, case)`` for every case with a worst ratio in ``category``, worst first
    (NaN counts as the worst of all)."""
    found = [(real(r), c) for c in report["cases"]
             if (r := (c.get("worst_ratio") or {}).get(category)) is not None]
    found.sort(key=lambda rc: (not math.isnan(rc[0]), -rc[0] if not math.isnan(rc[0]) else 0.0, rc[1]["id"]))
    return found[:limit] if limit is not None else found


def summarize_counts(cases: Iterable[dict]) -> dict[str, int]:
    """Cases per overall verdict (all six verdicts present)."""
    counts = _zero()
    for case in cases:
        counts[case_verdict(case)] += 1
    return counts


def environment_line(report: dict) -> str:
    """``AMD EPYC (AuthenticAMD), 2 cores; oneDNN ISA avx512; tensorflow oneDNN on; ...``: the
    facts of ``report["environment"]`` that decide verdicts, in one line ("not recorded" for
    reports written before it existed)."""
    env = report.get("environment")
    if not env:
        return "not recorded"
    cpu = env.get("cpu", {})
    parts = [f"{cpu.get('model', '?')} ({cpu.get('vendor', '?')}), {cpu.get('cores', '?')} cores, "
             f"ISA {cpu.get('isa', '?')}", f"oneDNN ISA {env.get('onednn_isa', '?')}"]
    on = {"True": "on", "False": "off"}
    if "tensorflow" in env:
        parts.append(f"TensorFlow {env['tensorflow'].get('version', '?')} oneDNN "
                     f"{on.get(env['tensorflow'].get('onednn'), '?')}")
    if "torch" in env:
        t = env["torch"]
        parts.append(f"PyTorch {t.get('version', '?')} mkldnn {on.get(t.get('mkldnn'), '?')}, "
                     f"CPU capability {t.get('cpu_capability', '?')}")
    if "jax" in env:
        parts.append(f"JAX {env['jax'].get('version', '?')} on {env['jax'].get('backend', '?')}")
    knobs = env.get("knobs", {})
    shown = [f"{k}={knobs[k]}" for k in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                         "KERAS_BACKEND") if k in knobs]
    if shown:
        parts.append(", ".join(shown))
    blas = env.get("blas") or []
    if blas:
        parts.append("BLAS " + ", ".join(f"{b.get('internal_api', '?')} {b.get('version', '')} "
                                         f"({b.get('num_threads', '?')} threads)".replace("  ", " ")
                                         for b in blas))
    for key, value in sorted((env.get("adapter") or {}).items()):
        parts.append(f"{key} {value}")
    return "; ".join(parts)


def environment_differences(base: dict, new: dict) -> list[tuple[str, str, str]]:
    """``(field, baseline value, new value)`` for every deciding environment field
    (conformance.environment.DECIDING, and each adapter fact) that differs between two runs."""
    b, n = flatten(base.get("environment") or {}), flatten(new.get("environment") or {})
    if not b or not n:
        return []
    fields = list(DECIDING) + sorted({k for k in (*b, *n) if k.startswith("adapter.")})
    return [(f, b.get(f, "absent"), n.get(f, "absent")) for f in fields if b.get(f) != n.get(f)]


def with_findings(report: dict) -> dict:
    """``report`` with its failing cases marked by the catalogue of known findings
    (conformance.findings): a report written before the catalogue existed is annotated in place,
    as a run would have; one that has ``summary.findings`` is left as it is."""
    if "findings" not in report.get("summary", {}):
        known_findings.annotate_report(report)
    return report


def finding_note(case: dict) -> str:
    """``known finding K1 (link)`` / ``new failure (no known finding)`` for a failing case, "" otherwise."""
    ids = case.get("findings") or []
    if ids and not case.get("new"):
        return "known finding " + ", ".join(f"{i} ({known_findings.DOC_PAGE}#{known_findings.anchor(i)})" for i in ids)
    if case.get("new"):
        partly = f"; partly explained by {', '.join(ids)}" if ids else ""
        return f"new failure (no known finding explains it{partly})"
    return ""

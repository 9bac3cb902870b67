"""Compare a run with a baseline run: what got worse, what got better.

Cases are matched by id and compared category by category. A change of
verdict from ``b`` (baseline) to ``n`` (new) is classified:

==================  ==========================================  ==========
class               transition                                  regression
==================  ==========================================  ==========
newly failing       pass/unsupported/quality_warning/waived/     yes
                    absent -> fail
newly erroring      pass/unsupported/fail/absent -> error,       yes
                    timeout or crash
newly unsupported   pass/absent -> unsupported                  yes (coverage lost)
newly passing       anything -> pass                            no
other change        error -> fail, error -> crash, fail ->       no
                    unsupported, pass -> quality_warning, fail
                    -> waived, a category no longer scored
==================  ==========================================  ==========

Worst error ratios (output, gradient) are compared where the verdict did not
change: a ratio that grew by at least ``threshold`` (default 2x) **and** ends
above 0.5 (half the allowed error) is a regression; one that shrank by the
same factor from above 0.5 is listed as an improvement. The 0.5 floor keeps
noise far inside the tolerance (0.001 -> 0.004) out of CI failures. A
non-finite new ratio (nan, inf) where the baseline was finite counts as grown.

Known findings (conformance.findings): every failing case of the new run carries the ids of
the catalogued findings that explain it (a report written before the catalogue is annotated
here), so each table row says which finding explains it or that it is **new**;
:attr:`Comparison.new_regressions` counts the regressed cases no finding explains (``compare
--fail-on new``). A finding that explains some case of the baseline and none of the new run
is listed as disappeared (fixed, or no longer reached), one that appears as appeared.

Runs of different corpus ids (different case sets) are refused with
:class:`CompareError` unless ``shared_only``, which compares the cases both
runs hold. With the same corpus id, a baseline case missing from the new run
is a regression (coverage lost) unless ``shared_only``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from conv_conformance.conformance import findings as known_findings

from . import CATEGORIES, case_verdict, environment_differences, environment_line, fmt_ratio, real
from .markdown import escape

__all__ = ["CompareError", "Change", "Comparison", "compare", "render"]

_ERRORS = frozenset({"error", "timeout", "crash"})
_FAILS = frozenset({"fail", "mutation", "nondeterministic"})
_MAX_ROWS = 50
RATIO_FLOOR = 0.5


class CompareError(ValueError):
    """Two runs that cannot be compared (different case sets without shared_only)."""


@dataclass(frozen=True)
class Change:
    """One case and category whose verdict or worst ratio changed."""
    case_id: str
    layer: str
    category: str
    base: str | None
    new: str | None
    base_ratio: float | None = None
    new_ratio: float | None = None
    message: str = ""
    #: the known findings that explain the new run's failing case (empty: new, or not failing)
    findings: tuple[str, ...] = ()


@dataclass
class Comparison:
    """The differences between a baseline run and a new run (see the module docstring)."""
    base: dict
    new: dict
    threshold: float
    shared_only: bool
    compared: int = 0
    newly_failing: list[Change] = field(default_factory=list)
    newly_erroring: list[Change] = field(default_factory=list)
    newly_unsupported: list[Change] = field(default_factory=list)
    newly_passing: list[Change] = field(default_factory=list)
    other_changes: list[Change] = field(default_factory=list)
    ratio_worse: list[Change] = field(default_factory=list)
    ratio_better: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)      # baseline case ids absent from the new run
    added: list[str] = field(default_factory=list)        # new case ids absent from the baseline
    #: (field, baseline, new) for each deciding environment field that differs (reports.environment_differences)
    environment: list[tuple[str, str, str]] = field(default_factory=list)
    #: known findings that explain some baseline case and no case of the new run, and the reverse
    findings_gone: list[str] = field(default_factory=list)
    findings_appeared: list[str] = field(default_factory=list)

    @property
    def new_regressions(self) -> int:
        """Regressed cases that no known finding explains (``compare --fail-on new`` exits 1 on them)."""
        changed = self.newly_failing + self.newly_erroring + self.newly_unsupported + self.ratio_worse
        return len({c.case_id for c in changed if not c.findings}) + (0 if self.shared_only else len(self.missing))

    @property
    def warnings(self) -> list[str]:
        """One line per deciding environment field the two runs differ in: their verdicts may
        differ for that reason alone."""
        return [f"the baseline ran with {name}={b!r}, the new run with {name}={n!r}"
                for name, b, n in self.environment]

    @property
    def regressions(self) -> int:
        """How many cases regressed in some way (exit status 1 when > 0)."""
        changed = self.newly_failing + self.newly_erroring + self.newly_unsupported + self.ratio_worse
        return len({c.case_id for c in changed}) + (0 if self.shared_only else len(self.missing))


def _classify(base: str | None, new: str | None) -> str:
    if new == "pass":
        return "newly_passing"
    if new in _FAILS and base in (None, "pass", "unsupported", "quality_warning", "waived"):
        return "newly_failing"
    if new in _ERRORS and base not in _ERRORS:
        return "newly_erroring"
    if new == "unsupported" and base in (None, "pass"):
        return "newly_unsupported"
    return "other_changes"


def _grew(base: float, new: float, threshold: float) -> bool:
    """new is at least ``threshold`` times base and above the floor (NaN: worst of all)."""
    if new == base:  # also inf -> inf: an unchanged ratio never grew
        return False
    if math.isnan(new):
        return not math.isnan(base)
    if math.isnan(base):
        return False
    return new > RATIO_FLOOR and (base <= 0.0 or new >= threshold * base)


def compare(base: dict, new: dict, *, threshold: float = 2.0, shared_only: bool = False) -> Comparison:
    """Compare two validated reports; :class:`CompareError` for different corpus ids
    unless ``shared_only``, or for a threshold not above 1."""
    if not threshold > 1.0:
        raise CompareError(f"Argument `--threshold` must be a factor > 1. Received: threshold={threshold!r}")
    if base["corpus_id"] != new["corpus_id"] and not shared_only:
        raise CompareError(
            f"the runs use different case sets: baseline corpus id {base['corpus_id']!r} "
            f"(profile {base['profile']}), new corpus id {new['corpus_id']!r} (profile {new['profile']}). "
            "Rerun with the baseline's profile, or pass --shared-only to compare only the cases both runs hold.")
    result = Comparison(base, new, threshold, shared_only, environment=environment_differences(base, new))
    for report in (base, new):  # a report written before the catalogue existed
        if "findings" not in report.get("summary", {}):
            known_findings.annotate_report(report)
    result.findings_gone = sorted(known_findings.ids(base["cases"]) - known_findings.ids(new["cases"]))
    result.findings_appeared = sorted(known_findings.ids(new["cases"]) - known_findings.ids(base["cases"]))
    base_cases = {c["id"]: c for c in base["cases"]}
    new_cases = {c["id"]: c for c in new["cases"]}
    result.missing = sorted(set(base_cases) - set(new_cases))
    result.added = sorted(set(new_cases) - set(base_cases))
    for case_id in sorted(set(base_cases) & set(new_cases)):
        b, n = base_cases[case_id], new_cases[case_id]
        result.compared += 1
        b_ratio, n_ratio = b.get("worst_ratio") or {}, n.get("worst_ratio") or {}
        for category in (c for c in CATEGORIES if c in b["verdicts"] or c in n["verdicts"]):
            vb, vn = b["verdicts"].get(category), n["verdicts"].get(category)
            rb, rn = real(b_ratio.get(category)), real(n_ratio.get(category))
            change = Change(case_id, n["layer"], category, vb, vn, rb, rn, n.get("message") or "",
                            tuple(n.get("findings") or ()))
            if vb != vn:
                getattr(result, _classify(vb, vn)).append(change)
            elif rb is not None and rn is not None:
                if _grew(rb, rn, threshold):
                    result.ratio_worse.append(change)
                elif _grew(rn, rb, threshold):
                    result.ratio_better.append(change)
    return result


def _run_line(label: str, report: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in sorted(report["adapter"]["versions"].items()) if v)
    return (f"**{label}**: {escape(report['adapter']['name'])} ({escape(versions) or 'no versions'}), "
            f"profile {escape(report['profile'])}, {report['dtype']}, corpus `{escape(report['corpus_id'], None)}`, "
            f"{report['summary']['cases']} cases, {case_totals(report)}, started {report['started']}; "
            f"environment: {escape(environment_line(report), 600)}.  ")


def case_totals(report: dict) -> str:
    """``"3 fail, 2 error"`` style tally of overall verdicts, or "all pass"."""
    counts: dict[str, int] = {}
    for c in report["cases"]:
        v = case_verdict(c)
        counts[v] = counts.get(v, 0) + 1
    bad = [f"{counts[v]} {v}" for v in ("fail", "mutation", "nondeterministic", "error", "timeout", "crash",
                                        "unsupported", "quality_warning", "waived")
           if counts.get(v)]
    return ", ".join(bad) if bad else "all pass"


def _cases(changes: list[Change]) -> int:
    return len({c.case_id for c in changes})


def _table(title: str, changes: list[Change], *, ratios: bool = False) -> list[str]:
    """One row per case and verdict transition (its categories joined)."""
    if not changes:
        return []
    rows: dict[tuple, list[Change]] = {}
    for ch in changes:
        rows.setdefault((ch.case_id, ch.base, ch.new), []).append(ch)
    lines = [f"### {title} ({len(rows)})", "",
             "| case | layer | categories | baseline | new | known finding | worst ratio | message |",
             "|---|---|---|---|---|---|---|---|"]
    for (case_id, base, new), group in list(rows.items())[:_MAX_ROWS]:
        ch = group[0]
        cats = ", ".join(c.category.replace("_", " ") for c in group)
        ratio = "; ".join(f"{c.category}: {fmt_ratio(c.base_ratio)} → {fmt_ratio(c.new_ratio)}"
                          for c in group if c.base_ratio is not None or c.new_ratio is not None) or "-"
        known = ", ".join(f"[{escape(f)}]({known_findings.DOC_PAGE}#{known_findings.anchor(f)})"
                          for f in ch.findings) or ("**new**" if new in _ERRORS | _FAILS else "-")
        lines.append(f"| {escape(case_id)} | {escape(ch.layer)} | {cats} | {base or 'not scored'} | "
                     f"{new or 'not scored'} | {known} | {ratio} | {'' if ratios else escape(ch.message, 120)} |")
    if len(rows) > _MAX_ROWS:
        lines.append(f"\n... and {len(rows) - _MAX_ROWS} more")
    return lines + [""]


def _ids(title: str, ids: list[str]) -> list[str]:
    if not ids:
        return []
    shown = ", ".join(escape(i) for i in ids[:_MAX_ROWS])
    more = f" ... and {len(ids) - _MAX_ROWS} more" if len(ids) > _MAX_ROWS else ""
    return [f"### {title} ({len(ids)})", "", shown + more, ""]


def render(result: Comparison) -> str:
    """The comparison as Markdown, for a CI job summary or a pull-request comment."""
    n = result.regressions
    head = (f"❌ {n} regression{'s' if n != 1 else ''} ({result.new_regressions} new, "
            f"{n - result.new_regressions} explained by known findings)" if n else "✅ no regressions")
    lines = [f"## conv-conformance compare: {head}", "",
             _run_line("Baseline", result.base), _run_line("New", result.new), "",
             f"Compared {result.compared} cases present in both runs"
             + (" (--shared-only: cases in only one run are ignored)" if result.shared_only else "")
             + f". Ratio changes count when the worst error ratio changes by a factor of "
             f"{result.threshold:g} or more and is above {RATIO_FLOOR:g} after (worse) or before (better).", ""]
    if result.warnings:
        lines += ["**Warning: the runs differ in environment fields that decide verdicts**, so a change "
                  "below may come from the machine, not the implementation:", ""]
        lines += [f"- {escape(w, 300)}" for w in result.warnings] + [""]
    elif not (result.base.get("environment") and result.new.get("environment")):
        lines += ["Note: a run without a recorded environment: whether the machines differ is unknown.", ""]
    if result.base["dtype"] != result.new["dtype"]:
        lines += [f"Note: the runs use different dtypes ({result.base['dtype']} vs {result.new['dtype']}).", ""]
    rows = [("newly failing", _cases(result.newly_failing), "yes"),
            ("newly erroring (error, timeout, crash)", _cases(result.newly_erroring), "yes"),
            ("newly unsupported", _cases(result.newly_unsupported), "yes"),
            ("worst ratio grew", _cases(result.ratio_worse), "yes"),
            ("missing from the new run", len(result.missing), "no" if result.shared_only else "yes"),
            ("newly passing", _cases(result.newly_passing), "no"),
            ("worst ratio shrank", _cases(result.ratio_better), "no"),
            ("other verdict changes", _cases(result.other_changes), "no"),
            ("only in the new run", len(result.added), "no")]
    lines += ["| change | cases | regression |", "|---|---:|---|"]
    lines += [f"| {name} | {count} | {reg} |" for name, count, reg in rows] + [""]
    for title, gone in (("Known findings that disappeared (fixed, or no case reaches them now)", result.findings_gone),
                        ("Known findings that appeared", result.findings_appeared)):
        lines += _ids(title, gone)
    for label, report in (("Baseline", result.base), ("New", result.new)):
        text = known_findings.summary_text(report["summary"].get("findings"))
        if text:
            lines += [f"{label} failing cases: {escape(text, 400)}.  "]
    lines += [""]
    lines += _table("Newly failing", result.newly_failing)
    lines += _table("Newly erroring", result.newly_erroring)
    lines += _table("Newly unsupported", result.newly_unsupported)
    lines += _table("Worst error ratio grew", result.ratio_worse, ratios=True)
    if not result.shared_only:
        lines += _ids("Missing from the new run", result.missing)
    lines += _table("Newly passing", result.newly_passing)
    lines += _table("Worst error ratio shrank", result.ratio_better, ratios=True)
    lines += _table("Other verdict changes", result.other_changes)
    return "\n".join(lines)

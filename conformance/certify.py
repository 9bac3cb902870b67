"""Certification bundles: ``conv-conformance certify`` writes one, ``verify`` checks one.

``certify --adapter A --profile P --out BUNDLE`` runs every case of the profile (the
required list of this suite version) and writes a directory holding exactly
:data:`BUNDLE_FILES`:

==================  =================================================================
``report.json``     the run's report (schema ``reports/schema.json``)
``cases.jsonl``     one record per case (id, layer, kind, verdicts, ratios, waiver) in
                    case-set order, each carrying ``prev`` (the previous record's hash)
                    and ``hash`` = sha256 of its canonical JSON without ``hash``: a chain
``environment.json`` the environment the adapter's worker saw (conformance.environment)
``suite.json``      suite version, digest of the installed suite's files, corpus id,
                    hash of the expanded required list, profile, dtype, chain head
``command.json``    the certify options, as data
``waivers.json``    the waiver entries given, what they waived, and the warnings
``STATEMENT.json``  the claim: adapter, versions, declaration, verdict, levels, coverage
``MANIFEST.sha256`` ``sha256  name`` of every other file
==================  =================================================================

:func:`verify` re-derives the corpus and the required list from the suite version
and checks everything listed in docs/certification.md; it returns the list of checks
with their outcomes, and the bundle verifies only if every check passes.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from conv_conformance.oracle.cases import case_set, corpus_id
from conv_conformance.vocabulary import DEFAULT_TOLERANCE, PASSING, PROFILES, VERDICTS

from . import waivers as waiver_mod
from .levels import LevelTally, coverage_line, mandatory_categories, parse_declaration
from .report import ReportWriter, jsonable, suite_version
from .session import RunConfig, Session, UsageError, load_waivers

__all__ = ["BUNDLE_FILES", "KNOWN_VERSIONS", "WITHDRAWN_VERSIONS", "CertifyOptions", "Certified", "suite_digest",
           "required_hash", "chain", "certify", "verify", "Check", "verification_report", "outcome",
           "VERIFIED_CONFORMANT", "VERIFIED_NOT_CONFORMANT", "NOT_VERIFIED"]

BUNDLE_FILES = ("report.json", "cases.jsonl", "environment.json", "suite.json", "command.json",
                "waivers.json", "STATEMENT.json", "MANIFEST.sha256")
#: Suite versions a bundle may name; a version is added here when it is released.
KNOWN_VERSIONS = ("0.1.0",)
#: Released versions withdrawn (a fault found in them): version -> reason with link.
WITHDRAWN_VERSIONS: dict[str, str] = {}
#: Verdicts a certified run may hold (``unsupported`` only where the declaration allows it).
ALLOWED = PASSING
_PACKAGES = ("reference", "oracle", "conformance", "reports")
_SUFFIXES = (".py", ".json", ".html")


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=1)
def suite_digest() -> str:
    """sha256 over (path, sha256) of every .py/.json/.html file of the installed suite's four packages."""
    h = hashlib.sha256()
    for name in _PACKAGES:
        root = Path(importlib.import_module(f"conv_conformance.{name}").__file__).parent
        for path in sorted(p for p in root.rglob("*") if p.suffix in _SUFFIXES and "__pycache__" not in p.parts):
            h.update(f"{name}/{path.relative_to(root).as_posix()}\0{_sha(path.read_bytes())}\n".encode())
    return h.hexdigest()


def required_hash(profile: str, dtype: str, case_ids: Sequence[str]) -> str:
    """sha256 of the expanded required list: profile, dtype and every case id in order."""
    return _sha("\n".join([profile, dtype, *case_ids]).encode())


def _genesis(suite: Mapping[str, Any]) -> str:
    return _sha(_canonical({k: suite[k] for k in ("suite_version", "suite_digest", "corpus_id",
                                                  "required_hash", "profile", "dtype")}))


_RECORD_KEYS = ("id", "layer", "kind", "verdicts", "worst_ratio", "strict_ratio", "waiver")


def chain(records: Sequence[Mapping[str, Any]], genesis: str) -> list[dict]:
    """The per-case log: each record (only :data:`_RECORD_KEYS`) with ``seq``, ``prev`` and ``hash``."""
    out, prev = [], genesis
    for n, record in enumerate(records):
        entry = {k: record.get(k) for k in _RECORD_KEYS}
        entry.update(seq=n, prev=prev)
        entry["hash"] = prev = _sha(_canonical(entry))
        out.append(entry)
    return out


# ------------------------------------------------------------------ certify

@dataclass(frozen=True)
class CertifyOptions:
    """What a certification runs: the adapter, the profile (every case of it is required), the
    dtype and tolerance mode, an optional waiver file, the bundle directory and the workers."""

    adapter: str
    profile: str
    out: str
    dtype: str = "float32"
    tolerance: str = DEFAULT_TOLERANCE
    waivers: str | None = None
    jobs: int = 1
    timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise UsageError(f"Argument `profile` must be one of {', '.join(PROFILES)}. Received: {self.profile!r}")
        self.config  # noqa: B018 - checks dtype and tolerance

    @property
    def config(self) -> RunConfig:
        return RunConfig(self.adapter, dtype=self.dtype, tolerance=self.tolerance, timeout=self.timeout,
                         jobs=self.jobs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Certified:
    """A written bundle: its directory, the statement it holds, and whether it was interrupted
    (then no bundle is left)."""

    out: Path
    statement: dict | None
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def conformant(self) -> bool:
        return bool(self.statement and self.statement["conformant"])


def certify(options: CertifyOptions, *, on_result: Callable[[Any], None] | None = None) -> Certified:
    """Run the profile's required cases through one :class:`~conformance.session.Session` and
    write the bundle. UsageError for a non-empty ``out``, an adapter that does not load or has no
    declaration; an interrupted run leaves no bundle."""
    out = Path(options.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"Argument `--out` must name a new or empty directory (a bundle holds only its "
                         f"own files). Received: {str(out)!r}, which is not empty")
    # a bundle always lists the waivers it applied, none included
    waivers = load_waivers(options.waivers) or waiver_mod.WaiverSet([])
    cases = case_set(options.profile)
    ids = [c.id for c in cases]
    suite = {"suite_version": suite_version(), "suite_digest": suite_digest(), "corpus_id": corpus_id(cases),
             "required_hash": required_hash(options.profile, options.dtype, ids), "required_cases": len(ids),
             "profile": options.profile, "dtype": options.dtype}
    session = Session(options.config, cases, waivers=waivers)
    writer = ReportWriter(out, session.meta(profile=options.profile, corpus_id=suite["corpus_id"]))
    undeclared: list[str] = []

    def ready(info: Any) -> None:
        if info.declaration is None:
            undeclared.append(info.name)

    try:
        outcome = session.run(writer, on_ready=ready, on_result=on_result, stop=lambda: bool(undeclared))
    except UsageError:
        _clear(out)
        raise
    if undeclared:
        _clear(out)
        raise UsageError(f"adapter {undeclared[0]!r} has no declaration: certify needs one to know which "
                         f"cases are mandatory (docs/writing-an-adapter.md, conformance.levels.declare)")
    if outcome.interrupted:
        _clear(out)
        return Certified(out, None, interrupted=True)
    waiver_summary = outcome.summary["waivers"]
    report = json.loads((out / "report.json").read_text("utf-8"))
    entries = chain(report["cases"], _genesis(suite))
    suite["chain_head"] = entries[-1]["hash"] if entries else _genesis(suite)
    _write(out / "cases.jsonl", "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    _write_json(out / "environment.json", report.get("environment") or {})
    _write_json(out / "suite.json", suite)
    _write_json(out / "command.json", {"options": options.to_json()})
    _write_json(out / "waivers.json", {"waiver": [w.to_json() for w in waivers.waivers],
                                       **waiver_summary})
    statement = _statement(report, suite)
    _write_json(out / "STATEMENT.json", jsonable(statement))
    _write_manifest(out)
    return Certified(out, statement, warnings=list(waiver_summary["warnings"]))


def _clear(out: Path) -> None:
    for name in BUNDLE_FILES + ("report.partial.jsonl",):
        (out / name).unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")


def _write_json(path: Path, obj: Any) -> None:
    _write(path, json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


def _write_manifest(out: Path) -> None:
    lines = [f"{_sha((out / n).read_bytes())}  {n}\n" for n in sorted(BUNDLE_FILES) if n != "MANIFEST.sha256"]
    _write(out / "MANIFEST.sha256", "".join(lines))


def _claim(adapter: Mapping[str, Any], conformant: bool, suite: Mapping[str, Any], coverage: Mapping,
           levels: Mapping) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in sorted((adapter.get("versions") or {}).items()) if v)
    return (f"{adapter['name']} ({versions or 'no versions reported'}) is "
            f"{'CONFORMANT' if conformant else 'NOT CONFORMANT'} to conv-conformance {suite['suite_version']} "
            f"at profile {suite['profile']}, dtype {suite['dtype']}, corpus {suite['corpus_id']}: "
            f"{coverage_line(coverage, levels)}")


def _statement(report: Mapping[str, Any], suite: Mapping[str, Any]) -> dict:
    s = report["summary"]
    return {"claim": _claim(report["adapter"], s["conformant"], suite, s["coverage"], s["levels"]),
            "conformant": s["conformant"], "adapter": report["adapter"], "suite": dict(suite),
            "counts": s["counts"], "coverage": s["coverage"], "levels": s["levels"],
            "waivers_applied": [w["id"] for w in (s.get("waivers") or {}).get("applied", [])],
            "quality_warnings": sum(1 for c in report["cases"] if "quality_warning" in c["verdicts"].values()),
            "created": report["finished"]}


# ------------------------------------------------------------------ verify

@dataclass
class Check:
    """One verification check: its name, whether it held, and what was found."""

    name: str
    ok: bool
    details: list[str] = field(default_factory=list)


class _Fail(Exception):
    pass


def _load_json(bundle: Path, name: str) -> Any:
    try:
        return json.loads((bundle / name).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise _Fail(f"{name} is missing or not JSON: {exc}") from None


def _ratio(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        return float(value)  # "inf", "nan"
    return float(value)


def _consistent(category: str, verdict: str, ratio: float | None, strict: float | None) -> str | None:
    """Why a category's verdict contradicts its recorded ratios (None: consistent)."""
    if category not in ("output", "gradient"):
        return None
    within = ratio is not None and ratio <= 1.0
    strict_within = strict is None or strict <= 1.0
    if verdict == "pass" and not (within and strict_within):
        return f"pass with ratio {ratio} / strict ratio {strict}"
    if verdict == "quality_warning" and not (within and not strict_within):
        return f"quality_warning needs ratio <= 1 < strict ratio; recorded {ratio} / {strict}"
    if verdict in ("fail", "nondeterministic") and within:
        return f"{verdict} with ratio {ratio} <= 1"
    if verdict in ("unsupported", "error", "timeout", "crash") and ratio is not None:
        return f"{verdict} but a ratio ({ratio}) was recorded, so values were returned and compared"
    return None


def verify(bundle: str | os.PathLike) -> list[Check]:
    """Every check of a bundle, in order; the bundle verifies when all hold (docs/certification.md)."""
    bundle = Path(bundle)
    checks: list[Check] = []

    def check(name: str, fn: Any) -> Any:
        try:
            details, value = fn()
        except _Fail as exc:
            checks.append(Check(name, False, [str(exc)]))
            return None
        except Exception as exc:  # noqa: BLE001 - a malformed bundle must fail a check, not crash verify
            checks.append(Check(name, False, [f"{type(exc).__name__}: {exc}"]))
            return None
        checks.append(Check(name, not details, details))
        return value

    def files():
        names = {p.name for p in bundle.iterdir()}
        extra = sorted(names - set(BUNDLE_FILES))
        missing = sorted(set(BUNDLE_FILES) - names)
        dirs = sorted(p.name for p in bundle.iterdir() if p.is_dir())
        return ([f"unknown file {n}" for n in extra] + [f"missing file {n}" for n in missing]
                + [f"{n} is a directory" for n in dirs]), None

    def manifest():
        listed: dict[str, str] = {}
        problems = []
        for line in (bundle / "MANIFEST.sha256").read_text("utf-8").splitlines():
            digest, _, name = line.partition("  ")
            if name in listed:
                problems.append(f"{name} listed twice")
            listed[name] = digest
        for name in BUNDLE_FILES:
            if name == "MANIFEST.sha256":
                continue
            if name not in listed:
                problems.append(f"{name} is not in the manifest")
            elif not (bundle / name).is_file() or _sha((bundle / name).read_bytes()) != listed[name]:
                problems.append(f"{name} does not match its manifest hash")
        problems += [f"manifest lists unknown file {n}" for n in listed if n not in BUNDLE_FILES]
        return problems, None

    checks_files = check("only the listed files", files)
    check("manifest", manifest)
    suite = check("suite.json readable", lambda: ([], _load_json(bundle, "suite.json")))
    statement = check("STATEMENT.json readable", lambda: ([], _load_json(bundle, "STATEMENT.json")))
    report = check("report.json readable", lambda: ([], _load_json(bundle, "report.json")))
    if suite is None or statement is None or report is None:
        return checks
    del checks_files

    def version():
        v = suite.get("suite_version")
        problems = []
        if v not in KNOWN_VERSIONS:
            problems.append(f"suite version {v!r} is not a known release ({', '.join(KNOWN_VERSIONS)})")
        if v in WITHDRAWN_VERSIONS:
            problems.append(f"suite version {v} was withdrawn: {WITHDRAWN_VERSIONS[v]}")
        if v != suite_version():
            problems.append(f"the bundle names suite {v}; this verifier is suite {suite_version()}: "
                            f"verify with the version the bundle names")
        elif suite.get("suite_digest") != suite_digest():
            problems.append("the suite digest differs from the installed suite's files "
                            f"({suite.get('suite_digest')} vs {suite_digest()})")
        return problems, None

    check("suite version known, not withdrawn, digest matches", version)

    def rederive():
        cases = case_set(suite["profile"])
        ids = [c.id for c in cases]
        problems = []
        if suite.get("corpus_id") != corpus_id(cases):
            problems.append(f"corpus id {suite.get('corpus_id')} does not re-derive: profile {suite['profile']} "
                            f"of suite {suite_version()} has corpus {corpus_id(cases)}")
        if suite.get("required_hash") != required_hash(suite["profile"], suite["dtype"], ids):
            problems.append("the hash of the required list does not re-derive from profile and dtype")
        for key in ("corpus_id", "profile", "dtype", "suite_version"):
            if report.get(key) != suite.get(key):
                problems.append(f"report.json {key}={report.get(key)!r} but suite.json says {suite.get(key)!r}")
        return problems, cases

    cases = check("corpus and required list re-derive", rederive)

    def chained():
        lines = (bundle / "cases.jsonl").read_text("utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        prev, problems = _genesis(suite), []
        for n, r in enumerate(records):
            body = {k: v for k, v in r.items() if k != "hash"}
            if r.get("prev") != prev or r.get("seq") != n:
                problems.append(f"record {n} ({r.get('id')}) does not follow record {n - 1}")
                break
            if _sha(_canonical(body)) != r.get("hash"):
                problems.append(f"record {n} ({r.get('id')}) does not match its hash")
                break
            prev = r["hash"]
        head = suite.get("chain_head")
        if not problems and prev != head:
            problems.append(f"the chain ends at {prev}, suite.json names head {head}")
        if statement.get("suite", {}).get("chain_head") != head:
            problems.append("STATEMENT.json names a different chain head than suite.json")
        return problems, records

    records = check("hash chain", chained)
    if records is None or cases is None:
        return checks

    def complete():
        seen: dict[str, int] = {}
        for r in records:
            seen[r["id"]] = seen.get(r["id"], 0) + 1
        required = [c.id for c in cases]
        problems = [f"required case {i} is missing" for i in required if i not in seen]
        problems += [f"case {i} appears {n} times" for i, n in seen.items() if n > 1]
        problems += [f"case {i} is not in the required list" for i in seen if i not in set(required)]
        if [r["id"] for r in records] != [i for i in required if i in seen] and not problems:
            problems.append("the cases are not in the required list's order")
        in_report = {c["id"]: (c["verdicts"], c.get("worst_ratio")) for c in report.get("cases", [])}
        for r in records:
            if in_report.get(r["id"]) != (r["verdicts"], r["worst_ratio"]):
                problems.append(f"report.json disagrees with cases.jsonl on {r['id']}")
        if len(in_report) != len(records):
            problems.append(f"report.json has {len(in_report)} cases, cases.jsonl {len(records)}")
        return problems[:50], None

    check("every required case exactly once", complete)

    def ratios():
        problems = []
        for r in records:
            for cat, verdict in r["verdicts"].items():
                original = (r.get("waiver") or {}).get("waived", {}).get(cat) if verdict == "waived" else verdict
                why = _consistent(cat, original or verdict, _ratio((r.get("worst_ratio") or {}).get(cat)),
                                  _ratio((r.get("strict_ratio") or {}).get(cat)))
                if why:
                    problems.append(f"{r['id']} {cat}: {why}")
        return problems[:50], None

    check("verdicts consistent with their ratios", ratios)

    declaration = statement.get("adapter", {}).get("declaration")

    def allowed():
        problems = []
        decl = parse_declaration(declaration) if declaration is not None else None
        if decl is None:
            problems.append("the statement has no declaration")
        by_id = {c.id: c for c in cases}
        for r in records:
            case = by_id.get(r["id"])
            for cat, verdict in r["verdicts"].items():
                if verdict not in VERDICTS:
                    problems.append(f"{r['id']} {cat}: {verdict!r} is not a verdict")
                elif verdict == "unsupported" and case is not None and cat in mandatory_categories(
                        decl, case.layer, case.spec, case.kind, suite["dtype"]):
                    problems.append(f"{r['id']} {cat}: declined, but the declaration makes it mandatory")
        return problems[:50], None

    check("no mandatory case declined", allowed)

    def waivers_valid():
        data = _load_json(bundle, "waivers.json")
        entries = waiver_mod.parse({"waiver": data.get("waiver", [])}, suite["suite_version"], source="waivers.json")
        by_id = {w.id: w for w in entries}
        environment = _load_json(bundle, "environment.json")
        problems = []
        for r in records:
            w = r.get("waiver")
            if w is None:
                if "waived" in r["verdicts"].values():
                    problems.append(f"{r['id']} is waived without a waiver")
                continue
            entry = by_id.get(w.get("id"))
            if entry is None:
                problems.append(f"{r['id']} names waiver {w.get('id')!r}, which waivers.json does not hold")
                continue
            why = entry.conditions(report["adapter"], environment, suite["dtype"])
            if why or not entry.covers(r["id"]):
                problems.append(f"waiver {entry.id} does not cover {r['id']}: {'; '.join(why) or 'no case pattern matches'}")
            for cat, orig in (w.get("waived") or {}).items():
                if r["verdicts"].get(cat) != "waived" or (entry.categories and cat not in entry.categories):
                    problems.append(f"{r['id']} {cat}: the waiver record does not match the verdicts")
        if report.get("environment") != environment:
            problems.append("environment.json differs from report.json's environment")
        return problems[:50], None

    check("waivers valid", waivers_valid)

    def claim():
        tally = LevelTally(declaration)
        by_id = {c.id: c for c in cases}
        failing = False
        for r in records:
            case = by_id.get(r["id"])
            if case is None:
                continue
            tally.add({"layer": case.layer, "spec": case.spec, "verdicts": r["verdicts"]})
            failing |= any(v not in ALLOWED for v in r["verdicts"].values())
        conformant = not failing and report.get("interrupted") is not True
        problems = []
        if statement.get("conformant") is not conformant:
            problems.append(f"the statement claims conformant={statement.get('conformant')}, the records give {conformant}")
        if (report.get("summary") or {}).get("conformant") is not conformant:
            problems.append(f"report.json's summary says conformant={(report.get('summary') or {}).get('conformant')}, "
                            f"the records give {conformant}")
        if statement.get("claim") != _claim(report.get("adapter") or {}, conformant, suite, tally.coverage(),
                                            tally.levels()):
            problems.append("the statement's claim text is not the one the records give")
        if statement.get("levels") != tally.levels():
            problems.append("the statement's per-layer levels differ from those the records give")
        if statement.get("coverage") != tally.coverage():
            problems.append("the statement's coverage differs from the records'")
        if statement.get("suite") != suite:
            problems.append("the statement names a different suite/corpus/required list than suite.json")
        if statement.get("adapter") != report.get("adapter"):
            problems.append("the statement names a different adapter than report.json")
        return problems, None

    check("statement consistent with the records", claim)

    def command():
        data = _load_json(bundle, "command.json")
        options = data.get("options") if isinstance(data, dict) else None
        if not isinstance(options, dict):
            raise _Fail(f"command.json must hold the certify options as {{\"options\": {{...}}}}. Received: {data!r}")
        try:
            stored = CertifyOptions(**options)
        except (TypeError, ValueError) as exc:
            raise _Fail(f"command.json options are not certify options: {exc}") from None
        problems = []
        if stored.profile != suite["profile"] or stored.dtype != suite["dtype"]:
            problems.append(f"the options' profile/dtype {stored.profile}/{stored.dtype} differ from the bundle's "
                            f"{suite['profile']}/{suite['dtype']}")
        if stored.adapter not in (report["adapter"].get("name"), report["adapter"].get("target")):
            problems.append(f"the options' adapter {stored.adapter!r} is not the report's adapter")
        if report.get("tolerance", stored.tolerance) != stored.tolerance:
            problems.append(f"the options' tolerance {stored.tolerance!r} is not the report's {report.get('tolerance')!r}")
        return problems, None

    check("certify options", command)
    return checks


#: ``verify``'s exit statuses: an authentic bundle that records CONFORMANT; an authentic bundle that
#: records NOT CONFORMANT; a bundle that does not verify (altered, incomplete or inconsistent).
VERIFIED_CONFORMANT, VERIFIED_NOT_CONFORMANT, NOT_VERIFIED = 0, 1, 3


def outcome(bundle: Path, checks: Sequence[Check]) -> tuple[int, str]:
    """The exit status and the closing line of a verification: what an authentic bundle records,
    or that the bundle does not verify."""
    if not checks or not all(c.ok for c in checks):
        return NOT_VERIFIED, f"NOT VERIFIED: {sum(not c.ok for c in checks)} check(s) failed"
    conformant = json.loads((bundle / "STATEMENT.json").read_text("utf-8"))["conformant"]
    if conformant:
        return VERIFIED_CONFORMANT, "VERIFIED: the bundle is authentic and records CONFORMANT"
    return VERIFIED_NOT_CONFORMANT, "VERIFIED: the bundle is authentic and records NOT CONFORMANT"


def verification_report(bundle: Path, checks: Sequence[Check]) -> str:
    """The printed verification report: one line per check, details indented, then the verdict."""
    lines = [f"verification of {bundle}"]
    for c in checks:
        lines.append(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}")
        lines += [f"         {d}" for d in c.details[:20]]
        if len(c.details) > 20:
            lines.append(f"         ... and {len(c.details) - 20} more")
    ok = bool(checks) and all(c.ok for c in checks)
    if ok:
        try:
            lines.append("claim: " + json.loads((bundle / "STATEMENT.json").read_text("utf-8"))["claim"])
        except (OSError, ValueError, KeyError):
            pass
    lines.append(outcome(bundle, checks)[1])
    return "\n".join(lines)

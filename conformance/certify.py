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
``results/``        ``<sha256>.npz`` per scored case: every value the adapter returned
                    (conformance.results_store), named by the hash its record holds
==================  =================================================================

``certify --from-run DIR`` writes the same bundle from a run made with ``run --keep-results``
(:func:`certify_from_run`), without scoring anything again.

:func:`verify` re-derives the corpus, the required list, every case's inputs, expected values
and allowed errors from the suite version, **re-scores every stored result** with
:func:`conformance.scoring.evaluate` (a :class:`~conformance.results_store.Replay` plays the
adapter back), and recomputes verdicts, ratios, counts, levels and the claim: the only thing
it trusts is the results. :func:`audit` (``verify --rerun N --adapter A``) re-executes N cases
chosen from the bundle's hash and compares the new results with the stored ones. Both return
the list of checks with their outcomes; a bundle verifies only if every check passes.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import json
import math
import os
import random
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from conv_conformance.oracle.case import Case
from conv_conformance.oracle.cases import case_set, corpus_id
from conv_conformance.vocabulary import CATEGORIES, DEFAULT_TOLERANCE, FAILING, PASSING, PROFILES, VERDICTS, worst_verdict

from . import results_store
from . import waivers as waiver_mod
from .levels import LevelTally, conformant as levels_conformant, coverage_line, mandatory_categories, parse_declaration
from .report import ReportWriter, jsonable, suite_version
from .resume import ResumeError, load_run
from .runner import WorkerStartError, run as run_cases
from .scoring import ScoringOptions, evaluate
from .session import RunConfig, Session, UsageError, load_waivers

__all__ = ["BUNDLE_FILES", "RESULTS_DIR", "KNOWN_VERSIONS", "WITHDRAWN_VERSIONS", "CertifyOptions", "Certified",
           "suite_digest", "required_hash", "chain", "certify", "certify_from_run", "verify", "audit", "audit_sample",
           "Check", "verification_report", "outcome", "VERIFIED_CONFORMANT", "VERIFIED_NOT_CONFORMANT", "NOT_VERIFIED"]

BUNDLE_FILES = ("report.json", "cases.jsonl", "environment.json", "suite.json", "command.json",
                "waivers.json", "STATEMENT.json", "MANIFEST.sha256")
#: The directory of the stored results, one ``<sha256>.npz`` per scored case.
RESULTS_DIR = "results"
#: Categories whose values a bundle does not keep (conformance.results_store.NOT_KEPT): their
#: verdicts are what the run recorded, and only an audit by re-execution checks them.
AUDIT_ONLY = ("initializer",)
#: Recorded and recomputed ratios may differ this much (absolute, plus as much relative): the
#: verifier's float64 reference may round differently on another machine's BLAS; a verdict must
#: still agree exactly.
RATIO_SLACK = 1e-6
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


_RECORD_KEYS = ("id", "layer", "kind", "verdicts", "worst_ratio", "strict_ratio", "waiver", "results")


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
    repeat: int = 0
    #: the run directory the bundle was made from (certify --from-run), None: certify ran the cases
    from_run: str | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise UsageError(f"Argument `profile` must be one of {', '.join(PROFILES)}. Received: {self.profile!r}")
        self.config  # noqa: B018 - checks dtype and tolerance

    @property
    def config(self) -> RunConfig:
        return RunConfig(self.adapter, dtype=self.dtype, tolerance=self.tolerance, timeout=self.timeout,
                         jobs=self.jobs, repeat=self.repeat)

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
    out = _new_bundle_dir(options.out)
    # a bundle always lists the waivers it applied, none included
    waivers = load_waivers(options.waivers) or waiver_mod.WaiverSet([])
    cases = case_set(options.profile)
    suite = _suite(options, cases)
    session = Session(replace(options.config, results=str(out / RESULTS_DIR)), cases, waivers=waivers)
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
    return _seal(out, options, suite, waivers, outcome.summary["waivers"], out / RESULTS_DIR, move=True)


def _new_bundle_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"Argument `--out` must name a new or empty directory (a bundle holds only its "
                         f"own files). Received: {str(out)!r}, which is not empty")
    return out


def _suite(options: CertifyOptions, cases: Sequence[Any]) -> dict[str, Any]:
    ids = [c.id for c in cases]
    return {"suite_version": suite_version(), "suite_digest": suite_digest(), "corpus_id": corpus_id(cases),
            "required_hash": required_hash(options.profile, options.dtype, ids), "required_cases": len(ids),
            "profile": options.profile, "dtype": options.dtype}


def certify_from_run(run_dir: str | os.PathLike, out: str) -> Certified:
    """A bundle from a run already made with ``run --keep-results`` (its report.json, run.json
    and stored results), scoring nothing again. UsageError when the run cannot be certified: not
    a whole profile, interrupted, read from files (``--cases``), without stored results or
    without a declaration. The bundle verifies like one certify wrote (``verify``)."""
    run_dir = Path(run_dir)
    try:
        run_options = load_run(run_dir)["options"]
        report = json.loads((run_dir / "report.json").read_text("utf-8"))
    except (ResumeError, OSError, ValueError) as exc:
        raise UsageError(f"Argument `--from-run` must name a finished run directory (report.json, run.json). "
                         f"Received: {str(run_dir)!r}: {exc}") from None
    problems = []
    if report.get("interrupted"):
        problems.append("the run was interrupted (finish it with run --resume)")
    if report.get("corpus") is not None or run_options.get("cases"):
        problems.append("the run scored a corpus read from files (--cases); certify a profile")
    if run_options.get("layers"):
        problems.append("the run scored only some layers (--layers); a bundle holds every required case")
    if report.get("profile") not in PROFILES:
        problems.append(f"the run's profile {report.get('profile')!r} is not one of {', '.join(PROFILES)}")
    if not run_options.get("keep_results") or not (run_dir / RESULTS_DIR).is_dir():
        problems.append("the run kept no results (run it with --keep-results)")
    if (report.get("adapter") or {}).get("declaration") is None:
        problems.append("the adapter has no declaration: certify needs one to know which cases are mandatory")
    if problems:
        raise UsageError(f"Argument `--from-run`: {run_dir} cannot be certified: {'; '.join(problems)}")
    options = CertifyOptions(adapter=run_options["adapter"], profile=report["profile"], out=out, dtype=report["dtype"],
                             tolerance=report.get("tolerance", DEFAULT_TOLERANCE), waivers=run_options.get("waivers"),
                             jobs=report.get("jobs", 1), timeout=report.get("timeout") or 60.0,
                             repeat=report.get("repeat", 0), from_run=str(run_dir))
    cases = case_set(options.profile)
    if [c["id"] for c in report["cases"]] != [c.id for c in cases]:
        raise UsageError(f"Argument `--from-run`: {run_dir} does not hold every case of profile {options.profile} "
                         f"in order ({len(report['cases'])} of {len(cases)} cases)")
    target = _new_bundle_dir(out)
    target.mkdir(parents=True, exist_ok=True)
    waivers = load_waivers(options.waivers) or waiver_mod.WaiverSet([])
    summary = (report.get("summary") or {}).get("waivers") or {"applied": [], "warnings": []}
    shutil.copyfile(run_dir / "report.json", target / "report.json")
    return _seal(target, options, _suite(options, cases), waivers, summary, run_dir / RESULTS_DIR, move=False)


def _seal(out: Path, options: CertifyOptions, suite: dict, waivers: Any, waiver_summary: Mapping,
          raw: Path, *, move: bool) -> Certified:
    """Write everything but report.json (already in ``out``): each case's results from ``raw``
    (``<case id>.npz``) under the hash its record names, the chain, the statement, the manifest."""
    report = json.loads((out / "report.json").read_text("utf-8"))
    stored = out / RESULTS_DIR
    staged = stored.with_name(RESULTS_DIR + ".staged") if move else None
    if move and raw.is_dir():
        os.replace(raw, staged)
        raw = staged
    stored.mkdir(exist_ok=True)
    for record in report["cases"]:
        source = results_store.path_for(raw, record["id"])
        record["results"] = None
        if source.is_file():
            digest = results_store.sha256_file(source)
            (os.replace if move else shutil.copyfile)(source, stored / f"{digest}.npz")
            record["results"] = digest
    if staged is not None and staged.exists():
        shutil.rmtree(staged)
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
    shutil.rmtree(out / RESULTS_DIR, ignore_errors=True)


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
    conformant = levels_conformant(s["levels"], failing=sum(s["counts"].get(v, 0) for v in FAILING),
                                   interrupted=bool(report.get("interrupted")))
    return {"claim": _claim(report["adapter"], conformant, suite, s["coverage"], s["levels"]),
            "conformant": conformant, "adapter": report["adapter"], "suite": dict(suite),
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


def _unwaived(record: Mapping[str, Any], category: str) -> str:
    """A category's verdict before a waiver turned it into ``waived``."""
    verdict = record["verdicts"][category]
    if verdict == "waived":
        return (record.get("waiver") or {}).get("waived", {}).get(category) or verdict
    return verdict


def _lost(record: Mapping[str, Any]) -> bool:
    """A case whose scoring never finished: every category timeout, or every one crash (also a
    worker past --memory-limit), or every one error where the harness itself failed. Its results
    may be missing, and are not re-scored: its verdicts are failing whatever they would give."""
    values = {_unwaived(record, c) for c in record["verdicts"]}
    return len(values) == 1 and values <= {"timeout", "crash", "error"}


def _same_ratio(recorded: Any, recomputed: Any) -> bool:
    a, b = _ratio(recorded), _ratio(recomputed)
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return abs(a - b) <= RATIO_SLACK * (1 + max(abs(a), abs(b)))


_REPLAY: list[results_store.Replay] = []


def _rescore_task(task: tuple) -> list[str]:
    """Re-score one case from its stored results; what disagrees with its record (empty: all agrees)."""
    case_json, record, directory, declaration, dtype, tolerance, repeat = task
    case = Case.from_json(case_json)
    name = case.id
    path = Path(directory) / f"{record['results']}.npz"
    try:
        if results_store.sha256_file(path) != record["results"]:
            return [f"{name}: {RESULTS_DIR}/{path.name} does not match the hash its record names"]
        head, arrays = results_store.read(path)
    except (OSError, results_store.ResultsError) as exc:
        return [f"{name}: {exc}"]
    if head.get("case") != case.id or head.get("dtype") != dtype:
        return [f"{name}: its results are those of case {head.get('case')!r} at {head.get('dtype')!r}"]
    if _lost(record):
        return []
    if not _REPLAY or _REPLAY[0].declaration != declaration:  # the JSON form, as an adapter gives it
        _REPLAY[:] = [results_store.Replay(head, arrays, declaration)]
    replay = _REPLAY[0]
    replay.load(head, arrays)
    try:
        result = evaluate(replay, case, ScoringOptions(dtype, tolerance, repeat))
    except results_store.ResultsError as exc:
        return [f"{name}: the stored results do not replay: {exc}"]
    problems = []
    if not replay.exhausted:
        problems.append(f"{name}: the results log holds calls that scoring never makes")
    for category in sorted(set(result.verdicts) | set(record["verdicts"])):
        if category in AUDIT_ONLY:
            continue
        recorded = _unwaived(record, category) if category in record["verdicts"] else None
        got = result.verdicts.get(category)
        if recorded != got:
            problems.append(f"{name} {category}: the bundle records {recorded}, its results score {got}")
            continue
        for what, mine in (("worst_ratio", result.worst_ratio), ("strict_ratio", result.strict_ratio)):
            theirs = (record.get(what) or {}).get(category)
            if not _same_ratio(theirs, mine.get(category)):
                problems.append(f"{name} {category}: the bundle records {what} {theirs}, its results give "
                                f"{mine.get(category)}")
    return problems


def verify(bundle: str | os.PathLike, *, jobs: int = 1) -> list[Check]:
    """Every check of a bundle, in order; the bundle verifies when all hold (docs/certification.md).
    ``jobs`` processes re-score the stored results."""
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
        extra = sorted(names - set(BUNDLE_FILES) - {RESULTS_DIR})
        missing = sorted(set(BUNDLE_FILES) - names)
        dirs = sorted(p.name for p in bundle.iterdir() if p.is_dir() and p.name != RESULTS_DIR)
        problems = ([f"unknown file {n}" for n in extra] + [f"missing file {n}" for n in missing]
                    + [f"{n} is a directory" for n in dirs])
        if not (bundle / RESULTS_DIR).is_dir():
            problems.append(f"missing directory {RESULTS_DIR}/ (the stored results)")
        return problems, None

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
                why = _consistent(cat, _unwaived(r, cat), _ratio((r.get("worst_ratio") or {}).get(cat)),
                                  _ratio((r.get("strict_ratio") or {}).get(cat)))
                if why:
                    problems.append(f"{r['id']} {cat}: {why}")
        return problems[:50], None

    check("verdicts consistent with their ratios", ratios)

    declaration = statement.get("adapter", {}).get("declaration")

    def stored():
        listed = {r.get("results") for r in records} - {None}
        present = {p.name for p in (bundle / RESULTS_DIR).iterdir()}
        problems = [f"{RESULTS_DIR}/{n} is not named by any case record" for n in sorted(present - {f"{d}.npz" for d in listed})]
        for r in records:
            digest = r.get("results")
            if digest is None:
                if not _lost(r):
                    problems.append(f"{r['id']}: no results stored, but its verdicts {r['verdicts']} say it was scored")
            elif f"{digest}.npz" not in present:
                problems.append(f"{r['id']}: its results {RESULTS_DIR}/{digest}.npz are missing")
        return problems[:50], None

    check("a results file for every scored case", stored)

    def rescored():
        opts = _load_json(bundle, "command.json").get("options") or {}
        tolerance, repeat = report.get("tolerance", DEFAULT_TOLERANCE), report.get("repeat", 0)
        if opts.get("tolerance", tolerance) != tolerance or opts.get("repeat", 0) != repeat:
            raise _Fail("command.json and report.json disagree on tolerance or repeat")
        by_id = {c.id: c for c in cases}
        tasks = [(by_id[r["id"]].to_json(), r, str(bundle / RESULTS_DIR), declaration, suite["dtype"], tolerance, repeat)
                 for r in records if r["id"] in by_id and r.get("results") is not None]
        problems = []
        if jobs > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(jobs) as pool:
                for found in pool.map(_rescore_task, tasks, chunksize=16):
                    problems += found
        else:
            for task in tasks:
                problems += _rescore_task(task)
        return problems[:50], None

    check("every stored result re-scored: verdicts and ratios recomputed", rescored)

    def counts():
        tally = {v: 0 for v in VERDICTS}
        by_category = {c: {v: 0 for v in VERDICTS} for c in CATEGORIES}
        for r in records:
            tally[worst_verdict(r["verdicts"])] += 1
            for cat, v in r["verdicts"].items():
                by_category[cat][v] += 1
        summary = report.get("summary") or {}
        problems = []
        if summary.get("counts") != tally or statement.get("counts") != tally:
            problems.append(f"the counts recorded (report.json {summary.get('counts')}, statement "
                            f"{statement.get('counts')}) are not those of the records {tally}")
        if summary.get("by_category") != by_category:
            problems.append("report.json's per-category counts are not those of the records")
        if summary.get("cases") != len(records):
            problems.append(f"report.json counts {summary.get('cases')} cases, the records {len(records)}")
        return problems, None

    check("counts recomputed from the records", counts)

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
        tally = LevelTally(declaration, suite["dtype"])
        by_id = {c.id: c for c in cases}
        failing = 0
        for r in records:
            case = by_id.get(r["id"])
            if case is None:
                continue
            tally.add({"layer": case.layer, "spec": case.spec, "kind": case.kind, "verdicts": r["verdicts"]})
            failing += any(v not in ALLOWED for v in r["verdicts"].values())
        conformant = levels_conformant(tally.levels(), failing=failing,
                                       interrupted=report.get("interrupted") is not False)
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


# ------------------------------------------------------------------ audit by re-execution

def audit_sample(bundle: str | os.PathLike, n: int) -> list[str]:
    """The ids of the ``n`` cases an audit re-executes: drawn from the scored cases by a generator
    seeded with the sha256 of MANIFEST.sha256, which covers every file and, through the hash
    chain, every stored result, so the sample is known only once the bundle is written."""
    bundle = Path(bundle)
    seed = results_store.sha256_file(bundle / "MANIFEST.sha256")
    records = [json.loads(line) for line in (bundle / "cases.jsonl").read_text("utf-8").splitlines()]
    scored = [r["id"] for r in records if r.get("results") is not None]
    return sorted(random.Random(int(seed, 16)).sample(scored, min(n, len(scored))))


def _nondeterministic(record: Mapping[str, Any]) -> bool:
    verdicts = {c: _unwaived(record, c) for c in record["verdicts"]}
    return "nondeterministic" in verdicts.values() or verdicts.get("determinism") == "fail"


def _largest_difference(a: Any, b: Any, path: str = "") -> tuple[str, float] | None:
    """Where two logged values differ bitwise and by how much (None: bitwise equal)."""
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            return (f"{path or 'value'}: keys {sorted(a) if isinstance(a, Mapping) else type(a).__name__} "
                    f"vs {sorted(b) if isinstance(b, Mapping) else type(b).__name__}", math.inf)
        found = [d for k in sorted(a) if (d := _largest_difference(a[k], b[k], f"{path}[{k!r}]")) is not None]
        return max(found, key=lambda d: d[1]) if found else None
    if a is None or b is None or not isinstance(a, (np.ndarray, np.generic)) or not isinstance(b, (np.ndarray, np.generic)):
        return None if repr(a) == repr(b) else (f"{path or 'value'}: {type(a).__name__} vs {type(b).__name__}", math.inf)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"{path or 'value'}: shape/dtype {a.shape} {a.dtype} vs {b.shape} {b.dtype}", math.inf
    if a.tobytes() == b.tobytes():
        return None
    with np.errstate(all="ignore"):
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)) if diff.size else ()
    return (f"{path or 'value'} at index {index}: stored {a[index]!r}, re-run {b[index]!r}", float(np.max(diff, initial=0.0)))


def audit(bundle: str | os.PathLike, adapter: str, n: int, *, jobs: int = 1, timeout: float = 60.0) -> list[Check]:
    """Re-execute :func:`audit_sample` (``n`` cases) with ``adapter`` here and compare the new
    results with the stored ones: bitwise (the first result of every call) where the bundle shows
    the case deterministic, else by its verdicts re-scored within the allowed error, the case named
    as nondeterministic. A mismatch names the case and the largest difference."""
    bundle = Path(bundle)
    suite = json.loads((bundle / "suite.json").read_text("utf-8"))
    report = json.loads((bundle / "report.json").read_text("utf-8"))
    records = {r["id"]: r for r in (json.loads(line) for line in (bundle / "cases.jsonl").read_text("utf-8").splitlines())}
    chosen = audit_sample(bundle, n)
    by_id = {c.id: c for c in case_set(suite["profile"])}
    problems: list[str] = []
    notes: list[str] = [f"re-executed {len(chosen)} case(s) chosen from the bundle's hash with {adapter}: "
                        f"{', '.join(chosen[:10])}{' ...' if len(chosen) > 10 else ''}"]
    with tempfile.TemporaryDirectory(prefix="conv-conformance-audit-") as tmp:
        try:
            rerun = dict(run_cases(adapter, [by_id[i] for i in chosen], suite["dtype"], jobs=jobs, timeout=timeout,
                                   repeat=report.get("repeat", 0), tolerance=report.get("tolerance", DEFAULT_TOLERANCE),
                                   results=tmp))
        except WorkerStartError as exc:
            raise UsageError(f"cannot load adapter {adapter!r}: {exc}") from exc
        for k, case_id in enumerate(chosen):
            record, result = records[case_id], rerun.get(k)
            stored_head, stored_arrays = results_store.read(bundle / RESULTS_DIR / f"{record['results']}.npz")
            path = results_store.path_for(tmp, case_id)
            if result is None or not path.is_file():
                problems.append(f"{case_id}: the re-run returned no results "
                                f"({', '.join(sorted(set(result.verdicts.values()))) if result else 'lost'})")
                continue
            if _nondeterministic(record):
                notes.append(f"{case_id}: nondeterministic in the bundle, compared within the allowed error")
                differ = {c: (_unwaived(record, c), v) for c, v in result.verdicts.items()
                          if c not in AUDIT_ONLY and _unwaived(record, c) != v}
                if differ:
                    problems.append(f"{case_id}: re-run verdicts differ from the bundle's: {differ}")
                continue
            new_head, new_arrays = results_store.read(path)
            first_stored = _first_calls(stored_head, stored_arrays)
            first_new = _first_calls(new_head, new_arrays)
            worst = None
            for method in sorted(set(first_stored) | set(first_new)):
                d = _largest_difference(first_stored.get(method), first_new.get(method), method)
                if d is not None and (worst is None or d[1] > worst[1]):
                    worst = d
            if worst is not None:
                problems.append(f"{case_id}: the re-run differs bitwise from the stored results; largest "
                                f"difference {worst[1]:.6g} in {worst[0]}")
            differ = {c: (_unwaived(record, c), v) for c, v in result.verdicts.items() if _unwaived(record, c) != v}
            if differ and worst is None:
                problems.append(f"{case_id}: same results but the re-run verdicts differ: {differ}")
    return [Check(f"audit: {len(chosen)} case(s) re-executed with {adapter}", not problems, problems[:50] or notes)]


def _first_calls(head: Mapping, arrays: Mapping) -> dict[str, Any]:
    """The first result of each method in a log (the one scoring compared); an exception as its text."""
    out: dict[str, Any] = {}
    for call, (method, value) in zip(head["calls"], results_store.arrays_of(head, arrays)):
        if method not in out:
            out[method] = value if "raise" not in call else f"raised {call['raise']['type']}"
    return out


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

"""The ``conv-conformance`` command line: the only place that parses arguments.

Commands: ``run``, ``list-adapters``, ``explore``, ``export``, ``score``, ``certify``, ``verify``,
``report``, ``scoreboard``, ``compare``, ``findings``. Each is a thin front end: ``run``, ``certify`` and
``explore`` score through one :class:`conformance.session.Session`; the renderers live in
:mod:`reports`. Every command returns an exit status: 0 for success (``run``, ``certify``: the
adapter is conformant), 1 when ``run``, ``certify`` or ``explore`` finds non-conformance (or
``verify`` a bundle that does not verify, ``compare`` a regression), 2 for a usage error,
130 when interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from tqdm import tqdm

from conv_conformance.conformance import findings as known_findings
from conv_conformance.conformance.findings import command as findings_command
from conv_conformance.conformance import resume as resuming
from conv_conformance.conformance.certify import (CertifyOptions, audit, certify, certify_from_run, outcome,
                                                  verification_report, verify)
from conv_conformance.conformance.exec_protocol import ProtocolError
from conv_conformance.conformance import offline
from conv_conformance.conformance.levels import category_line, coverage_line
from conv_conformance.conformance.registry import GROUP, AdapterError, list_adapters, resolve
from conv_conformance.conformance.report import ReportWriter
from conv_conformance.conformance.resume import ResumeError, load_run
from conv_conformance.conformance.runner import WorkerStartError
from conv_conformance.conformance.session import RunConfig, Session, UsageError, check_layers, load_waivers
from conv_conformance.conformance.version import version_lines
from conv_conformance.oracle import corpus
from conv_conformance.oracle.case import corpus_id
from conv_conformance.oracle.cases import case_set
from conv_conformance.oracle.export import export
from conv_conformance.reports import ReportError, compare, html, junit, load, markdown, scoreboard
from conv_conformance.vocabulary import DEFAULT_TOLERANCE, DTYPES, PROFILES, TOLERANCE_MODES

__all__ = ["build_parser", "main", "dispatch", "UsageError", "FORMATS"]

#: The --dtype choices, the core dtype first.
_DTYPE_CHOICES = ("float32", *(d for d in DTYPES if d != "float32"))
FORMATS = ("junit", "markdown", "html")


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn UsageError (and the registry's lookup errors) into a message and exit status 2."""

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (UsageError, AdapterError) as exc:
            print(f"conv-conformance {args.command}: error: {exc}", file=sys.stderr)
            return 2

    return wrapper


def _int_at_least(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (``why`` says what the bound means)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}{why}, got {text!r}")
        return value

    return parse


_non_negative_int = _int_at_least(0)
_positive_int = _int_at_least(1)
_repeat_count = _int_at_least(2, " (calls compared per case)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _layer_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


class _Version(argparse.Action):
    """--version: conformance.version.version_lines, printed as they are computed; exit 0."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None) -> None:
        for line in version_lines(PROFILES):
            print(line, flush=True)
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command; each command sets ``func`` (returns an exit status)."""
    parser = argparse.ArgumentParser(
        prog="conv-conformance",
        description="Conformance suite for convolutional layers with Keras semantics.")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of its one-line summary")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print the suite version, the corpus id of each profile and the "
                             "framework versions installed, and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="score an adapter on a case set and write report.json",
                         description="Score an adapter on a case set; exit 0 when conformant, 1 when not.")
    run.add_argument("--adapter", default=None, metavar="NAME|module:attr",
                     help="a registered adapter name (see list-adapters) or module:attr (required "
                          "unless --resume)")
    run.add_argument("--profile", default="smoke", choices=PROFILES, help="case set (default: smoke)")
    run.add_argument("--layers", type=_layer_list, default=None, metavar="Conv2D,...",
                     help="only these layer classes (comma-separated)")
    run.add_argument("--dtype", default="float32", choices=_DTYPE_CHOICES, help="dtype of the arrays (default: float32)")
    run.add_argument("--jobs", type=_positive_int, default=1, metavar="N", help="worker processes (default: 1)")
    run.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                     help="per-case time limit (default: 60)")
    run.add_argument("--cases-per-worker", type=_non_negative_int, default=None, metavar="N",
                     help="replace a worker by a fresh process after N cases, so memory a framework keeps "
                          "per case cannot grow with the run (default: the adapter's `cases_per_worker` "
                          "attribute, else never; 0: never)")
    run.add_argument("--threads-per-job", type=_positive_int, default=1, metavar="N",
                     help="threads each worker's numerical libraries may use (OpenMP/oneDNN, BLAS, "
                          "TensorFlow, XLA; default: 1, so results do not depend on --jobs)")
    run.add_argument("--repeat", type=_repeat_count, default=0, metavar="K",
                     help="call every forward and vjp K times and score their bitwise equality as the "
                          "`determinism` category (K >= 2; default: off)")
    run.add_argument("--tolerance", default=None, choices=TOLERANCE_MODES,
                     help="allowed error per element: 'rigorous' (a forward error bound for every summation "
                          "order) or 'probabilistic' (Higham & Mary's lambda*sqrt(n)*u, false-alarm "
                          "probability 1e-6 per case); default: rigorous (see docs/tolerance.md)")
    run.add_argument("--out", default="conformance-report", metavar="DIR",
                     help="directory for report.json (default: conformance-report)")
    run.add_argument("--waivers", default=None, metavar="FILE",
                     help="waiver file (TOML or JSON; docs/certification.md): failing cases it covers "
                          "are reported `waived`")
    run.add_argument("--fail-on", default="any", choices=("any", "new"),
                     help="exit 1 on any failing case (default), or only on a failing case that no known "
                          "finding of the catalogue explains (`new`: a regression gate; docs/regression-gate.md). "
                          "Known findings never make the run CONFORMANT")
    run.add_argument("--resume", default=None, metavar="DIR",
                     help="finish a killed or interrupted run in DIR: only the cases it has no record "
                          "of are scored, with the options it was started with (DIR/run.json; another value "
                          "given with --resume is refused)")
    run.add_argument("--cases", default=None, metavar="DIR",
                     help="score the cases of an exported corpus (`conv-conformance export`, or a third "
                          "party's in that layout) instead of --profile; its dtype is the run's. Everything "
                          "in DIR is checked first (oracle.corpus): a bad file is a usage error")
    run.add_argument("--max-elements", type=_positive_int, default=None, metavar="N",
                     help="with --cases: the most array elements one case may hold (default: 2**28)")
    run.add_argument("--memory-limit", type=_positive_int, default=None, metavar="MiB",
                     help="cap each worker's address space once its adapter has loaded (RLIMIT_AS); a "
                          "case that exceeds it is a crash labelled with the limit (default: none)")
    run.add_argument("--keep-results", action="store_true",
                     help="keep every value the adapter returned in DIR/results (compressed; "
                          "conformance.results_store), so that `certify --from-run DIR` can make a bundle "
                          "of this run without running it again")
    run.add_argument("--verbose", action="store_true",
                     help="show what the adapter printed while loading and during each case (default: "
                          "kept in the report's per-case `output` only)")
    run.set_defaults(func=_guarded(_run))

    lst = sub.add_parser("list-adapters", help="list registered adapters and whether they import")
    lst.set_defaults(func=_guarded(_list_adapters))

    exp = sub.add_parser("explore", help="search beyond the case sets with Hypothesis and shrink failures",
                         description="Draw valid configurations with Hypothesis, score the adapter "
                                     "in a worker process (hangs and crashes are findings too), shrink "
                                     "each failure and print a reproducer.")
    exp.add_argument("--adapter", required=True, metavar="NAME|module:attr")
    exp.add_argument("--max-examples", type=_positive_int, default=100, metavar="N")
    exp.add_argument("--layers", type=_layer_list, default=None, metavar="Conv2D,...")
    exp.add_argument("--dtype", default="float32", choices=_DTYPE_CHOICES)
    exp.add_argument("--tolerance", default=DEFAULT_TOLERANCE, choices=TOLERANCE_MODES,
                     help=f"allowed error per element, as for run (default: {DEFAULT_TOLERANCE})")
    exp.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    exp.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                     help="per drawn case; a case still running is a timeout finding (default 60)")
    exp.set_defaults(func=_guarded(_explore))

    ex = sub.add_parser("export", help="write a case set as JSON + .npy files for any language")
    ex.add_argument("--profile", default="smoke", choices=PROFILES)
    ex.add_argument("--dtype", default="float32", choices=_DTYPE_CHOICES)
    ex.add_argument("directory", metavar="DIR")
    ex.set_defaults(func=_guarded(_export))

    sc = sub.add_parser("score", help="score results an implementation wrote offline for an exported case set",
                        description="Score the results in --results (docs/exec-protocol.md, offline results) "
                                    "for the cases in --cases, as `run --cases` would score a live adapter; "
                                    "write OUT/report.json. Exit 0 when conformant, 1 when not.")
    sc.add_argument("--cases", required=True, metavar="DIR", help="an exported case set (`export`)")
    sc.add_argument("--results", required=True, metavar="DIR", help="one results folder per case")
    sc.add_argument("--out", required=True, metavar="OUT")
    sc.add_argument("--tolerance", default=DEFAULT_TOLERANCE, choices=TOLERANCE_MODES)
    sc.add_argument("--waivers", default=None, metavar="FILE")
    sc.add_argument("--max-elements", type=_positive_int, default=None, metavar="N",
                    help="the most array elements one case (and one result) may hold (default: 2**28)")
    sc.set_defaults(func=_guarded(_score))

    c = sub.add_parser("certify", help="run a profile's required cases and write a verifiable bundle",
                       description="Run every required case of a profile and write a certification bundle "
                                   "(docs/certification.md); exit 0 when conformant, 1 when not.")
    c.add_argument("--adapter", default=None, metavar="NAME|module:attr", help="required unless --from-run")
    c.add_argument("--profile", default=None, choices=PROFILES, help="required unless --from-run")
    c.add_argument("--from-run", default=None, metavar="DIR",
                   help="make the bundle from a finished `run --keep-results` in DIR (a whole profile) "
                        "instead of running the cases again; the run's options are the bundle's")
    c.add_argument("--dtype", default="float32", choices=_DTYPE_CHOICES)
    c.add_argument("--tolerance", default=DEFAULT_TOLERANCE, choices=TOLERANCE_MODES,
                   help=f"allowed error per element, as for run (default: {DEFAULT_TOLERANCE})")
    c.add_argument("--out", required=True, metavar="BUNDLE")
    c.add_argument("--waivers", default=None, metavar="FILE")
    c.add_argument("--jobs", type=_positive_int, default=1, metavar="N")
    c.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS")
    c.set_defaults(func=_guarded(_certify))

    v = sub.add_parser("verify", help="check a certification bundle",
                       description="Check a bundle written by certify. Exit 0: authentic, records CONFORMANT; 1: authentic, "
                                   "records NOT CONFORMANT; 3: the bundle does not verify; 2: usage error.")
    v.add_argument("bundle", metavar="BUNDLE")
    v.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                   help="processes that re-score the stored results (default: 1)")
    v.add_argument("--rerun", type=_positive_int, default=None, metavar="N",
                   help="audit: re-execute N cases, chosen from the bundle's hash, with --adapter and "
                        "compare the new results with the stored ones (bitwise where the bundle shows "
                        "the adapter deterministic)")
    v.add_argument("--adapter", default=None, metavar="NAME|module:attr", help="the implementation --rerun runs")
    v.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                   help="per re-executed case (default: 60)")
    v.set_defaults(func=_guarded(_verify))

    rep = sub.add_parser("report", help="re-render a saved report.json",
                         description="Render a saved report.json as JUnit XML, Markdown or HTML.")
    rep.add_argument("run", metavar="RUN.json", help="a report.json written by `conv-conformance run`")
    rep.add_argument("--format", required=True, choices=FORMATS)
    rep.add_argument("--out", metavar="FILE", default=None, help="write here instead of stdout")
    rep.set_defaults(func=_report)

    sb = sub.add_parser("scoreboard", help="several runs side by side (Markdown and HTML)",
                        description="Write DIR/scoreboard.md and DIR/scoreboard.html: per adapter "
                                    "and layer, the number of cases with each verdict.")
    sb.add_argument("runs", nargs="+", metavar="RUN.json")
    sb.add_argument("--out", required=True, metavar="DIR")
    sb.set_defaults(func=_scoreboard)

    cmp = sub.add_parser(
        "compare", help="compare a run with a baseline; exit 1 on regressions",
        description="List cases newly failing, erroring, unsupported or passing and worst-ratio "
                    "changes; print Markdown; exit 1 on any regression, 0 otherwise, 2 on a usage error.")
    cmp.add_argument("base", metavar="BASE.json")
    cmp.add_argument("new", metavar="NEW.json")
    cmp.add_argument("--threshold", type=_threshold, default=2.0, metavar="X",
                     help="a worst error ratio that grows by this factor and ends above 0.5 "
                          "is a regression (default: 2)")
    cmp.add_argument("--shared-only", action="store_true",
                     help="compare only the cases both runs hold (allows different corpus ids)")
    cmp.add_argument("--out", metavar="FILE", default=None, help="also write the Markdown here")
    cmp.add_argument("--fail-on", default="any", choices=("any", "new"),
                     help="exit 1 on any regression (default), or only on a regressed case that no known "
                          "finding explains (`new`; docs/regression-gate.md)")
    cmp.set_defaults(func=_compare)

    fnd = sub.add_parser(
        "findings", help="list the catalogue of known findings, or write one finding's reproducer or bug report",
        description="Without ID: list the catalogue (docs/divergences.md is generated from it). With ID: print "
                    "the entry as JSON, its standalone reproducer (--reproducer) or an upstream bug report "
                    "(--bug-report: title, environment, expected vs actual, minimal code).")
    fnd.add_argument("id", nargs="?", default=None, metavar="ID", help="a finding id (K1, O1, R3, ...)")
    fnd.add_argument("--framework", default=None, help="list only this framework's findings (tensorflow, keras, "
                                                       "tf_keras, onednn, torch, jax, onnxruntime, openvino, litert)")
    fnd.add_argument("--status", default=None, choices=("open", "fixed"), help="list only open or fixed findings")
    what = fnd.add_mutually_exclusive_group()
    what.add_argument("--reproducer", action="store_true", help="print the finding's standalone reproducer script")
    what.add_argument("--bug-report", action="store_true", help="print an upstream bug report (Markdown)")
    fnd.add_argument("--out", metavar="FILE", default=None, help="write to FILE instead of printing")
    fnd.set_defaults(func=_findings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns its exit status (2 on a usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on errors, 0 for --help
        return int(exc.code or 0)
    with _interruptible():
        return dispatch(args)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C (SIGINT) and SIGTERM end a command as interrupted: a run keeps every record scored,
    writes its partial report and exits 130. Installed explicitly because a process started in
    the background by a shell without job control inherits SIGINT ignored, and Python then
    installs no handler of its own; the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command. An exception it does not handle itself (a malformed input file,
    say) becomes one line on stderr and exit status 2; ``--debug`` shows the traceback instead."""
    try:
        return args.func(args)
    except KeyboardInterrupt:  # one a command did not handle itself (run's scoring loop does)
        if getattr(args, "debug", False):
            raise
        print(f"conv-conformance {getattr(args, 'command', '')}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into one line
        if getattr(args, "debug", False):
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"conv-conformance {getattr(args, 'command', '')}: error: {type(exc).__name__}: {text[:500]} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 2


# ------------------------------------------------------------------ helpers

def _case_set(profile: str, layers: list[str] | None) -> list[Any]:
    try:
        return case_set(profile, layers=layers)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


_QUIET = ("pass", "unsupported", "quality_warning", "waived")  # not "not passing" in progress lines


class _Progress:
    """tqdm on a terminal; otherwise a plain line per non-passing case and every 10%."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.bad = total, 0, 0
        self.bar = None
        if sys.stderr.isatty():
            self.bar = tqdm(total=total, unit="case", file=sys.stderr, dynamic_ncols=True)
        self.step = max(1, total // 10)

    def update(self, result: Any) -> None:
        self.done += 1
        verdict = result.verdict
        if verdict not in _QUIET:
            self.bad += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(not_passing=self.bad, refresh=False)
            return
        if verdict not in _QUIET:
            first = result.message.splitlines()[0] if result.message else ""
            print(f"{verdict.upper():8} {result.id}  {first}", file=sys.stderr, flush=True)
        if self.done % self.step == 0 or self.done == self.total:
            print(f"[{self.done}/{self.total}] {self.bad} not passing", file=sys.stderr, flush=True)

    def write(self, text: str) -> None:
        """A message on stderr that leaves the progress bar intact."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------ run

def _run(args: argparse.Namespace) -> int:
    previous = _resumed(args) if getattr(args, "resume", None) else None
    if args.adapter is None:
        raise UsageError("Argument `--adapter` is required (or --resume DIR to finish a run)")
    layers = check_layers(args.layers)
    resolve(args.adapter)
    waivers = load_waivers(getattr(args, "waivers", None))
    config = RunConfig(args.adapter, dtype=args.dtype, tolerance=args.tolerance or DEFAULT_TOLERANCE,
                       repeat=args.repeat, timeout=args.timeout, jobs=args.jobs, threads=args.threads_per_job,
                       cases_per_worker=args.cases_per_worker,
                       memory_limit=args.memory_limit * 2 ** 20 if args.memory_limit else None,
                       results=str(Path(args.out) / "results") if getattr(args, "keep_results", False) else None)
    # A new run's workers import the adapter's frameworks while the case set is built here.
    workers = config.start_workers() if previous is None else None
    try:
        return _run_with(args, config, layers, waivers, previous, workers)
    finally:
        if workers is not None:
            workers.close()  # the run closed them already, unless it never started


def _run_with(args: argparse.Namespace, config: RunConfig, layers: list[str] | None, waivers: Any,
              previous: dict | None, workers: Any) -> int:
    arrays, imported = None, None
    if getattr(args, "cases", None):
        cases, arrays, imported = _imported(args, layers)
    else:
        cases = _case_set(args.profile, layers)
    session = Session(config, cases, arrays=arrays, waivers=waivers)
    meta = session.meta(profile=args.profile, corpus_id=imported["corpus_id"] if imported else corpus_id(cases))
    if imported is not None:
        meta["corpus"] = {"source": str(args.cases), **imported}
    options = {k: getattr(args, k, None) for k in _RUN_OPTIONS}
    run_file = {"options": options, "started": meta["started"]}
    if previous is not None:
        run_file = previous
        for key in ("started", "adapter", "environment"):
            if key in previous:
                meta[key] = previous[key]
    resuming.save_run(args.out, run_file)
    done = resuming.restore(args.out, cases) if previous is not None else {}

    writer = ReportWriter(args.out, meta)
    for index in sorted(done):
        writer.add(index, done[index])
    resuming.release(args.out)
    if previous is not None:
        print(f"resuming {args.out}: {len(done)} of {len(cases)} cases already done, "
              f"{len(cases) - len(done)} to run", file=sys.stderr)

    def ready(info: Any) -> None:
        resuming.save_run(args.out, run_file | {"adapter": writer.meta["adapter"], "environment": info.environment})
        if args.verbose and info.output:
            print(f"--- output of the worker while loading {args.adapter} ---\n{info.output.rstrip()}",
                  file=sys.stderr)

    progress = _Progress(len(cases) - len(done))

    def on_result(result: Any) -> None:
        progress.update(result)
        if args.verbose and result.output:
            progress.write(f"--- output of {result.id} ---\n{result.output.rstrip()}")

    start = time.monotonic()
    try:
        outcome = session.run(writer, skip=done.keys(), on_ready=ready, on_result=on_result, workers=workers)
    finally:
        progress.close()
    summary, interrupted = outcome.summary, outcome.interrupted
    for line in (summary.get("waivers") or {}).get("warnings", []):
        print(f"warning: {line}", file=sys.stderr)
    _print_summary(summary, writer.path, time.monotonic() - start, interrupted)
    if interrupted:
        print(f"interrupted: {writer.cases} of {len(cases)} cases done; finish the run with: "
              f"conv-conformance run --resume {args.out}", file=sys.stderr)
        return 130
    return _exit_status(summary, getattr(args, "fail_on", "any"))


def _exit_status(summary: dict, fail_on: str) -> int:
    """``run``'s exit status: 0 when conformant; with ``--fail-on new`` also 0 when every failing
    case is explained by a known finding (summary.findings.new == 0); else 1."""
    if summary["conformant"]:
        return 0
    found = summary.get("findings")
    if fail_on == "new" and found is not None and found["new"] == 0 and summary.get("cases"):
        return 0
    return 1


# The options of `run` that run.json keeps for --resume.
_RUN_OPTIONS = ("adapter", "profile", "layers", "dtype", "jobs", "timeout", "cases_per_worker",
                "threads_per_job", "repeat", "tolerance", "waivers", "memory_limit", "cases", "max_elements",
                "keep_results")


def _imported(args: argparse.Namespace, layers: list[str] | None) -> tuple[list, list, dict]:
    """The cases of --cases DIR (only --layers, if given) with the arrays they are scored on, and
    what re-deriving them found. Expected values and allowed errors are recomputed from the
    reference (oracle.corpus.rederive), never read from the files. The run claims the profile the
    index names, and its corpus id, only when the cases are that profile's and nothing in them was
    altered; otherwise it is named ``cases:PROFILE`` with the id of the content scored. Sets the
    run's dtype from the corpus. Anything unsafe in DIR is a UsageError (oracle.corpus.CorpusError)."""
    try:
        read = corpus.read(args.cases, max_elements=args.max_elements or corpus.MAX_ELEMENTS)
        index = json.loads((Path(args.cases) / "index.json").read_text("utf-8"))
    except corpus.CorpusError as exc:
        raise UsageError(f"Argument `--cases`: {exc}") from exc
    dtype = index.get("dtype")
    if dtype not in _DTYPE_CHOICES:
        raise UsageError(f"Argument `--cases`: index.json dtype must be one of {', '.join(_DTYPE_CHOICES)}. "
                         f"Received: {dtype!r}")
    args.dtype = dtype
    read = [(c, m) for c, m in read if layers is None or c.layer in layers]
    scored, provenance = corpus.rederive(read, dtype, args.tolerance or DEFAULT_TOLERANCE)
    cases = [c for c, _ in scored]
    named = index.get("profile")
    present = {c.layer for c in cases}  # an export of some layers is that part of the profile
    genuine = (provenance.genuine and named in PROFILES
               and [c.id for c in cases] == [c.id for c in case_set(named) if c.layer in present])
    args.profile = named if genuine else f"cases:{named or 'imported'}"
    if provenance.doctored:
        print(f"warning: --cases {args.cases}: {len(provenance.doctored)} case(s) store expected values or allowed "
              f"errors the reference does not give (scored with the reference's): "
              f"{', '.join(provenance.doctored[:5])}{' ...' if len(provenance.doctored) > 5 else ''}", file=sys.stderr)
    record = provenance.to_json() | {"genuine": genuine,
                                      "corpus_id": corpus_id(cases) if genuine else provenance.content_id}
    return cases, [m for _, m in scored], record


def _resumed(args: argparse.Namespace) -> dict:
    """The run.json of --resume DIR; its options replace args' (DIR becomes --out)."""
    try:
        previous = load_run(args.resume)
    except ResumeError as exc:
        raise UsageError(str(exc)) from exc

    def same(key: str, given: Any, stored: Any) -> bool:  # an adapter by its name or by its target
        return given == stored or (key == "adapter" and isinstance(given, str) and isinstance(stored, str)
                                   and resolve(given) == resolve(stored))

    # An option given with --resume that differs from the run's would silently not apply. (One given
    # at its default value cannot be told from one not given, and is left to the run's.)
    defaults = vars(build_parser().parse_args(["run"]))
    changed = [k for k in _RUN_OPTIONS if k in previous["options"] and getattr(args, k, None) != defaults.get(k)
               and not same(k, getattr(args, k, None), previous["options"][k])]
    if changed:
        stored = ", ".join(f"--{k.replace('_', '-')} {previous['options'][k]}" for k in changed)
        raise UsageError(f"Argument `--resume`: {args.resume} was started with {stored} (its run.json), and "
                         f"--resume finishes a run with the options it was started with. To change them, start "
                         f"a new run (--out) instead")
    for key, value in previous["options"].items():
        if key in _RUN_OPTIONS:
            setattr(args, key, value)
    args.out = args.resume
    return previous


def _print_summary(summary: dict, path: Any, seconds: float, interrupted: bool) -> None:
    counts = ", ".join(f"{n} {v}" for v, n in summary["counts"].items() if n)
    state = ("INTERRUPTED (partial report)" if interrupted else
             "CONFORMANT" if summary["conformant"] else "NOT CONFORMANT")
    ratios = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in summary["worst_ratio"].items() if v is not None)
    known = known_findings.summary_text(summary.get("findings"))
    print(f"{state}: {summary['cases']} cases in {seconds:.1f} s ({counts or 'none'})"
          + (f"; {known}" if known else "") + (f"; worst error ratio {ratios}" if ratios else ""))
    if summary.get("by_category"):  # each category apart: an optional one left out hides nothing
        print(f"by category: {category_line(summary['by_category'])}")
    if summary.get("coverage"):
        print(coverage_line(summary["coverage"], summary.get("levels") or {}))
    for waiver in (summary.get("waivers") or {}).get("applied", []):
        print(f"waived by {waiver['id']} ({waiver['link']}): {len(waiver['cases'])} case(s)")
    for line in known_findings.fixed_lines(summary.get("findings")):
        print(line)
    print(f"report: {path}")


def _list_adapters(args: argparse.Namespace) -> int:
    infos = list_adapters()
    if not infos:
        print(f"No adapters registered in the entry-point group {GROUP!r}.")
    width = max((len(i.name) for i in infos), default=0)
    for info in infos:
        status = "ok" if info.error is None else f"not importable: {info.error}"
        print(f"{info.name:<{width}}  {info.target}  [{status}]")
    return 0


def _export(args: argparse.Namespace) -> int:
    try:
        written = export(args.profile, args.directory, dtype=args.dtype)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"exported the {args.profile} case set ({args.dtype}) to {args.directory}"
          + (f": {written}" if written else ""))
    print(json.loads(Path(written).read_text("utf-8"))["storage"])  # which dtype each file is in
    return 0


def _score(args: argparse.Namespace) -> int:
    """``score``: the corpus read and re-derived as ``run --cases`` does, the results replayed
    through the same scoring (conformance.offline)."""
    waivers = load_waivers(args.waivers)
    cases, arrays, imported = _imported(args, None)

    def meta(session: Session) -> dict:
        return session.meta(profile=args.profile, corpus_id=imported["corpus_id"]) | {
            "corpus": {"source": str(args.cases), **imported}}

    start = time.monotonic()
    try:
        summary = offline.score(cases, arrays, args.results, args.out, meta=meta, tolerance=args.tolerance,
                                dtype=args.dtype, waivers=waivers,
                                max_elements=args.max_elements or corpus.MAX_ELEMENTS)
    except (ProtocolError, ValueError) as exc:  # the results directory or implementation.json itself
        raise UsageError(f"Argument `--results`: {exc}") from exc
    _print_summary(summary, Path(args.out) / "report.json", time.monotonic() - start, False)
    return _exit_status(summary, "any")


def _explore(args: argparse.Namespace) -> int:
    # Hypothesis (and what its plugins import) only for this command: every spawned worker of
    # every other command imports this module again as its parent's main script.
    from conv_conformance.conformance.explore import explore, reproducer

    check_layers(args.layers)
    try:
        findings = explore(args.adapter, max_examples=args.max_examples, layers=args.layers, dtype=args.dtype,
                           seed=args.seed, timeout=args.timeout, tolerance=args.tolerance)
    except WorkerStartError as exc:
        raise UsageError(f"cannot load adapter {args.adapter!r}: {exc}") from exc
    for n, finding in enumerate(findings, 1):
        result = finding.result
        verdicts = ", ".join(f"{k}={v}" for k, v in result.verdicts.items())
        print(f"=== finding {n} of {len(findings)}: {result.layer}: {verdicts} (shrunk)")
        print(result.message)
        print("--- reproducer (python) ---")
        print(reproducer(args.adapter, finding.case, finding.arrays, args.dtype, result))
    if not findings:
        print(f"no failure in {args.max_examples} drawn examples ({args.dtype})")
    return 1 if findings else 0


# ------------------------------------------------------------------ certify, verify

def _certify(args: argparse.Namespace) -> int:
    if args.from_run is not None:
        result = certify_from_run(args.from_run, args.out)
    else:
        missing = [f"--{n}" for n in ("adapter", "profile") if getattr(args, n) is None]
        if missing:
            raise UsageError(f"Argument(s) {', '.join(missing)} are required (or --from-run DIR)")
        options = CertifyOptions(adapter=args.adapter, profile=args.profile, out=args.out, dtype=args.dtype,
                                 tolerance=args.tolerance, waivers=args.waivers, jobs=args.jobs, timeout=args.timeout)
        progress = _Progress(len(case_set(args.profile)))
        try:
            result = certify(options, on_result=progress.update)
        finally:
            progress.close()
    if result.interrupted:
        print("certify: interrupted; no bundle written", file=sys.stderr)
        return 130
    for line in result.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(result.statement["claim"])
    print(f"bundle: {result.out} (check it with: conv-conformance verify {result.out})")
    return 0 if result.conformant else 1


def _verify(args: argparse.Namespace) -> int:
    bundle = Path(args.bundle)
    if not bundle.is_dir():
        raise UsageError(f"Argument BUNDLE must be a bundle directory written by certify. Received: {args.bundle!r}")
    if (args.rerun is None) != (args.adapter is None):
        raise UsageError("Arguments `--rerun N` and `--adapter A` go together: an audit re-executes N cases with A")
    checks = verify(bundle, jobs=args.jobs)
    if args.rerun is not None and all(c.ok for c in checks):
        checks += audit(bundle, args.adapter, args.rerun, jobs=args.jobs, timeout=args.timeout)
    print(verification_report(bundle, checks))
    return outcome(bundle, checks)[0]


# ------------------------------------------------------------------ report, scoreboard, compare

def _render(report: dict, fmt: str) -> str:
    renderer = {"junit": junit, "markdown": markdown, "html": html}[fmt]
    return renderer.render(report)


def _emit(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def _fail(command: str, message: object) -> int:
    print(f"conv-conformance {command}: error: {message}", file=sys.stderr)
    return 2


def _report(args: argparse.Namespace) -> int:
    try:
        report = load(args.run)
    except ReportError as exc:
        return _fail("report", exc)
    _emit(_render(report, args.format), args.out)
    return 0


def _scoreboard(args: argparse.Namespace) -> int:
    try:
        reports = [load(path) for path in args.runs]
    except ReportError as exc:
        return _fail("scoreboard", exc)
    for path in scoreboard.write(reports, args.out):
        print(path)
    return 0


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 1.0:
        raise argparse.ArgumentTypeError(f"must be a factor > 1 (e.g. 2 for 2x), got {text!r}")
    return value


def _compare(args: argparse.Namespace) -> int:
    try:
        base, new = load(args.base), load(args.new)
        result = compare.compare(base, new, threshold=args.threshold, shared_only=args.shared_only)
    except (ReportError, compare.CompareError) as exc:
        return _fail("compare", exc)
    for warning in result.warnings:
        print(f"conv-conformance compare: warning: {warning}", file=sys.stderr)
    text = compare.render(result).rstrip("\n") + "\n"
    _emit(text, None)
    if args.out:
        _emit(text, args.out)
    if getattr(args, "fail_on", "any") == "new":
        return 1 if result.new_regressions else 0
    return 1 if result.regressions else 0


@_guarded
def _findings(args: argparse.Namespace) -> int:
    catalogue = known_findings.load()
    if args.id is not None and args.id not in catalogue.by_id:
        raise UsageError(f"Argument ID must be a finding of the catalogue: {', '.join(catalogue.by_id)}. "
                         f"Received: {args.id!r}")
    if args.id is None and (args.reproducer or args.bug_report):
        raise UsageError("Arguments --reproducer and --bug-report need a finding ID")
    status, text = findings_command.run(catalogue, finding_id=args.id, framework=args.framework, status=args.status,
                               reproducer=args.reproducer, report=args.bug_report)
    if status:
        print(f"conv-conformance findings: {text}", file=sys.stderr)
        return status
    _emit(text, args.out)
    if args.out:
        print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

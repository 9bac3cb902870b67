"""The ``conv-conformance`` commands run, list-adapters, explore and export.

``reports.cli`` (the console script) builds on :func:`build_parser` and adds
report, scoreboard and compare. Every command returns an exit status: 0 for
success (``run``: the adapter is conformant), 1 when ``run`` or ``explore``
finds non-conformance, 2 for a usage error, 130 when interrupted.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["build_parser", "main", "UsageError", "check_layers"]

PROFILES = ("smoke", "standard", "exhaustive", "networks")
DTYPES = ("float32", "float64", "float16", "bfloat16")


class UsageError(ValueError):
    """A command-line argument names something that does not exist."""


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn UsageError (and the registry's lookup errors) into a message and exit status 2."""

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        from .registry import AdapterError

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
        from .version import version_lines

        for line in version_lines(PROFILES):
            print(line, flush=True)
        parser.exit(0)


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The argument parser with run, list-adapters, explore and export, and its
    subparsers action (so other packages can add commands). Each command sets
    ``func`` (returns an exit status)."""
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
    run.add_argument("--dtype", default="float32", choices=DTYPES, help="dtype of the arrays (default: float32)")
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
    run.add_argument("--tolerance", default=None, choices=("rigorous", "probabilistic"),
                     help="allowed error per element: 'rigorous' (a forward error bound for every summation "
                          "order) or 'probabilistic' (Higham & Mary's lambda*sqrt(n)*u, false-alarm "
                          "probability 1e-6 per case); default: rigorous (see docs/tolerance.md)")
    run.add_argument("--out", default="conformance-report", metavar="DIR",
                     help="directory for report.json (default: conformance-report)")
    run.add_argument("--waivers", default=None, metavar="FILE",
                     help="waiver file (TOML or JSON; docs/certification.md): failing cases it covers "
                          "are reported `waived`")
    run.add_argument("--resume", default=None, metavar="DIR",
                     help="finish a killed or interrupted run in DIR: only the cases it has no record "
                          "of are scored, with the options it was started with (DIR/run.json)")
    run.add_argument("--cases", default=None, metavar="DIR",
                     help="score the cases of an exported corpus (`conv-conformance export`, or a third "
                          "party's in that layout) instead of --profile; its dtype is the run's. Everything "
                          "in DIR is checked first (oracle.corpus): a bad file is a usage error")
    run.add_argument("--max-elements", type=_positive_int, default=None, metavar="N",
                     help="with --cases: the most array elements one case may hold (default: 2**28)")
    run.add_argument("--memory-limit", type=_positive_int, default=None, metavar="MiB",
                     help="cap each worker's address space once its adapter has loaded (RLIMIT_AS); a "
                          "case that exceeds it is a crash labelled with the limit (default: none)")
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
    exp.add_argument("--dtype", default="float32", choices=DTYPES)
    exp.add_argument("--seed", type=int, default=None, help="Hypothesis seed (default: random)")
    exp.add_argument("--timeout", type=_positive_float, default=60.0, metavar="SECONDS",
                     help="per drawn case; a case still running is a timeout finding (default 60)")
    exp.set_defaults(func=_guarded(_explore))

    ex = sub.add_parser("export", help="write a case set as JSON + .npy files for any language")
    ex.add_argument("--profile", default="smoke", choices=PROFILES)
    ex.add_argument("--dtype", default="float32", choices=DTYPES)
    ex.add_argument("directory", metavar="DIR")
    ex.set_defaults(func=_guarded(_export))

    from .certify import add_commands

    add_commands(sub)  # certify, verify
    return parser, sub


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns its exit status (2 on a usage error)."""
    parser, _ = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on errors, 0 for --help
        return int(exc.code or 0)
    return dispatch(args)


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command. An exception it does not handle itself (a malformed input file,
    say) becomes one line on stderr and exit status 2; ``--debug`` shows the traceback instead."""
    try:
        return args.func(args)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into one line
        if getattr(args, "debug", False):
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"conv-conformance {getattr(args, 'command', '')}: error: {type(exc).__name__}: {text[:500]} "
              "(--debug shows the traceback)", file=sys.stderr)
        return 2


# ------------------------------------------------------------------ helpers

def check_layers(layers: list[str] | None) -> list[str] | None:
    """``layers`` if every name is a layer the suite covers; else UsageError listing them."""
    from conv_conformance import reference

    if layers is None:
        return None
    unknown = [name for name in layers if name not in reference.LAYERS]
    if unknown or not layers:
        raise UsageError(f"Argument `--layers` must name layers among {', '.join(sorted(reference.LAYERS))}. "
                         f"Received: {', '.join(unknown) or '(empty)'}")
    return layers


def _case_set(profile: str, layers: list[str] | None) -> list[Any]:
    from conv_conformance.oracle.cases import case_set

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
            from tqdm import tqdm

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


# ------------------------------------------------------------------ commands

def _run(args: argparse.Namespace) -> int:
    from conv_conformance.oracle.cases import corpus_id

    from .registry import resolve
    from .report import ReportWriter, default_meta, utc_now
    from .runner import WorkerStartError, run

    from . import resume as resuming

    previous = _resumed(args) if getattr(args, "resume", None) else None
    if args.adapter is None:
        raise UsageError("Argument `--adapter` is required (or --resume DIR to finish a run)")
    layers = check_layers(args.layers)
    target = resolve(args.adapter)
    waivers = load_waivers(getattr(args, "waivers", None))
    arrays = None
    if getattr(args, "cases", None):
        cases, arrays = _imported(args, layers)
    else:
        cases = _case_set(args.profile, layers)
    from conv_conformance.oracle.cases import TOLERANCE_ENV, resolve_tolerance

    # the workers materialize the cases: they read the mode from their inherited environment
    os.environ[TOLERANCE_ENV] = resolve_tolerance(args.tolerance)
    meta = default_meta(corpus_id=corpus_id(cases), profile=args.profile, dtype=args.dtype,
                        adapter={"name": args.adapter, "target": target, "versions": {}},
                        jobs=args.jobs, timeout=args.timeout, started=utc_now(),
                        threads_per_job=args.threads_per_job, repeat=args.repeat)
    meta["tolerance"] = os.environ[TOLERANCE_ENV]
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
    todo = [i for i in range(len(cases)) if i not in done]
    if previous is not None:
        print(f"resuming {args.out}: {len(done)} of {len(cases)} cases already done, {len(todo)} to run",
              file=sys.stderr)

    def ready(info: Any) -> None:
        writer.meta["adapter"] = {"name": info.name, "target": info.target, "versions": info.versions,
                                  "declaration": getattr(info, "declaration", None)}
        writer.meta["environment"] = info.environment
        if waivers is not None:
            waivers.bind(writer.meta["adapter"], info.environment, args.dtype)
        resuming.save_run(args.out, run_file | {"adapter": writer.meta["adapter"], "environment": info.environment})
        if args.verbose and info.output:
            print(f"--- output of the worker while loading {args.adapter} ---\n{info.output.rstrip()}",
                  file=sys.stderr)

    progress = _Progress(len(todo))
    results = run(args.adapter, [cases[i] for i in todo], args.dtype, jobs=args.jobs, timeout=args.timeout,
                  threads=args.threads_per_job, on_ready=ready, cases_per_worker=args.cases_per_worker,
                  repeat=args.repeat,
                  memory_limit=args.memory_limit * 2 ** 20 if args.memory_limit else None,
                  arrays=None if arrays is None else [arrays[i] for i in todo]) \
        if todo else (r for r in ())  # a resumed run with nothing left starts no worker
    start = time.monotonic()
    interrupted = False
    try:
        for k, result in results:
            if waivers is not None:
                waivers.apply(result)
            writer.add(todo[k], result)
            progress.update(result)
            if args.verbose and result.output:
                progress.write(f"--- output of {result.id} ---\n{result.output.rstrip()}")
    except KeyboardInterrupt:
        interrupted = True
    except WorkerStartError as exc:
        writer.finish(interrupted=True)
        writer.path.unlink()
        raise UsageError(f"cannot load adapter {args.adapter!r}: {exc}") from exc
    finally:
        results.close()
        progress.close()
    if waivers is not None:
        writer.summary_extra["waivers"] = waivers.summary()
        for line in writer.summary_extra["waivers"]["warnings"]:
            print(f"warning: {line}", file=sys.stderr)
    summary = writer.finish(interrupted=interrupted)
    _print_summary(summary, writer.path, time.monotonic() - start, interrupted)
    if interrupted:
        print(f"interrupted: {writer.cases} of {len(cases)} cases done; finish the run with: "
              f"conv-conformance run --resume {args.out}", file=sys.stderr)
        return 130
    return 0 if summary["conformant"] else 1


# The options of `run` that run.json keeps for --resume.
_RUN_OPTIONS = ("adapter", "profile", "layers", "dtype", "jobs", "timeout", "cases_per_worker",
                "threads_per_job", "repeat", "tolerance", "waivers", "memory_limit", "cases", "max_elements")


def _imported(args: argparse.Namespace, layers: list[str] | None) -> tuple[list, list]:
    """The cases and arrays of --cases DIR (only --layers, if given); sets the run's dtype and
    profile from the corpus. Anything unsafe in DIR is a UsageError (oracle.corpus.CorpusError)."""
    import json

    from conv_conformance.oracle import corpus

    try:
        read = corpus.read(args.cases, max_elements=args.max_elements or corpus.MAX_ELEMENTS)
        index = json.loads((Path(args.cases) / "index.json").read_text("utf-8"))
    except corpus.CorpusError as exc:
        raise UsageError(f"Argument `--cases`: {exc}") from exc
    dtype = index.get("dtype")
    if dtype not in DTYPES:
        raise UsageError(f"Argument `--cases`: index.json dtype must be one of {', '.join(DTYPES)}. "
                         f"Received: {dtype!r}")
    args.dtype = dtype
    args.profile = f"cases:{index.get('profile', 'imported')}"
    read = [(c, m) for c, m in read if layers is None or c.layer in layers]
    return [c for c, _ in read], [m for _, m in read]


def _resumed(args: argparse.Namespace) -> dict:
    """The run.json of --resume DIR; its options replace args' (DIR becomes --out)."""
    from .resume import ResumeError, load_run

    try:
        previous = load_run(args.resume)
    except ResumeError as exc:
        raise UsageError(str(exc)) from exc
    for key, value in previous["options"].items():
        if key in _RUN_OPTIONS:
            setattr(args, key, value)
    args.out = args.resume
    return previous


def load_waivers(path: str | None) -> Any:
    """The WaiverSet of a waiver file (None without one); a bad file is a UsageError."""
    if path is None:
        return None
    from .report import suite_version
    from .waivers import WaiverError, WaiverSet, load

    try:
        return WaiverSet(load(path, suite_version()))
    except WaiverError as exc:
        raise UsageError(f"Argument `--waivers`: {exc}") from exc


def _print_summary(summary: dict, path: Any, seconds: float, interrupted: bool) -> None:
    counts = ", ".join(f"{n} {v}" for v, n in summary["counts"].items() if n)
    state = ("INTERRUPTED (partial report)" if interrupted else
             "CONFORMANT" if summary["conformant"] else "NOT CONFORMANT")
    ratios = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in summary["worst_ratio"].items() if v is not None)
    print(f"{state}: {summary['cases']} cases in {seconds:.1f} s ({counts or 'none'})"
          + (f"; worst error ratio {ratios}" if ratios else ""))
    if summary.get("coverage"):
        from .levels import coverage_line

        print(coverage_line(summary["coverage"], summary.get("levels") or {}))
    for waiver in (summary.get("waivers") or {}).get("applied", []):
        print(f"waived by {waiver['id']} ({waiver['link']}): {len(waiver['cases'])} case(s)")
    print(f"report: {path}")


def _list_adapters(args: argparse.Namespace) -> int:
    from .registry import GROUP, list_adapters

    infos = list_adapters()
    if not infos:
        print(f"No adapters registered in the entry-point group {GROUP!r}.")
    width = max((len(i.name) for i in infos), default=0)
    for info in infos:
        status = "ok" if info.error is None else f"not importable: {info.error}"
        print(f"{info.name:<{width}}  {info.target}  [{status}]")
    return 0


def _export(args: argparse.Namespace) -> int:
    from conv_conformance.oracle.export import export

    try:
        written = export(args.profile, args.directory, dtype=args.dtype)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(f"exported the {args.profile} case set ({args.dtype}) to {args.directory}"
          + (f": {written}" if written else ""))
    return 0


def _explore(args: argparse.Namespace) -> int:
    from .explore import explore, reproducer
    from .runner import WorkerStartError

    check_layers(args.layers)
    try:
        findings = explore(args.adapter, max_examples=args.max_examples, layers=args.layers, dtype=args.dtype,
                           seed=args.seed, timeout=args.timeout)
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

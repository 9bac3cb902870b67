"""The ``conv-conformance`` console script.

Builds on :func:`conformance.cli.build_parser` (run, list-adapters, explore,
export) and adds:

* ``report RUN.json --format junit|markdown|html [--out FILE]``: re-render a saved run.
* ``scoreboard RUN.json [RUN.json ...] --out DIR``: DIR/scoreboard.md and DIR/scoreboard.html.
* ``compare BASE.json NEW.json [--threshold X] [--shared-only] [--out FILE]``:
  Markdown on stdout (and FILE); exit 1 on any regression, 0 otherwise
  (see :mod:`reports.compare` for what counts).

Exit status 2 on a usage error: a missing file, a file that is not a report,
a report that fails the schema (the message names the field), different
corpus ids without ``--shared-only``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import ReportError, load

__all__ = ["main", "add_commands", "FORMATS"]

FORMATS = ("junit", "markdown", "html")


def _render(report: dict, fmt: str) -> str:
    if fmt == "junit":
        from .junit import render
    elif fmt == "markdown":
        from .markdown import render
    else:
        from .html import render
    return render(report)


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
    from .scoreboard import write

    try:
        reports = [load(path) for path in args.runs]
    except ReportError as exc:
        return _fail("scoreboard", exc)
    for path in write(reports, args.out):
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
    from .compare import CompareError, compare, render

    try:
        base, new = load(args.base), load(args.new)
        result = compare(base, new, threshold=args.threshold, shared_only=args.shared_only)
    except (ReportError, CompareError) as exc:
        return _fail("compare", exc)
    for warning in result.warnings:
        print(f"conv-conformance compare: warning: {warning}", file=sys.stderr)
    text = render(result).rstrip("\n") + "\n"
    _emit(text, None)
    if args.out:
        _emit(text, args.out)
    return 1 if result.regressions else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add report, scoreboard and compare to a subparsers action; each sets ``func``."""
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
    cmp.set_defaults(func=_compare)


def _build_parser() -> argparse.ArgumentParser:
    from conv_conformance.conformance.cli import build_parser

    parser, sub = build_parser()
    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``conv-conformance``; returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 for --help
        return int(exc.code or 0)
    from conv_conformance.conformance.cli import dispatch

    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())

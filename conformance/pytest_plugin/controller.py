"""The controlling side of the pytest plugin's ``--conv-report DIR``: report.json from a pytest run.

:class:`ReportCollector` runs in the controlling process (pytest itself, or pytest-xdist's
controller). It reads each case's record from ``pytest_runtest_logreport`` (put there by
:func:`.worker.attach` in the process that scored the case), records a ``crash`` for a case
whose xdist worker died (``pytest_handlecrashitem``), and streams everything through
:class:`conformance.report.ReportWriter`, which writes ``DIR/report.json`` at the end of the
session, with the same meta (tolerance mode included) a session gives ``run``.

A case stopped by pytest-timeout is recorded as ``timeout``; any other exception that escapes
the scoring (the adapter failed to load, say) as ``error`` (see :func:`.worker.attach`).
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pytest

from conv_conformance.oracle.case import corpus_id

from ..record import CaseResult, lost
from ..report import ReportWriter
from ..session import Session
from ..waivers import WaiverSet
from .worker import decode, run_config

__all__ = ["ReportCollector"]


def _jobs(config: pytest.Config) -> int:
    """The number of xdist workers (``-n``/``--tx``), 1 without xdist."""
    tx = getattr(config.option, "tx", None) or []
    return len(tx) if getattr(config.option, "dist", "no") != "no" and tx else 1


def _timeout(config: pytest.Config) -> float | None:
    """pytest-timeout's per-test timeout in seconds (None: none or not installed)."""
    value = getattr(config, "_env_timeout", None)  # option, ini or PYTEST_TIMEOUT, as pytest-timeout read it
    if value is None:
        try:
            value = config.getoption("timeout")
        except ValueError:
            value = None
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


class ReportCollector:
    """The controller's half: collects the case records and writes DIR/report.json.

    ``cases`` is the case set in order, ``prefix`` the node id prefix of their items, and
    ``waivers`` the parsed waiver file (or None)."""

    def __init__(self, config: pytest.Config, cases: Sequence[Any], prefix: str, waivers: WaiverSet | None) -> None:
        self.config = config
        self.directory = config.getoption("conv_report")
        self.dtype = config.getoption("conv_dtype")
        self.cases = list(cases)
        self.parsed_waivers = waivers
        self.index = {f"{prefix}::{case.id}": (n, case) for n, case in enumerate(self.cases)}
        self.corpus_id = corpus_id(self.cases)
        self.recorded: set[int] = set()
        self.writer: Any = None
        self.summary: dict | None = None
        self.adapter_known = False
        self.results: list[CaseResult] = []  # for the waivers' summary

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            return  # nothing is scored, nothing to report
        meta = Session(run_config(self.config), self.cases).meta(
            profile=self.config.getoption("conv_profile"), corpus_id=self.corpus_id, jobs=_jobs(self.config),
            timeout=_timeout(self.config), threads_per_job=None)
        self.writer = ReportWriter(self.directory, meta)

    def _add(self, nodeid: str, result: CaseResult) -> None:
        entry = self.index.get(nodeid)
        if entry is None or entry[0] in self.recorded or self.writer is None:
            return  # not a case of this case set, or already recorded (first record wins)
        self.recorded.add(entry[0])
        self.writer.add(entry[0], result)
        self.results.append(result)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = getattr(report, "conv_adapter", None)
        if info is not None and not self.adapter_known and self.writer is not None:
            fields = json.loads(info)
            self.writer.meta["adapter"] = fields["adapter"]
            self.writer.meta["environment"] = fields["environment"]
            self.adapter_known = True
        text = getattr(report, "conv_case", None)
        if text is not None:
            self._add(report.nodeid, decode(text))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """pytest-xdist: the worker running ``crashitem`` died; its case is a crash."""
        entry = self.index.get(crashitem)
        if entry is None:
            return
        node = getattr(report, "node", None)
        worker = getattr(getattr(node, "gateway", None), "id", None)
        self._add(crashitem, lost(entry[1], self.dtype, "crash",
                                   f"the pytest-xdist worker {worker or '?'} died while running this case"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.writer is None:
            return
        interrupted = (exitstatus == pytest.ExitCode.INTERRUPTED or len(self.recorded) < len(self.cases))
        parsed = self.parsed_waivers  # read and checked at configure
        if parsed is not None:
            waivers = WaiverSet(parsed.waivers)  # a fresh tally: this process may have applied `parsed`
            waivers.bind(self.writer.meta["adapter"], self.writer.meta.get("environment") or {}, self.dtype)
            for result in self.results:
                waivers.tally(result)
            self.writer.summary_extra["waivers"] = waivers.summary()
        self.summary = self.writer.finish(interrupted=interrupted)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.summary is None:
            return
        s = self.summary
        counts = ", ".join(f"{n} {v}" for v, n in s["counts"].items() if n) or "none"
        state = ("CONFORMANT" if s["conformant"] else
                 f"PARTIAL ({s['cases']} of {len(self.cases)} cases scored)" if len(self.recorded) < len(self.cases)
                 else "NOT CONFORMANT")
        terminalreporter.write_sep("-", "conv-conformance report")
        terminalreporter.write_line(f"{state}: {s['cases']} cases ({counts})")
        terminalreporter.write_line(f"report: {self.writer.path}")

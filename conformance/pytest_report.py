"""``--conv-report DIR`` of the pytest plugin: report.json from a pytest run.

Two halves, one per side of pytest's report channel:

* In the process that scores a case (the pytest process itself, or a
  pytest-xdist worker, local or remote), :func:`attach` puts the case's record
  on its call-phase :class:`pytest.TestReport` as the attribute ``conv_case``
  (a JSON string) and, on the first case of the process, the adapter's name,
  versions and environment as ``conv_adapter``. pytest-xdist serializes a
  report's attributes (``pytest_report_to_serializable``), so both reach the
  controller with the report; nothing is written on the workers.
* In the controlling process, :class:`ReportCollector` reads them from
  ``pytest_runtest_logreport``, records a ``crash`` for a case whose xdist
  worker died (``pytest_handlecrashitem``), and streams everything through
  :class:`conformance.report.ReportWriter`, which writes ``DIR/report.json``
  at the end of the session.

A case stopped by pytest-timeout (its ``Timeout (>Ns) from pytest-timeout``
failure) is recorded as ``timeout``; any other exception that escapes the
scoring (the adapter failed to load, say) as ``error``. Both carry the
exception text in the record's message, as the CLI's records do.
"""
from __future__ import annotations

import json
import math
from typing import Any

import pytest

from .report import jsonable
from .scoring import CaseResult, describe_call

__all__ = ["ReportCollector", "attach", "adapter_info", "encode", "decode"]

#: The start of the failure message of pytest-timeout (signal method).
_TIMEOUT_PREFIX = "Timeout (>"


def encode(result: CaseResult) -> str:
    """A case result as JSON text that :func:`decode` turns back into an equal CaseResult
    (infinities and NaN survive: Python's json writes and reads them)."""
    return json.dumps(jsonable(result.to_json(), nonfinite_as_strings=False))


def decode(text: str) -> CaseResult:
    """The CaseResult that :func:`encode` wrote."""
    return CaseResult(**json.loads(text))


def adapter_info(adapter: Any, target: str) -> str:
    """What the report records about the adapter loaded in this process: the ``adapter``
    field (name, target, versions) and the ``environment`` it runs in, as JSON text."""
    from .environment import detect
    from .levels import declaration_of
    from .registry import adapter_environment, adapter_name, adapter_versions, resolve

    declared = declaration_of(adapter)  # as the CLI's worker records it (per-layer levels in the summary)
    return json.dumps(jsonable({"adapter": {"name": adapter_name(adapter, target), "target": resolve(target),
                                          "versions": adapter_versions(adapter),
                                          "declaration": declared.to_json() if declared is not None else None},
                              "environment": detect(adapter_environment(adapter))}, nonfinite_as_strings=False))


def _lost(case: Any, dtype: str, verdict: str, why: str, seconds: float = 0.0) -> CaseResult:
    """A record for a case whose scoring never returned: ``verdict`` in each of its categories."""
    result = CaseResult.for_case(case, dtype, message=f"{why} [{describe_call(case.spec, case.input_shape, dtype)}]",
                                 seconds=seconds)
    for category in CaseResult.categories_of(case):
        result.verdicts[category] = verdict
    return result


def attach(report: pytest.TestReport, item: Any, call: pytest.CallInfo, info_key: Any) -> None:
    """Put the record of ``item``'s case on its call-phase ``report`` (``conv_case``) and, the
    first time in this process, the adapter's record (``conv_adapter``, from ``info_key``)."""
    dtype = item.config.getoption("conv_dtype")
    result = getattr(item, "conv_result", None)
    if result is None:  # the scoring did not return: pytest-timeout stopped it, or something raised
        excinfo = call.excinfo
        text = str(excinfo.value) if excinfo is not None else "the case was not scored"
        if excinfo is not None and excinfo.errisinstance(pytest.fail.Exception) and text.startswith(_TIMEOUT_PREFIX):
            result = _lost(item.case, dtype, "timeout", f"the case did not finish: {text}", call.duration)
        else:
            what = f"{excinfo.typename}: {text}" if excinfo is not None else text
            result = _lost(item.case, dtype, "error", f"the harness could not score this case: {what}",
                           call.duration)
            if excinfo is not None:
                result.exception = {"type": excinfo.typename, "message": text}
    report.conv_case = encode(result)  # type: ignore[attr-defined]
    sent = item.config.stash.get(_SENT, False)
    if not sent and info_key in item.config.stash:
        report.conv_adapter = item.config.stash[info_key]  # type: ignore[attr-defined]
        item.config.stash[_SENT] = True


_SENT = pytest.StashKey[bool]()


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
    """The controller's half: collects the case records and writes DIR/report.json."""

    def __init__(self, config: pytest.Config) -> None:
        from conv_conformance.oracle.cases import case_set, corpus_id

        from .pytest_plugin import _COLLECTOR, _layers

        self.config = config
        self.directory = config.getoption("conv_report")
        self.dtype = config.getoption("conv_dtype")
        self.cases = case_set(config.getoption("conv_profile"), layers=_layers(config))
        self.index = {f"{_COLLECTOR}::{case.id}": (n, case) for n, case in enumerate(self.cases)}
        self.corpus_id = corpus_id(self.cases)
        self.recorded: set[int] = set()
        self.writer: Any = None
        self.summary: dict | None = None
        self.adapter_known = False
        self.results: list[CaseResult] = []  # for the waivers' summary

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.config.option.collectonly:
            return  # nothing is scored, nothing to report
        from .registry import resolve
        from .report import ReportWriter, default_meta

        name = self.config.getoption("conv_adapter")
        meta = default_meta(corpus_id=self.corpus_id, profile=self.config.getoption("conv_profile"),
                            dtype=self.dtype, adapter={"name": name, "target": resolve(name), "versions": {}},
                            jobs=_jobs(self.config), timeout=_timeout(self.config), threads_per_job=None)
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
        self._add(crashitem, _lost(entry[1], self.dtype, "crash",
                                   f"the pytest-xdist worker {worker or '?'} died while running this case"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.writer is None:
            return
        interrupted = (exitstatus == pytest.ExitCode.INTERRUPTED or len(self.recorded) < len(self.cases))
        from .pytest_plugin import _WAIVERS

        parsed = self.config.stash.get(_WAIVERS, None)  # read and checked at configure
        if parsed is not None:
            from .waivers import WaiverSet

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

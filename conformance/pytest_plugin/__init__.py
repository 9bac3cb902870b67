"""pytest plugin: a conformance case set as test items.

``pytest --conv-adapter=NAME [--conv-profile P] [--conv-dtype D] [--conv-layers A,B]``
adds one test item per case, named by the case id (node id
``conv-conformance::<case id>``, stable across runs and machines), so ``-k``,
``-n N`` (pytest-xdist) and ``--junitxml`` work as for any test. A case fails
when any category is fail, error, timeout or crash, and is skipped when the
adapter declines it (unsupported). Cases run in the pytest process; use
``-n N`` for process isolation (a case that kills its process fails alone and
pytest-xdist replaces the worker) and pytest-timeout's ``--timeout=SECONDS`` for
a per-case timeout. Without ``--conv-adapter`` the plugin only
registers its options, marker and fixtures.

``--conv-waivers FILE`` applies a waiver file as ``run --waivers`` does: a
failing case it covers is ``waived`` in the record and xfailed in pytest
(reason: the waiver's id and link); the report's summary lists the waivers
applied and warns about those that matched nothing.

``--conv-report DIR`` writes ``DIR/report.json`` as ``conv-conformance run``
does (same schema, corpus id, environment and per-case records). The process
that scores a case attaches its record (and, once per process, the adapter's
versions and environment) to the case's pytest report, so with pytest-xdist
the records reach the controlling process through pytest's own report
channel, also from remote ``--tx`` workers; only the controller writes. A case
that pytest-timeout stops is a ``timeout``; a case whose xdist worker dies is a
``crash``. A run that scores only part of the case set (``-k``, ``-x``,
Ctrl-C) is written as interrupted, so it never claims conformance.

``--conv-tolerance rigorous|probabilistic`` picks the allowed error as ``run --tolerance``
does; the report records it.

Fixtures: ``conv_adapter`` (the loaded adapter, session scope), ``conv_dtype``.

The plugin is wired in one direction, as pytest-xdist's is: this module (options, items,
fixtures) -> :mod:`.controller` (the report, in the controlling process) and :mod:`.worker`
(scoring, in the process that runs an item).
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from conv_conformance.oracle.cases import case_set
from conv_conformance.vocabulary import DEFAULT_TOLERANCE, DTYPES, FAILING, PROFILES, TOLERANCE_MODES

from ..registry import AdapterNotFound, resolve
from ..session import UsageError, check_layers, load_waivers
from . import worker
from .controller import ReportCollector

_COLLECTOR = "conv-conformance"
_WAIVERS = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conv-conformance", "conformance of convolutional layers (conv-conformance)")
    group.addoption("--conv-adapter", metavar="NAME|module:attr", default=None,
                    help="run the conformance case set against this adapter")
    group.addoption("--conv-profile", choices=PROFILES, default="smoke", help="case set (default: smoke)")
    group.addoption("--conv-dtype", choices=DTYPES, default="float32", help="array dtype (default: float32)")
    group.addoption("--conv-tolerance", choices=TOLERANCE_MODES, default=DEFAULT_TOLERANCE,
                    help="allowed error per element, as `conv-conformance run --tolerance` "
                         f"(default: {DEFAULT_TOLERANCE}; docs/tolerance.md)")
    group.addoption("--conv-layers", metavar="Conv2D,...", default=None,
                    help="only these layer classes (comma-separated)")
    group.addoption("--conv-report", metavar="DIR", default=None,
                    help="write DIR/report.json (the report `conv-conformance run` writes), "
                         "assembled in the controlling process")
    group.addoption("--conv-waivers", metavar="FILE", default=None,
                    help="waiver file (TOML or JSON; docs/certification.md): a failing case it covers "
                         "is reported `waived` (xfail in pytest's terms)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conv_case: a conformance case added by --conv-adapter")
    name = config.getoption("conv_adapter")
    if not name:
        for option in ("conv_report", "conv_waivers"):
            if config.getoption(option):
                flag = "--" + option.replace("_", "-")
                raise pytest.UsageError(f"{flag} needs --conv-adapter (the adapter whose cases it is for); "
                                        f"got {flag} {config.getoption(option)!r} alone")
        return
    try:
        resolve(name)
    except AdapterNotFound as exc:
        raise pytest.UsageError(f"--conv-adapter: {exc}") from exc
    cases = case_set(config.getoption("conv_profile"), layers=_layers(config))
    try:
        waivers = load_waivers(config.getoption("conv_waivers"))
    except UsageError as exc:
        raise pytest.UsageError(f"--conv-waivers: {str(exc).replace('Argument `--waivers`: ', '')}") from exc
    config.stash[_WAIVERS] = waivers
    config.pluginmanager.register(_CaseSet(cases), "conv-conformance-cases")
    if config.getoption("conv_report") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportCollector(config, cases, _COLLECTOR, waivers), "conv-conformance-report")


class _CaseSet:
    """Adds the case set to the collected items (before -k/-m deselection)."""

    def __init__(self, cases: list[Any]) -> None:
        self.cases = cases

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        cases = self.cases
        parent = _Cases.from_parent(session, name=_COLLECTOR, nodeid=_COLLECTOR)
        added = [CaseItem.from_parent(parent, name=case.id, case=case) for case in cases]
        items.extend(added)
        # Report them as collected, so "collected N items" and other plugins count them.
        config.hook.pytest_collectreport(report=pytest.CollectReport(_COLLECTOR, "passed", None, added))


def _layers(config: pytest.Config) -> list[str] | None:
    """The --conv-layers list, checked against the layers the suite covers."""
    text = config.getoption("conv_layers")
    try:
        return check_layers([s.strip() for s in text.split(",") if s.strip()]) if text else None
    except UsageError as exc:
        raise pytest.UsageError(f"--conv-layers: {exc}") from exc


class _Cases(pytest.Collector):
    """The parent node of the case items (they are created by the plugin, not collected)."""

    def collect(self) -> list[pytest.Item]:
        return []


class ConformanceFailure(Exception):
    """A case whose verdict is fail, error, timeout or crash."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.message)
        self.result = result


class CaseItem(pytest.Item):
    """One conformance case scored against the ``--conv-adapter`` adapter."""

    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("conv_case")

    def runtest(self) -> None:
        self.conv_result = None  # a rerun of this item must not report the previous run's record
        result = worker.score(self.config, self.case, self.config.stash.get(_WAIVERS, None))
        self.conv_result = result  # for --conv-report (pytest_runtest_makereport below)
        self.user_properties.append(("verdicts", json.dumps(result.verdicts)))
        if result.verdict in FAILING:
            raise ConformanceFailure(result)
        if result.verdict == "waived":
            pytest.xfail(result.message.splitlines()[0])
        if result.verdict == "unsupported":
            pytest.skip(result.message.splitlines()[0] if result.message else "unsupported")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceFailure):
            result = excinfo.value.result
            verdicts = ", ".join(f"{k}={v}" for k, v in result.verdicts.items())
            return f"{result.id}: {verdicts}\n{result.message}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.case.layer} {self.case.id}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """With --conv-report: attach the case's record to its call-phase report (.worker.attach)."""
    report = yield
    if isinstance(item, CaseItem) and report.when == "call" and item.config.getoption("conv_report"):
        worker.attach(report, item, call)
    return report


@pytest.fixture(scope="session")
def conv_adapter(pytestconfig: pytest.Config) -> Any:
    """The adapter named by --conv-adapter (the test is skipped without it)."""
    if not pytestconfig.getoption("conv_adapter"):
        pytest.skip("no --conv-adapter given")
    return worker.adapter(pytestconfig)


@pytest.fixture(scope="session")
def conv_dtype(pytestconfig: pytest.Config) -> str:
    """The --conv-dtype of this run (default float32)."""
    return pytestconfig.getoption("conv_dtype")

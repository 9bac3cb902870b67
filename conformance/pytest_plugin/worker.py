"""The scoring side of the pytest plugin: the process that runs a case item (pytest itself, or a
pytest-xdist worker, local or remote).

It loads the adapter once per process, scores each item through one
:class:`~conformance.session.Session` (the path every front end shares) and, with
``--conv-report``, puts the case's record on its call-phase :class:`pytest.TestReport` as the
attribute ``conv_case`` (JSON text) and, on the first case of the process, the adapter's
record as ``conv_adapter``. pytest-xdist serializes a report's attributes, so both reach the
controller (:mod:`.controller`) with the report; nothing is written here.
"""
from __future__ import annotations

import json
from typing import Any

import pytest

from ..record import CaseResult, lost
from ..registry import describe, load_adapter
from ..report import jsonable
from ..session import RunConfig, Session

__all__ = ["encode", "decode", "run_config", "session", "adapter", "score", "attach", "TIMEOUT_PREFIX"]

#: The start of the failure message of pytest-timeout (signal method).
TIMEOUT_PREFIX = "Timeout (>"

_ADAPTER = pytest.StashKey[Any]()
_ADAPTER_INFO = pytest.StashKey[Any]()
_SESSION = pytest.StashKey[Session]()
_SENT = pytest.StashKey[bool]()


def encode(result: CaseResult) -> str:
    """A case record as JSON text that :func:`decode` turns back into an equal CaseResult
    (infinities and NaN survive: Python's json writes and reads them)."""
    return json.dumps(jsonable(result.to_json(), nonfinite_as_strings=False))


def decode(text: str) -> CaseResult:
    """The CaseResult that :func:`encode` wrote."""
    return CaseResult.from_json(json.loads(text))


def run_config(config: pytest.Config) -> RunConfig:
    """The run's configuration, from the plugin's options."""
    return RunConfig(config.getoption("conv_adapter"), dtype=config.getoption("conv_dtype"),
                     tolerance=config.getoption("conv_tolerance"))


def session(config: pytest.Config, waivers: Any = None) -> Session:
    """This process's session (created once, with the parsed ``waivers`` if any)."""
    if _SESSION not in config.stash:
        config.stash[_SESSION] = Session(run_config(config), [], waivers=waivers)
    return config.stash[_SESSION]


def adapter(config: pytest.Config) -> Any:
    """The --conv-adapter adapter, loaded once per process."""
    if _ADAPTER not in config.stash:
        target = config.getoption("conv_adapter")
        loaded = load_adapter(target)
        config.stash[_ADAPTER] = loaded
        config.stash[_ADAPTER_INFO] = describe(loaded, target)
    return config.stash[_ADAPTER]


def score(config: pytest.Config, case: Any, waivers: Any = None) -> CaseResult:
    """One case item scored in this process, through this process's session."""
    s = session(config, waivers)
    loaded = adapter(config)
    if s.adapter_info is None:  # the waivers' conditions: this adapter, its versions and environment
        s.bind(config.stash[_ADAPTER_INFO])
    return s.score(loaded, case)


def attach(report: pytest.TestReport, item: Any, call: pytest.CallInfo) -> None:
    """Put the record of ``item``'s case on its call-phase ``report`` (``conv_case``) and, the
    first time in this process, the adapter's record (``conv_adapter``)."""
    dtype = item.config.getoption("conv_dtype")
    result = getattr(item, "conv_result", None)
    if result is None:  # the scoring did not return: pytest-timeout stopped it, or something raised
        excinfo = call.excinfo
        text = str(excinfo.value) if excinfo is not None else "the case was not scored"
        if excinfo is not None and excinfo.errisinstance(pytest.fail.Exception) and text.startswith(TIMEOUT_PREFIX):
            result = lost(item.case, dtype, "timeout", f"the case did not finish: {text}", call.duration)
        else:
            what = f"{excinfo.typename}: {text}" if excinfo is not None else text
            result = lost(item.case, dtype, "error", f"the harness could not score this case: {what}",
                          call.duration)
            if excinfo is not None:
                result.exception = {"type": excinfo.typename, "message": text}
    report.conv_case = encode(result)  # type: ignore[attr-defined]
    if not item.config.stash.get(_SENT, False) and _ADAPTER_INFO in item.config.stash:
        info = item.config.stash[_ADAPTER_INFO]
        report.conv_adapter = json.dumps(jsonable({"adapter": info.adapter_record(),  # type: ignore[attr-defined]
                                                   "environment": info.environment}, nonfinite_as_strings=False))
        item.config.stash[_SENT] = True

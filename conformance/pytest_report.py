"""Deprecated: the pytest plugin's report halves moved to :mod:`conformance.pytest_plugin.controller`
(``ReportCollector``) and :mod:`conformance.pytest_plugin.worker` (``attach``, ``encode``, ``decode``)."""
from __future__ import annotations

import importlib
import warnings
from typing import Any

_HOMES = {"ReportCollector": "controller", "attach": "worker", "encode": "worker", "decode": "worker"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = f"conv_conformance.conformance.pytest_plugin.{_HOMES[name]}"
    warnings.warn(f"{__name__}.{name} moved to {home}.{name}; the old path goes in the next release",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(home), name)

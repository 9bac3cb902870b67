"""Deprecated: the pytest plugin's report halves moved to :mod:`conformance.pytest_plugin.controller`
(``ReportCollector``) and :mod:`conformance.pytest_plugin.worker` (``attach``, ``encode``, ``decode``)."""
from __future__ import annotations

from conv_conformance import _compat

__getattr__ = _compat.forward(__name__, {
    "ReportCollector": "conv_conformance.conformance.pytest_plugin.controller",
    **dict.fromkeys(("attach", "encode", "decode"), "conv_conformance.conformance.pytest_plugin.worker")})

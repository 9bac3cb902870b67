"""Conformance harness: adapters, scoring, isolation, sessions, pytest plugin.

The adapter contract is :mod:`conformance.contract` (``Adapter``, ``GradientAdapter``, ...);
an adapter declines a case by raising :class:`Unsupported`.
"""
from __future__ import annotations

from conv_conformance import _compat

from .contract import Adapter, ConstraintAdapter, GradientAdapter, InitializerAdapter, RegularizerAdapter

_compat.alias_top_level(__name__)


class Unsupported(Exception):
    """Raised by an adapter to decline a case (a layer, argument or dtype it
    does not implement). Reported as unsupported, never as a failure."""


__all__ = ["Unsupported", "Adapter", "GradientAdapter", "InitializerAdapter", "RegularizerAdapter",
           "ConstraintAdapter"]

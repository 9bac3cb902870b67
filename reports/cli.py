"""Deprecated: the command line moved to :mod:`conv_conformance.cli`."""
from __future__ import annotations

from conv_conformance import _compat

__getattr__ = _compat.forward(__name__, "conv_conformance.cli")

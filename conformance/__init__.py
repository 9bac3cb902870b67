"""Conformance harness: adapters, scoring, isolation, CLI, pytest plugin."""
from __future__ import annotations


class Unsupported(Exception):
    """Raised by an adapter to decline a case (a layer, argument or dtype it
    does not implement). Reported as unsupported, never as a failure."""

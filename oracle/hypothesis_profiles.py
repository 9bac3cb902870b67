"""The suite's Hypothesis settings profiles, registered in one place.

* ``ci``: derandomized (the same examples on every run and machine), a
  bounded number of examples, no deadline (TensorFlow's first call traces a
  graph), and the reproduction blob printed on failure.
* ``dev``: fresh random examples on every run, a moderate number of them.
* ``thorough``: many random examples, for nightly runs and after changes to
  the reference.

``tests/conftest.py`` loads ``ci`` when the environment variable ``CI`` is
set, otherwise ``$HYPOTHESIS_PROFILE`` or ``dev``.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["PROFILES", "register", "load"]

PROFILES = ("ci", "dev", "thorough")

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def register() -> None:
    """Register the profiles ``ci``, ``dev`` and ``thorough`` with Hypothesis."""
    settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None,
                              print_blob=True, suppress_health_check=_SUPPRESS)
    settings.register_profile("dev", max_examples=25, deadline=None, print_blob=True,
                              suppress_health_check=_SUPPRESS)
    settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True,
                              suppress_health_check=_SUPPRESS)


def load(name: str | None = None) -> str:
    """Register the profiles and load one: ``name``, else ``ci`` under CI, else
    ``$HYPOTHESIS_PROFILE``, else ``dev``. Returns the name loaded."""
    register()
    if name is None:
        name = "ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev")
    if name not in PROFILES:
        raise ValueError(f"Hypothesis profile must be one of {', '.join(map(repr, PROFILES))}. "
                         f"Received: {name!r}")
    settings.load_profile(name)
    return name

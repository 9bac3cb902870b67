"""Shared pytest configuration: the Hypothesis profile (see oracle.hypothesis_profiles)."""
from __future__ import annotations

from conv_conformance.oracle import hypothesis_profiles

hypothesis_profiles.load()

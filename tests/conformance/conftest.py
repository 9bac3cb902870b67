"""Shared fixtures of the harness tests: small real case sets and the report schema."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conv_conformance.oracle.cases import case_set

BROKEN = "tests.conformance.fixtures.broken"
SCHEMA = Path(__file__).resolve().parents[2] / "reports" / "schema.json"


@pytest.fixture(scope="session")
def few_cases():
    """Smoke cases of three cheap layers; Cropping1D is where the conditional
    broken adapters misbehave (broken.TARGET)."""
    cases = case_set("smoke", layers=["Cropping1D", "ZeroPadding1D", "Conv1D"])
    assert {c.layer for c in cases} == {"Cropping1D", "ZeroPadding1D", "Conv1D"}
    return cases


@pytest.fixture(scope="session")
def validate_report():
    """Validates a report dict against reports/schema.json (jsonschema, draft 2020-12)."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))

    def validate(report: dict) -> None:
        errors = sorted(validator.iter_errors(report), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])

    return validate

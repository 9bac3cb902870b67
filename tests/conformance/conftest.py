"""Shared fixtures of the harness tests: small real case sets, the report schema and the C client."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conv_conformance.oracle.cases import case_set

BROKEN = "tests.conformance.fixtures.broken"
SCHEMA = Path(__file__).resolve().parents[2] / "reports" / "schema.json"
C_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "c" / "conv_client.c"


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


@pytest.fixture(scope="session")
def client(tmp_path_factory) -> str:
    """clients/c/conv_client.c built once per session: the exec protocol's C implementation."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (`cc`) on PATH: the C client cannot be built")
    binary = tmp_path_factory.mktemp("c-client") / "conv_client"
    subprocess.run([cc, "-O2", "-std=c99", "-Wall", "-Werror", "-o", str(binary), str(C_CLIENT)], check=True)
    return str(binary)

"""Fixtures of the report tests: hand-built reports and real runs of the CLI.

Real runs: ``conv-conformance run`` on the smoke profile in a temporary
directory, once per session, for the reference adapter (conformant), the
``Mixed`` adapter of tests/reports/adapters.py (several distinct failures)
and ``WrongValues`` from tests/conformance/fixtures (every output wrong).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports import builders

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = {
    "reference": "reference",
    "mixed": "tests.reports.adapters:Mixed",
    "wrong": "tests.conformance.fixtures.broken:WrongValues",
}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the installed console script (the real entry point), repo importable."""
    exe = Path(sys.executable).with_name("conv-conformance")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=env, timeout=600)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> dict[str, Path]:
    """``{name: path of report.json}`` for real smoke runs of each adapter in ADAPTERS."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for name, target in ADAPTERS.items():
        proc = cli("run", "--adapter", target, "--profile", "smoke", "--out", str(base / name), cwd=base)
        assert proc.returncode == (0 if name == "reference" else 1), proc.stderr[-2000:]
        out[name] = base / name / "report.json"
    return out


@pytest.fixture(scope="session")
def real(runs) -> dict[str, dict]:
    """The parsed real reports."""
    return {name: json.loads(path.read_text()) for name, path in runs.items()}


@pytest.fixture
def mixed() -> dict:
    """A hand-built report with every verdict (see builders.mixed_cases)."""
    return builders.report(builders.mixed_cases())


@pytest.fixture
def clean() -> dict:
    """Its all-pass twin (same corpus id, same case ids)."""
    return builders.report(builders.all_pass_cases())

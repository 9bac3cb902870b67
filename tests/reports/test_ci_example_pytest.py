"""docs/ci-example.md's pytest variant, run as written (adapter and profile swapped for a test
adapter and smoke), and the one-import-name rule for every code sample in README.md and docs/."""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from conv_conformance.reports import load
from tests.reports.conftest import ADAPTERS, ROOT, cli

DOC = ROOT / "docs" / "ci-example.md"
PACKAGES = ("reference", "oracle", "conformance", "reports")
# An import of one of the four packages by its bare source-folder name (not conv_conformance.<name>).
BARE_IMPORT = re.compile(rf"^\s*(?:from\s+({'|'.join(PACKAGES)})(?:\.|\s)|import\s+({'|'.join(PACKAGES)})\b)", re.M)


def _pytest_command() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 2, "docs/ci-example.md has no pytest variant"
    lines = [line.strip() for line in blocks[1].splitlines() if line.strip().startswith("python -m pytest ")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])[3:]  # after "python -m pytest"


def test_ci_example_pytest_variant(tmp_path, runs):
    """The documented pytest step writes JUnit and a report.json that `compare` accepts against the
    CLI's report of the same adapter (same corpus, same verdicts: no regression)."""
    args = _pytest_command()
    assert "--conv-report" in args and "--junitxml" in args and "conformance/" in args
    args = [ADAPTERS["mixed"] if a == "mylib.conformance:MyAdapter" else a for a in args]
    args = ["smoke" if a == "standard" else a for a in args]
    (tmp_path / "conformance").mkdir()
    shutil.copy(runs["mixed"], tmp_path / "conformance" / "baseline.json")
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]  # Mixed fails cases: exit 1
    out = tmp_path / "conformance-report"
    report = load(out / "report.json")  # schema-checked, as `report` and `compare` read it
    baseline = json.loads(runs["mixed"].read_text())
    assert [c["id"] for c in report["cases"]] == [c["id"] for c in baseline["cases"]]
    testcases = list(ET.parse(out / "junit.xml").getroot().iter("testcase"))
    assert {tc.get("name") for tc in testcases} == {c["id"] for c in report["cases"]}
    compared = cli("compare", "conformance/baseline.json", "conformance-report/report.json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "no regressions" in compared.stdout


def _code_blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", text, re.S)


def test_code_samples_import_the_suite_by_its_one_name():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for path in docs:
        for lang, code in _code_blocks(path.read_text()):
            bare = [m.group(0).strip() for m in BARE_IMPORT.finditer(code)]
            assert not bare, f"{path.name}: bare import of a source folder in a code block: {bare}"
            if lang == "python":
                ast.parse(textwrap.dedent(code), filename=str(path))  # blocks inside list items are indented
                checked += 1
        for line in re.findall(r"`([^`\n]*\bimport\b[^`\n]*)`", path.read_text()):
            assert not BARE_IMPORT.search(line), f"{path.name}: `{line}`"
    assert checked >= 1  # the adapter guide's example at least


def test_the_short_form_of_the_docs_imports():
    code = ("import conv_conformance.reference as reference; import numpy as np; "
            "spec = {'class_name': 'ZeroPadding1D', 'config': {'padding': [1, 0], 'data_format': 'channels_last'}}; "
            "y = reference.forward(spec, np.ones((1, 2, 1)), {}); print(y[0, :, 0].tolist())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0.0, 1.0, 1.0]"


@pytest.mark.parametrize("pattern, bad", [("from reference import forward", True), ("import reports", True),
                                          ("from conformance.scoring import check", True),
                                          ("from conv_conformance.conformance import Unsupported", False),
                                          ("import conv_conformance.reference as reference", False),
                                          ("import referenced_thing", False)])
def test_bare_import_pattern(pattern, bad):
    assert bool(BARE_IMPORT.search(pattern)) is bad

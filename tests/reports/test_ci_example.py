"""docs/ci-example.md: the conv-conformance commands of the GitHub Actions job,
run in order in a scratch directory against a real (broken) adapter."""
from __future__ import annotations

import re
import shlex
import shutil
import xml.etree.ElementTree as ET

from tests.reports.conftest import ROOT, cli

DOC = ROOT / "docs" / "ci-example.md"


def _commands() -> list[list[str]]:
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    return [shlex.split(line.strip())[1:] for line in block.splitlines()
            if line.strip().startswith("conv-conformance ")]


def test_ci_job_commands(tmp_path, runs):
    commands = _commands()
    assert [c[0] for c in commands] == ["run", "report", "report", "report", "compare"]
    (tmp_path / "conformance").mkdir()
    shutil.copy(runs["mixed"], tmp_path / "conformance" / "baseline.json")  # the accepted state
    statuses = []
    for args in commands:
        args = ["tests.reports.adapters:Mixed" if a == "mylib.conformance:MyAdapter" else a for a in args]
        args = ["smoke" if a == "standard" else a for a in args]      # keep the test fast
        proc = cli(*args, cwd=tmp_path)
        statuses.append(proc.returncode)
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert statuses == [1, 0, 0, 0, 0]     # not conformant, same as the baseline: no regression
    out = tmp_path / "conformance-report"
    assert ET.parse(out / "junit.xml").getroot().tag == "testsuites"
    assert (out / "summary.md").read_text().startswith("## conv-conformance: mixed")
    assert "<details" in (out / "report.html").read_text()
    assert "✅ no regressions" in (out / "compare.md").read_text()
    # against a conformant baseline the same job fails on the regression
    shutil.copy(runs["reference"], tmp_path / "conformance" / "baseline.json")
    assert cli(*commands[-1], cwd=tmp_path).returncode == 1

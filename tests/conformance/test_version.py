"""``conv-conformance --version``: suite version, corpus id per profile, framework versions found."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from conv_conformance import cli
from conv_conformance.conformance.version import framework_versions, version_lines
from conv_conformance.oracle.cases import case_set, corpus_id
from conv_conformance.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _version_of_this_checkout() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def test_version_prints_suite_corpus_ids_and_frameworks(capsys, monkeypatch):
    monkeypatch.setattr(cli, "PROFILES", ("smoke", "standard"))  # the larger profiles take seconds to generate
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"conv-conformance {_version_of_this_checkout()}"
    assert f"  smoke       {corpus_id(case_set('smoke'))}" in out
    assert f"  standard    {corpus_id(case_set('standard'))}" in out
    frameworks = out[out.index("frameworks found:") + 1:]
    assert f"  numpy       {np.__version__}" in frameworks


def test_version_lists_every_profile_of_the_cli_and_survives_a_broken_one():
    def corpus(profile):
        if profile == "b":
            raise ValueError("no such thing")
        return f"id-{profile}"

    lines = list(version_lines(["a", "b", "c"], corpus=corpus))
    assert lines[1:5] == ["corpus ids:", "  a           id-a", "  b           unavailable (ValueError: no such thing)",
                          "  c           id-c"]


def test_framework_versions_come_from_metadata_without_importing_frameworks():
    code = ("import sys; from conv_conformance.conformance.version import framework_versions as f; "
            "found = f(); heavy = [m for m in ('tensorflow', 'torch', 'jax', 'keras', 'onnxruntime') if m in sys.modules]; "
            "print(sorted(found)); assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    found = framework_versions([("numpy", ("numpy",)), ("nothing", ("no-such-distribution-xyz",)),
                                ("alias", ("no-such-distribution-xyz", "numpy"))])
    assert found == {"numpy": np.__version__, "alias": f"{np.__version__} (numpy)"}


def test_version_is_accepted_without_a_command():
    # argparse would ask for a COMMAND; --version answers first and exits 0
    proc = subprocess.run([sys.executable, "-m", "conv_conformance.cli", "--version"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^  exhaustive  [0-9a-f]{16}$", proc.stdout, re.M), proc.stdout

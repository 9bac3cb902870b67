"""run --tolerance: the mode reaches the workers and report.json records it."""
from __future__ import annotations

import json

import pytest

from conv_conformance.conformance.cli import main
from conv_conformance.oracle.cases import TOLERANCE_ENV


@pytest.mark.parametrize("mode", ["rigorous", "probabilistic"])
def test_the_mode_is_recorded_and_the_reference_stays_conformant(tmp_path, monkeypatch, mode):
    monkeypatch.delenv(TOLERANCE_ENV, raising=False)
    out = tmp_path / mode
    status = main(["run", "--adapter", "reference", "--profile", "smoke", "--layers", "Conv1D",
                   "--tolerance", mode, "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert status == 0 and report["tolerance"] == mode
    assert report["summary"]["precision"]["short"] == 0


def test_the_default_is_rigorous(tmp_path, monkeypatch):
    monkeypatch.delenv(TOLERANCE_ENV, raising=False)
    assert main(["run", "--adapter", "reference", "--profile", "smoke", "--layers", "Cropping1D",
                 "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["tolerance"] == "rigorous"


def test_an_unknown_mode_is_a_usage_error(capsys):
    assert main(["run", "--adapter", "reference", "--tolerance", "loose"]) == 2
    assert "--tolerance: invalid choice: 'loose' (choose from 'rigorous', 'probabilistic')" in capsys.readouterr().err

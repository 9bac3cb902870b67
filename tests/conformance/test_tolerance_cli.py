"""--tolerance: the mode reaches the workers inside the run's configuration, report.json records
it, and nothing is read from the shell's environment."""
from __future__ import annotations

import json

import pytest

from conv_conformance import reference
from conv_conformance.cli import main
from conv_conformance.conformance.runner import run
from conv_conformance.oracle.cases import make_case, materialize


@pytest.mark.parametrize("mode", ["rigorous", "probabilistic"])
def test_the_mode_is_recorded_and_the_reference_stays_conformant(tmp_path, mode):
    out = tmp_path / mode
    status = main(["run", "--adapter", "reference", "--profile", "smoke", "--layers", "Conv1D",
                   "--tolerance", mode, "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert status == 0 and report["tolerance"] == mode
    assert report["summary"]["precision"]["short"] == 0


def test_the_default_is_rigorous_whatever_the_shell_says(tmp_path, monkeypatch):
    monkeypatch.setenv("CONV_CONFORMANCE_TOLERANCE", "probabilistic")  # the variable an earlier version read
    assert main(["run", "--adapter", "reference", "--profile", "smoke", "--layers", "Cropping1D",
                 "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["tolerance"] == "rigorous"


def test_an_unknown_mode_is_a_usage_error(capsys):
    assert main(["run", "--adapter", "reference", "--tolerance", "loose"]) == 2
    assert "--tolerance: invalid choice: 'loose' (choose from 'rigorous', 'probabilistic')" in capsys.readouterr().err


def test_the_workers_score_with_the_mode_of_the_run(monkeypatch):
    """The allowed error a worker scored with is the run's mode's, element for element, whatever
    the shell's environment says (a long sum, where the two modes' bounds differ)."""
    monkeypatch.setenv("CONV_CONFORMANCE_TOLERANCE", "rigorous")
    case = make_case(reference.normalize({"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 3}}),
                     (1, 12, 64), "valid")
    for mode, other in (("probabilistic", "rigorous"), ("rigorous", "probabilistic")):
        [(_, result)] = list(run("tests.conformance.fixtures.honest:RoundedReference", [case], "float32",
                                 tolerance=mode))
        worst = result.worst["output"]
        index = tuple(worst["index"])
        assert worst["allowed"] == materialize(case, "float32", mode).allowed_output[index]
        assert worst["allowed"] != materialize(case, "float32", other).allowed_output[index]

"""A corpus cannot be doctored: ``run --cases DIR`` recomputes every expected value and allowed
error from the reference, scores with those, names what it found altered, and claims the
profile and its corpus id only for the genuine case set."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conv_conformance.cli import main
from conv_conformance.oracle import export

LAYERS = ["Conv1D", "Cropping1D"]
WRONG = "tests.conformance.fixtures.broken:WrongValues"


@pytest.fixture
def exported(tmp_path):
    export.export("smoke", tmp_path / "corpus", dtype="float32", layers=LAYERS)
    return tmp_path / "corpus"


def _index(d):
    return json.loads((d / "index.json").read_text())


def _rewrite(d, name_prefix, change) -> list[str]:
    """Apply ``change`` to every stored array whose name starts with ``name_prefix``; the ids touched."""
    touched = []
    for entry in _index(d)["cases"]:
        for name, rel in entry["files"].items():
            if name.startswith(name_prefix):
                path = d / rel
                np.save(path, change(np.load(path)), allow_pickle=False)
                touched.append(entry["id"])
    return sorted(set(touched))


def _run(adapter, d, out):
    status = main(["run", "--adapter", adapter, "--cases", str(d), "--out", str(out)])
    return status, json.loads((out / "report.json").read_text())


def test_the_genuine_corpus_claims_its_profile(exported, tmp_path):
    status, report = _run(WRONG, exported, tmp_path / "run")
    assert status == 1 and report["profile"] == "smoke"
    assert report["corpus"]["genuine"] is True and report["corpus_id"] == _index(exported)["corpus_id"]


def test_loosened_tolerances_do_not_pass_a_wrong_adapter(exported, tmp_path, capsys):
    touched = _rewrite(exported, "allowed_", lambda a: np.full_like(a, 1e30))
    status, report = _run(WRONG, exported, tmp_path / "run")
    assert status == 1 and report["summary"]["counts"]["fail"] > 0  # scored with the reference's bounds
    doctored = report["corpus"]["doctored"]
    assert report["corpus"]["genuine"] is False and doctored and set(doctored) <= set(touched)
    assert report["profile"] == "cases:smoke" and report["corpus_id"] != _index(exported)["corpus_id"]
    assert "allowed errors the reference does not give" in capsys.readouterr().err


def test_zeroed_expected_values_are_recomputed(exported, tmp_path):
    _rewrite(exported, "expected_", np.zeros_like)
    status, report = _run("reference", exported, tmp_path / "run")
    assert status == 0  # the reference still matches the reference's values, not the files'
    assert report["corpus"]["doctored"] and report["corpus"]["genuine"] is False
    assert report["corpus_id"] != _index(exported)["corpus_id"]


def test_a_changed_input_is_scored_on_itself_and_not_claimed_as_the_profile(exported, tmp_path):
    entry = next(e for e in _index(exported)["cases"] if e["kind"] == "valid" and e["input_shape"][0] > 0)
    path = exported / entry["files"]["inputs"]
    x = np.load(path)
    np.save(path, -x, allow_pickle=False)  # still exact in float32: a different, consistent case
    status, report = _run("reference", exported, tmp_path / "run")
    assert status == 0
    assert report["corpus"]["redrawn"] == [entry["id"]] and report["corpus"]["doctored"] == [entry["id"]]
    assert report["profile"] == "cases:smoke" and report["corpus_id"] == report["corpus"]["content_id"]
    assert report["corpus_id"] != _index(exported)["corpus_id"]

"""One session, four front ends: ``run``, ``certify``, ``explore`` and the pytest plugin give a case
the same record (verdicts, ratios, strict ratios, worst elements, effective precision, messages),
because all four score through conformance.session."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from conv_conformance.cli import main
from conv_conformance.conformance.explore import score_drawn
from conv_conformance.conformance.report import jsonable
from conv_conformance.conformance.session import RunConfig, Session
from conv_conformance.oracle.cases import case_set, materialize

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
ADAPTER = "tests.conformance.fixtures.honest:RoundedReference"
LAYERS = ["Conv1D", "DepthwiseConv2D", "UpSampling2D", "Cropping1D"]
_VOLATILE = ("seconds", "output")  # time spent, and what the process printed


def _records(cases: list[dict]) -> dict[str, dict]:
    return {c["id"]: {k: v for k, v in c.items() if k not in _VOLATILE} for c in cases}


@pytest.fixture(scope="module")
def by_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["run", "--adapter", ADAPTER, "--layers", ",".join(LAYERS), "--tolerance", "probabilistic",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    records = _records(report["cases"])
    # the comparison has something to compare: ratios above 0 and an effective precision
    assert any((r["worst_ratio"].get("output") or 0) > 0 for r in records.values())
    assert any(r.get("precision") for r in records.values())
    return report, records


def test_certify_gives_the_records_of_run(by_run, tmp_path):
    report, records = by_run
    assert main(["certify", "--adapter", ADAPTER, "--profile", "smoke", "--tolerance", "probabilistic",
                 "--out", str(tmp_path / "bundle")]) == 0
    bundle = json.loads((tmp_path / "bundle" / "report.json").read_text())
    assert bundle["tolerance"] == report["tolerance"] == "probabilistic"
    certified = _records(bundle["cases"])
    assert records and all(certified[i] == r for i, r in records.items())


def test_explore_gives_the_records_of_run(by_run):
    _, records = by_run
    session = Session(RunConfig(ADAPTER, tolerance="probabilistic"), [])
    cases = [c for c in case_set("smoke", layers=LAYERS) if c.kind == "valid"][::3]
    with session.isolated() as isolated:
        for case in cases:
            m = materialize(case, "float32")  # only the drawn arrays are kept: explore derives the rest
            drawn = SimpleNamespace(inputs=m.inputs, weights=m.weights, output_grad=m.output_grad)
            result = score_drawn(lambda c, arrays: isolated.check(c, arrays, session.config.options),
                                 session, case.spec, case, drawn)
            explored = _records([json.loads(json.dumps(jsonable(result.to_json())))])[case.id]
            assert explored == records[case.id], case.id


def test_pytest_gives_the_records_of_run(by_run, pytester, monkeypatch):
    _, records = by_run
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.runpytest_subprocess(f"--conv-adapter={ADAPTER}", f"--conv-layers={','.join(LAYERS)}",
                                  "--conv-tolerance=probabilistic", "--conv-report=out", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["tolerance"] == "probabilistic"
    assert _records(report["cases"]) == records

"""The exporter writes JSON + .npy that reload without pickle and match materialize."""
from __future__ import annotations

import json

import numpy as np

from conv_conformance.oracle import cases, export


def test_export_round_trip(tmp_path):
    layers = ["Conv2D", "UpSampling2D", "Cropping1D"]
    index_path = export.export("smoke", tmp_path, dtype="float16", layers=layers)
    index = json.loads(index_path.read_text())
    expected_cases = cases.case_set("smoke", layers=layers)
    assert index["corpus_id"] == cases.corpus_id(expected_cases) and index["dtype"] == "float16"
    assert [e["id"] for e in index["cases"]] == [c.id for c in expected_cases]
    assert not list(tmp_path.rglob("*.pkl"))
    for entry in index["cases"]:
        case = cases.Case.from_json({k: v for k, v in entry.items() if k != "files"})
        m = cases.materialize(case, "float16")
        load = lambda name: np.load(tmp_path / entry["files"][name], allow_pickle=False)  # noqa: E731
        assert np.array_equal(load("inputs"), m.inputs)
        for k, v in m.weights.items():
            assert np.array_equal(load(f"weights.{k}"), v)
        if case.kind == "valid":
            assert np.array_equal(load("expected_output"), m.expected_output)
            assert np.array_equal(load("allowed_output"), m.allowed_output)
            for k, v in m.expected_gradients.items():
                assert np.array_equal(load(f"expected_gradient.{k}"), v)
                assert np.array_equal(load(f"allowed_gradient.{k}"), m.allowed_gradients[k])
        else:
            assert "expected_output" not in entry["files"]

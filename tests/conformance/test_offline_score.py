"""`conv-conformance score`: results written offline, scored as a live run scores them.

An "implementation" here is the float64 reference run over an exported case set, writing the
documented layout (conformance/offline.py); faults are injected into single files. The report
must equal `run --cases` with the reference adapter in every verdict, ratio and level; every bad
file gets the verdict a live adapter would get, and nothing can crash the harness or make it
write outside OUT.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.cli import main
from conv_conformance.oracle.export import export

LAYERS = ["Cropping1D", "ZeroPadding2D"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cases")
    export("smoke", directory, dtype="float32", layers=LAYERS)
    return directory


def _load(corpus: Path, entry: dict, name: str) -> np.ndarray:
    return np.load(corpus / entry["files"][name]) if name in entry["files"] else None


def implement(corpus: Path, results: Path) -> list[dict]:
    """Write every case's results as an implementation would: the reference, in float32."""
    index = json.loads((corpus / "index.json").read_text())
    results.mkdir(exist_ok=True)
    for entry in index["cases"]:
        folder = results / entry["id"]
        folder.mkdir()
        x = _load(corpus, entry, "inputs")
        weights = {k.split(".", 1)[1]: _load(corpus, entry, k) for k in entry["files"] if k.startswith("weights.")}
        try:
            out = reference.forward(entry["spec"], x, weights)
        except reference.InvalidConfig as exc:
            (folder / "result.json").write_text(json.dumps({"forward": {"status": "error", "message": str(exc)}}))
            continue
        np.save(folder / "output.npy", out.astype(np.float32))
        result = {"forward": {"status": "ok"}}
        if "output_grad" in entry["files"]:
            grads = reference.vjp(entry["spec"], x, weights, _load(corpus, entry, "output_grad"))
            for name, g in grads.items():
                np.save(folder / f"gradient.{name}.npy", g.astype(np.float32))
            result["vjp"] = {"status": "ok"}
        (folder / "result.json").write_text(json.dumps(result))
    return index["cases"]


def score(corpus: Path, results: Path, out: Path) -> tuple[int, dict]:
    status = main(["score", "--cases", str(corpus), "--results", str(results), "--out", str(out)])
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    return status, report


def test_a_correct_implementation_scores_as_run_scores_the_reference(corpus, tmp_path):
    implement(corpus, tmp_path / "results")
    (tmp_path / "results" / "implementation.json").write_text(json.dumps(
        {"name": "batch-impl", "versions": {"impl": "2.0"},
         "declaration": {"layers": LAYERS, "dtypes": ["float32"], "gradients": True}}))
    status, offline = score(corpus, tmp_path / "results", tmp_path / "out")
    assert status == 0 and offline["summary"]["conformant"]
    assert main(["run", "--adapter", "reference", "--cases", str(corpus), "--out", str(tmp_path / "live")]) == 0
    live = json.loads((tmp_path / "live" / "report.json").read_text())
    assert offline["adapter"]["name"] == "batch-impl" and offline["adapter"]["versions"]["impl"] == "2.0"
    for key in ("profile", "corpus_id", "dtype", "tolerance"):
        assert offline[key] == live[key], key
    assert offline["profile"] == "smoke"  # a genuine export of these layers
    assert [c["id"] for c in offline["cases"]] == [c["id"] for c in live["cases"]]
    for a, b in zip(offline["cases"], live["cases"]):
        assert a["verdicts"] == b["verdicts"], a["id"]
        assert set(a["worst_ratio"]) == set(b["worst_ratio"])
    assert {k: v["level"] for k, v in offline["summary"]["levels"].items()} == \
        {k: v["level"] for k, v in live["summary"]["levels"].items()} == {"Cropping1D": "full", "ZeroPadding2D": "full"}


def _first_valid(cases: list[dict]) -> str:
    return next(c["id"] for c in cases if c["kind"] == "valid" and c["input_shape"][0] > 0
                and c["layer"] == "Cropping1D")


def _first_invalid(cases: list[dict]) -> str:
    return next(c["id"] for c in cases if c["kind"] == "invalid")


def _npy_header_claiming(shape) -> bytes:
    """A .npy header (magic included) announcing ``shape``, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


# fault -> (how to break the valid case's folder, the verdict of its output, the text the message holds)
FAULTS = {
    "missing": (shutil.rmtree, "error", "rule R1"),
    "result-not-json": (lambda f: (f / "result.json").write_text("{oops"), "error", "rule R1"),
    "result-huge": (lambda f: (f / "result.json").write_bytes(b" " * (2 << 20)), "error", "rule R1"),
    "bad-status": (lambda f: (f / "result.json").write_text('{"forward": {"status": "fine"}}'), "error", "rule R2"),
    "no-output": (lambda f: (f / "output.npy").unlink(), "error", "rule R3"),
    "pickled": (lambda f: (f / "output.npy").write_bytes(pickle.dumps([1.0])), "error", "rule R4"),
    "object-npy": (lambda f: np.save(f / "output.npy", np.array([{}], dtype=object), allow_pickle=True),
                   "error", "rule R4"),
    "truncated": (lambda f: (f / "output.npy").write_bytes((f / "output.npy").read_bytes()[:-3]), "error", "rule R4"),
    "claims-huge": (lambda f: (f / "output.npy").write_bytes(_npy_header_claiming((1 << 20, 1 << 20))),
                    "error", "rule R4"),
    "fifo": (lambda f: _fifo(f / "output.npy"), "error", "rule R4"),
    "link-out": (lambda f: ((f / "output.npy").unlink(), (f / "output.npy").symlink_to("/etc/hostname")),
                 "error", "rule R4"),
    "wrong-shape": (lambda f: np.save(f / "output.npy", np.zeros((1, 2), np.float32)), "fail", "shape"),
    "integer": (lambda f: np.save(f / "output.npy", np.load(f / "output.npy").astype(np.int32)), "fail", "int32"),
    "nan": (lambda f: np.save(f / "output.npy", np.load(f / "output.npy") * np.nan), "fail", "nan"),
    "declined": (lambda f: (f / "result.json").write_text('{"forward": {"status": "unsupported", "reason": "later"}}'),
                 "unsupported", "later"),
    "raised": (lambda f: (f / "result.json").write_text('{"forward": {"status": "error", "message": "boom"}}'),
               "error", "boom"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_bad_result_gets_the_verdict_a_live_adapter_would(fault, corpus, tmp_path):
    cases = implement(corpus, tmp_path / "results")
    target = _first_valid(cases)
    breaks, verdict, says = FAULTS[fault]
    breaks(tmp_path / "results" / target)
    before = sorted(p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts)
    status, report = score(corpus, tmp_path / "results", tmp_path / "out")
    assert status == 1  # a declined core case leaves its layer not conformant, as a failing one does
    record = {c["id"]: c for c in report["cases"]}
    assert record[target]["verdicts"]["output"] == verdict, record[target]
    assert says.lower() in (record[target]["message"] + json.dumps(record[target]["exception"])).lower()
    others = [c for c in report["cases"] if c["id"] != target]
    assert all(set(c["verdicts"].values()) <= {"pass"} for c in others)
    after = sorted(p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts)
    assert before == after, "score wrote outside OUT"


def test_a_missing_result_of_an_invalid_case_is_no_rejection(corpus, tmp_path):
    cases = implement(corpus, tmp_path / "results")
    target = _first_invalid(cases)
    for p in (tmp_path / "results" / target).iterdir():
        p.unlink()
    status, report = score(corpus, tmp_path / "results", tmp_path / "out")
    record = next(c for c in report["cases"] if c["id"] == target)
    assert status == 1 and record["verdicts"] == {"error_behaviour": "error"}


def test_a_linked_case_folder_is_refused(corpus, tmp_path):
    cases = implement(corpus, tmp_path / "results")
    target = _first_valid(cases)
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "results" / target).rename(elsewhere)
    (tmp_path / "results" / target).symlink_to(elsewhere, target_is_directory=True)
    status, report = score(corpus, tmp_path / "results", tmp_path / "out")
    record = next(c for c in report["cases"] if c["id"] == target)
    assert status == 1 and record["verdicts"]["output"] == "error" and "rule R1" in record["message"]


def test_usage_errors(corpus, tmp_path, capsys):
    assert main(["score", "--cases", str(corpus), "--results", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "--results" in capsys.readouterr().err
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "implementation.json").write_text('{"declaration": {"layers": ["Conv9D"]}}')
    assert main(["score", "--cases", str(corpus), "--results", str(tmp_path / "r"), "--out", str(tmp_path / "o")]) == 2
    assert "Conv9D" in capsys.readouterr().err

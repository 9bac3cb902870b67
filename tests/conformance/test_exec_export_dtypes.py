"""An export holds the arrays an implementation is given in the dtype of the case set, so a
reader that takes the files as they are runs that dtype; the expected values and allowed errors
stay float64 and index.json says which is which. A C-like consumer (the .npy header parsed by
hand, the data taken as raw little-endian float32 bytes, the C client computing) writes results
that `score` scores exactly as `run` scores the same client live."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from conv_conformance.cli import main
from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.adapters.exec_process import ExecAdapter
from conv_conformance.conformance.exec_protocol import ImplementationError
from conv_conformance.oracle import cases as case_sets, corpus, export

ROOT = Path(__file__).resolve().parents[2]
GIVEN = ("inputs", "weights.", "output_grad")


def _index(d: Path) -> dict:
    return json.loads((d / "index.json").read_text())


def _given(name: str) -> bool:
    return name.startswith(GIVEN)


@pytest.mark.parametrize("dtype, storage", [("float32", "<f4"), ("float16", "<f2"), ("float64", "<f8"),
                                            ("bfloat16", "<f4")])
def test_given_arrays_are_stored_in_the_dtype_of_the_case_set(tmp_path, dtype, storage):
    export.export("smoke", tmp_path, dtype=dtype, layers=["Conv1D"])
    index = _index(tmp_path)
    assert index["format_version"] == 2 and index["dtype"] == dtype
    assert index["storage_dtype"] == np.dtype(storage).name and index["reference_dtype"] == "float64"
    seen = set()
    for entry in index["cases"]:
        for name, rel in entry["files"].items():
            array = np.load(tmp_path / rel, allow_pickle=False)
            assert array.dtype.str == (storage if _given(name) else "<f8"), (rel, array.dtype)
            seen.add(name.split(".")[0])
            if dtype == "bfloat16" and _given(name):  # float32 whose low 16 bits are zero
                assert not np.any(array.view(np.uint32) & 0xFFFF), rel
    assert {"inputs", "weights", "output_grad", "expected_output", "allowed_output"} <= seen
    if dtype == "bfloat16":
        assert "low 16 bits are zero" in index["storage"]


def _valid_inputs_file(d: Path) -> Path:
    entry = next(e for e in _index(d)["cases"] if e["kind"] == "valid" and e["input_shape"][0] > 0)
    return d / entry["files"]["inputs"]


def test_float64_inputs_under_a_float32_index_are_refused(tmp_path):
    export.export("smoke", tmp_path, dtype="float32", layers=["Conv1D"])
    path = _valid_inputs_file(tmp_path)
    np.save(path, np.load(path).astype(np.float64), allow_pickle=False)
    with pytest.raises(corpus.CorpusError, match="is float64; format 2 stores inputs as float32"):
        corpus.read(tmp_path)


def test_a_bfloat16_set_refuses_float32_values_that_are_not_bfloat16(tmp_path):
    export.export("smoke", tmp_path, dtype="bfloat16", layers=["Conv1D"])
    path = _valid_inputs_file(tmp_path)
    x = np.load(path)
    x.reshape(-1)[0] = np.float32(1 + 2 ** -20)  # exact in float32, not in bfloat16
    np.save(path, x, allow_pickle=False)
    with pytest.raises(corpus.CorpusError, match="values that are not bfloat16"):
        corpus.read(tmp_path)


def test_a_storage_dtype_that_does_not_match_the_dtype_is_refused(tmp_path):
    export.export("smoke", tmp_path, dtype="float16", layers=["Conv1D"])
    index = _index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps(index | {"storage_dtype": "float64"}))
    with pytest.raises(corpus.CorpusError, match="storage_dtype must be 'float16'"):
        corpus.read(tmp_path)


def test_each_dtype_reads_back_as_the_values_it_was_drawn_with(tmp_path):
    for dtype in ("float16", "bfloat16"):
        export.export("smoke", tmp_path / dtype, dtype=dtype, layers=["Conv1D"])
        got = corpus.read(tmp_path / dtype)
        for case, m in got:
            want = case_sets.materialize(case, dtype)
            assert m.inputs.dtype == np.float64 and np.array_equal(m.inputs, want.inputs), case.id
            assert all(np.array_equal(m.weights[k], want.weights[k]) for k in want.weights), case.id


# ------------------------------------------------------------------ a C-like consumer


def _read_f4(path: Path) -> np.ndarray:
    """A .npy file read as a C program declaring float32 reads it: magic, version, header length,
    the header's descr, fortran_order and shape, then the raw little-endian float32 data."""
    data = path.read_bytes()
    assert data[:6] == b"\x93NUMPY" and data[6] == 1, path
    length = int.from_bytes(data[8:10], "little")
    header = ast.literal_eval(data[10:10 + length].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError(f"{path}: a float32 consumer reads only <f4 C-order data, not {header}")
    shape = tuple(header["shape"])
    return np.frombuffer(data[10 + length:], dtype="<f4").reshape(shape)


def _consume(client: str, cases: Path, results: Path) -> None:
    """Every case run by the C client on the files' float32 buffers, written in the results layout."""
    adapter = ExecAdapter([client])
    try:
        for entry in _index(cases)["cases"]:
            folder = results / entry["id"]
            folder.mkdir(parents=True)
            files = entry["files"]
            x = _read_f4(cases / files["inputs"])
            weights = {k.split(".", 1)[1]: _read_f4(cases / rel) for k, rel in files.items() if k.startswith("weights.")}
            result = {}
            try:
                np.save(folder / "output.npy", adapter.forward(entry["spec"], x, weights))
                result["forward"] = {"status": "ok"}
            except Unsupported as exc:
                result["forward"] = {"status": "unsupported", "reason": str(exc)}
            except ImplementationError as exc:
                result["forward"] = {"status": "error", "message": str(exc)}
            if "output_grad" in files and adapter.vjp is not None:
                grads = adapter.vjp(entry["spec"], x, weights, _read_f4(cases / files["output_grad"]))
                for name, g in grads.items():
                    np.save(folder / f"gradient.{name}.npy", g)
                result["vjp"] = {"status": "ok"}
            (folder / "result.json").write_text(json.dumps(result))
    finally:
        adapter.close()


def test_a_c_like_consumer_of_a_float32_export_scores_as_the_live_client(client, tmp_path):
    cases = tmp_path / "cases"
    export.export("smoke", cases, dtype="float32", layers=["Conv1D", "Cropping1D", "ZeroPadding2D"])
    _consume(client, cases, tmp_path / "results")
    assert main(["score", "--cases", str(cases), "--results", str(tmp_path / "results"),
                 "--out", str(tmp_path / "offline")]) == 0
    assert main(["run", "--adapter", f"exec:{client}", "--cases", str(cases), "--out", str(tmp_path / "live")]) == 0
    offline, live = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("offline", "live"))
    assert offline["dtype"] == live["dtype"] == "float32" and offline["corpus_id"] == live["corpus_id"]
    assert [c["id"] for c in offline["cases"]] == [c["id"] for c in live["cases"]]
    passed = 0
    for a, b in zip(offline["cases"], live["cases"]):
        assert a["verdicts"] == b["verdicts"], a["id"]
        assert a["worst_ratio"] == b["worst_ratio"] and a["worst"] == b["worst"], a["id"]
        passed += a["verdicts"].get("output") == "pass"
    assert passed >= 10  # the comparison covers computed outputs, not only refusals

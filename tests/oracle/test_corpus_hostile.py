"""Reading an exported case directory back refuses hostile input (oracle.corpus.read), and the
report commands refuse malformed report.json: one line, exit status 2, a traceback only with --debug."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conv_conformance.oracle import cases, corpus, export

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("conv-conformance"))
LAYERS = ["Conv1D", "Cropping1D"]


@pytest.fixture
def exported(tmp_path):
    export.export("smoke", tmp_path, dtype="float32", layers=LAYERS)
    return tmp_path


def _index(d):
    return json.loads((d / "index.json").read_text())


def _write_index(d, index):
    (d / "index.json").write_text(json.dumps(index))


def _first_valid(index):
    return next(e for e in index["cases"] if e["kind"] == "valid" and e["input_shape"][0] > 0)


def test_an_export_reads_back_exactly(exported):
    got = corpus.read(exported)
    want = cases.case_set("smoke", layers=LAYERS)
    assert [c.id for c, _ in got] == [c.id for c in want]
    for (case, m), ref in zip(got, want):
        expected = cases.materialize(ref, "float32")
        assert np.array_equal(m.inputs, expected.inputs)
        if case.kind == "valid":
            assert np.array_equal(m.expected_output, expected.expected_output)
            assert np.array_equal(m.allowed_output, expected.allowed_output)


def _refused(d, text, **kwargs):
    with pytest.raises(corpus.CorpusError) as info:
        corpus.read(d, **kwargs)
    message = str(info.value)
    assert text in message and "\n" not in message, message


def test_pickled_npy_is_refused(exported):
    entry = _first_valid(_index(exported))
    path = exported / entry["files"]["inputs"]
    shape = tuple(entry["input_shape"])
    np.save(path, np.empty(shape, dtype=object), allow_pickle=True)
    _refused(exported, "is object")


def test_truncated_npy_is_refused(exported):
    entry = _first_valid(_index(exported))
    path = exported / entry["files"]["expected_output"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 8])
    _refused(exported, "cut short")


def test_corrupt_npy_header_is_refused(exported):
    entry = _first_valid(_index(exported))
    (exported / entry["files"]["inputs"]).write_bytes(b"\x93NUMPY\x01\x00garbage" + pickle.dumps([1]))
    _refused(exported, "not a .npy file")


@pytest.mark.parametrize("cut", [10, 200, -3])
def test_truncated_or_corrupt_json_is_refused(exported, cut):
    text = (exported / "index.json").read_text()
    (exported / "index.json").write_text(text[:cut])
    _refused(exported, "is not valid JSON")


def test_deeply_nested_json_is_refused(exported):
    (exported / "index.json").write_text("[" * 100000 + "]" * 100000)
    _refused(exported, "is not valid JSON")


@pytest.mark.parametrize("mutate, text", [
    (lambda e: e["spec"].__setitem__("class_name", "Conv4D"), "Conv4D"),
    (lambda e: e["spec"]["config"].__setitem__("frobnicate", 3), "frobnicate"),
    (lambda e: e["spec"]["config"].__setitem__("strides", 0), "strides"),
])
def test_unknown_layers_and_arguments_are_refused(exported, mutate, text):
    index = _index(exported)
    mutate(_first_valid(index))
    _write_index(exported, index)
    _refused(exported, text)


@pytest.mark.parametrize("attack", ["id", "file", "absolute", "symlink"])
def test_path_traversal_is_refused(exported, tmp_path_factory, attack):
    index = _index(exported)
    entry = _first_valid(index)
    if attack == "id":
        entry["id"] = "../../etc-000000000000"
        text = "ids are <Layer>-<12 hex digits>"
    elif attack == "file":
        entry["files"]["inputs"] = f"{entry['id']}/../../outside.npy"
        text = "no other path is allowed"
    elif attack == "absolute":
        entry["files"]["inputs"] = "/etc/passwd"
        text = "no other path is allowed"
    else:
        outside = tmp_path_factory.mktemp("outside") / "inputs.npy"
        target = exported / entry["files"]["inputs"]
        os.replace(target, outside)
        target.symlink_to(outside)
        text = "leaves the corpus directory"
    _write_index(exported, index)
    _refused(exported, text)


def test_absurd_shapes_are_refused_before_allocation_and_the_limit_can_be_raised(exported):
    index = _index(exported)
    entry = _first_valid(index)
    path = exported / entry["files"]["inputs"]
    # a header claiming 2**40 elements over an 8-byte body: refused from the header alone
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": (1 << 20, 1 << 20)})
        f.write(b"\0" * 8)
    _refused(exported, "more than max_elements")
    entry["input_shape"] = [2 ** 40, 1, 1]
    _write_index(exported, index)
    with pytest.raises(corpus.CorpusError):
        corpus.read(exported)
    fresh = exported.parent / "fresh"
    export.export("smoke", fresh, dtype="float32", layers=LAYERS)
    n = sum(np.load(fresh / f, allow_pickle=False).size for f in _first_valid(_index(fresh))["files"].values())
    _refused(fresh, "more than max_elements=1", max_elements=1)
    assert len(corpus.read(fresh, max_elements=max(n, corpus.MAX_ELEMENTS))) == len(_index(fresh)["cases"])


# ------------------------------------------------------------ report commands

@pytest.mark.parametrize("content", [b"", b"{\"schema_version\": 1, \"cases\": [", b"\xff\xfe\x00garbage",
                                     b"[" * 100000, b"{\"schema_version\": 1}", b"null"])
@pytest.mark.parametrize("command", ["report", "compare", "scoreboard"])
def test_report_commands_refuse_malformed_reports_with_one_line(tmp_path, content, command, capsys):
    from conv_conformance.cli import main

    bad = tmp_path / "report.json"
    bad.write_bytes(content)
    args = {"report": ["report", str(bad), "--format", "html"],
            "compare": ["compare", str(bad), str(bad)],
            "scoreboard": ["scoreboard", str(bad), "--out", str(tmp_path / "sb")]}[command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "error" in err and "Traceback" not in err, err


def test_debug_shows_the_exception_instead_of_one_line(tmp_path, capsys):
    from conv_conformance.cli import main

    bad = tmp_path / "report.json"
    bad.write_bytes(b"[" * 100000)  # json.loads raises RecursionError, which no command expects
    assert main(["report", str(bad), "--format", "html"]) == 2
    assert "RecursionError" in capsys.readouterr().err
    with pytest.raises(RecursionError):
        main(["--debug", "report", str(bad), "--format", "html"])


def test_console_script_refuses_a_cut_report_with_one_line(tmp_path):
    bad = tmp_path / "report.json"
    bad.write_bytes(b'{"schema_version": 1, "cases": [')
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([EXE, "report", str(bad), "--format", "junit"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr


# ------------------------------------------------------------ run --cases DIR

def test_run_on_an_exported_corpus_gives_the_verdicts_of_the_profile(exported, tmp_path, capsys):
    from conv_conformance.cli import main

    wrong = "tests.conformance.fixtures.broken:WrongValues"
    assert main(["run", "--adapter", wrong, "--cases", str(exported), "--out", str(tmp_path / "a")]) == 1
    assert main(["run", "--adapter", wrong, "--layers", ",".join(LAYERS), "--out", str(tmp_path / "b")]) == 1
    a, b = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert a["profile"] == "smoke" and a["dtype"] == "float32" and a["corpus_id"] == b["corpus_id"]
    assert a["corpus"]["genuine"] is True and not a["corpus"]["doctored"] and not a["corpus"]["redrawn"]
    assert [(c["id"], c["verdicts"], c["worst_ratio"]) for c in a["cases"]] == \
           [(c["id"], c["verdicts"], c["worst_ratio"]) for c in b["cases"]]


def test_run_on_a_hostile_corpus_is_a_usage_error(exported, tmp_path, capsys):
    from conv_conformance.cli import main

    entry = _first_valid(_index(exported))
    (exported / entry["files"]["inputs"]).write_bytes(b"\x93NUMPY")
    assert main(["run", "--adapter", "reference", "--cases", str(exported), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "Argument `--cases`" in err and err.strip().count("\n") == 0, err

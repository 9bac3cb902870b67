"""The exec protocol (docs/exec-protocol.md) through real workers: a fake implementation
(tests/conformance/fixtures/exec_fake.py) breaks each rule in turn.

For each fault: the run completes; the fault's layer gets the verdicts exec_fake.EXPECTED
names, with the broken rule named in the record; the other layer's case passes; and no
implementation process outlives the run. A broken hello is a load error naming its rule.
"""
from __future__ import annotations

import io
import os
import shlex
import struct
import sys
import time

import numpy as np
import pytest

from conv_conformance.conformance.exec_protocol import (MAX_HEADER, ProtocolError, check_hello, read_frame,
                                                        write_frame)
from conv_conformance.conformance.registry import AdapterNotFound, resolve
from conv_conformance.conformance.runner import WorkerStartError, run
from conv_conformance.oracle.cases import case_set
from tests.conformance.fixtures import exec_fake

FAKE = os.path.join(os.path.dirname(__file__), "fixtures", "exec_fake.py")


def target(fault: str = "honest") -> str:
    return f"exec:{shlex.join([sys.executable, FAKE, fault])}"


@pytest.fixture(scope="module")
def cases():
    """TARGET's first non-empty valid case and its invalid case, and one valid ZeroPadding1D case."""
    every = case_set("smoke", layers=[exec_fake.TARGET, "ZeroPadding1D"])
    valid = [c for c in every if c.layer == exec_fake.TARGET and c.kind == "valid" and c.input_shape[0] > 0]
    invalid = [c for c in every if c.layer == exec_fake.TARGET and c.kind == "invalid"]
    other = [c for c in every if c.layer == "ZeroPadding1D" and c.kind == "valid" and c.input_shape[0] > 0]
    assert valid and invalid and other and valid[0].gradient
    return [valid[0], invalid[0], other[0]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split(")")[-1].split()[0] != "Z"


def _run(fault, cases, pids):
    seen = {}
    for index, result in run(target(fault), cases, timeout=5.0 if fault == "hang" else 60.0):
        assert cases[index].id == result.id and result.id not in seen
        seen[result.id] = result
    assert len(seen) == len(cases), "the run did not complete"
    return seen


@pytest.mark.parametrize("fault", sorted(exec_fake.EXPECTED))
def test_each_fault_gets_its_verdict(fault, cases, tmp_path, monkeypatch):
    monkeypatch.setenv(exec_fake.PID_DIR, str(tmp_path))
    valid_verdict, invalid_verdict = exec_fake.EXPECTED[fault]
    seen = _run(fault, cases, tmp_path)
    valid, invalid, other = (seen[c.id] for c in cases)
    if isinstance(valid_verdict, str):
        valid_verdict = dict.fromkeys(("shape", "output", "gradient"), valid_verdict)
        if fault in ("wrong-values", "nan", "integer-dtype"):  # right shape, wrong values or dtype
            valid_verdict["shape"] = "pass"
    assert valid.verdicts == valid_verdict, (fault, valid.verdicts, valid.message)
    assert invalid.verdicts == {"error_behaviour": invalid_verdict}, (fault, invalid.verdicts, invalid.message)
    assert set(other.verdicts.values()) == {"pass"}, (fault, other.verdicts, other.message)
    rule = exec_fake.rule_of(fault)
    if rule is not None:
        assert f"rule {rule} broken" in valid.message and f"rule {rule} broken" in invalid.message
    if fault == "segfault":
        assert "SIGSEGV" in valid.message and "[exec]" in valid.output
    if fault == "stderr-flood":  # captured, bounded to its first and last 2 KiB
        assert "end of flood" in valid.output and "bytes left out" in valid.output and len(valid.output) < 5000
    deadline = time.monotonic() + 10
    pids = [int(p) for p in os.listdir(tmp_path)]
    assert pids, "the fake never started"
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], f"{fault}: an implementation outlived its run"


@pytest.mark.parametrize("fault, says", [
    ("no-hello", "sent no hello within 3 s"), ("hello-wrong-version", "rule P3"),
    ("hello-no-forward", "rule P3"), ("exit-before-hello", "ended (exit status 5) before its hello"),
    ("hello-bad-declaration", "Conv9D")])
def test_a_broken_hello_is_a_load_error(fault, says, cases, monkeypatch):
    assert fault in exec_fake.HELLO_FAULTS
    monkeypatch.setenv("CONV_CONFORMANCE_EXEC_STARTUP_TIMEOUT", "3")
    with pytest.raises(WorkerStartError, match=says.replace("(", r"\(").replace(")", r"\)")):
        list(run(target(fault), cases[:1], timeout=30.0))


def test_a_command_that_does_not_exist_is_a_load_error(cases):
    with pytest.raises(WorkerStartError, match="cannot start"):
        list(run("exec:/nonexistent/implementation --flag", cases[:1]))


def test_exec_names_resolve_to_themselves():
    assert resolve("exec:./impl --x 1") == "exec:./impl --x 1"
    with pytest.raises(AdapterNotFound, match="names no command"):
        resolve("exec:  ")


# ---------------------------------------------------------------------- the codec alone

def _frame(header: bytes, payload: bytes = b"") -> io.BytesIO:
    return io.BytesIO(struct.pack("<I", len(header)) + header + payload)


def test_frames_round_trip_every_dtype():
    import ml_dtypes

    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros((0, 4)),
              "c": np.array([1.5, -2], dtype=ml_dtypes.bfloat16), "d": np.float16(3).reshape(())}
    buffer = io.BytesIO()
    write_frame(buffer, {"id": 7}, arrays)
    buffer.seek(0)
    frame = read_frame(buffer)
    assert frame.header["id"] == 7
    for name, array in arrays.items():
        assert frame.arrays[name].dtype == array.dtype and frame.arrays[name].shape == array.shape
        assert frame.arrays[name].tobytes() == array.tobytes()


def test_buffers_are_little_endian():
    buffer = io.BytesIO()
    write_frame(buffer, {}, {"x": np.array([1.0], dtype=">f4")})
    assert buffer.getvalue().endswith(struct.pack("<f", 1.0))


@pytest.mark.parametrize("stream, rule", [
    (_frame(b"[1, 2]"), "P2"), (_frame(b'{"a": NaN}'), "P2"), (_frame(b"\xff\xfe"), "P2"),
    (io.BytesIO(struct.pack("<I", MAX_HEADER + 1)), "P2"), (io.BytesIO(struct.pack("<I", 0)), "P2"),
    (_frame(b'{"arrays": {"x": 1}}'), "P4"),
    (_frame(b'{"arrays": [{"name": "x", "dtype": "float32", "shape": [1.5]}]}'), "P4"),
    (_frame(b'{"arrays": [{"name": "x", "dtype": "float32", "shape": [true]}]}'), "P4"),
    (_frame(b'{"arrays": [{"name": "x", "dtype": "float32", "shape": [1], "order": "F"}]}'), "P4"),
    (_frame(b'{"arrays": [{"name": "x", "dtype": "float32", "shape": [65536, 65536, 2]}]}'), "P4"),
])
def test_malformed_frames_name_their_rule(stream, rule):
    with pytest.raises(ProtocolError, match=f"rule {rule} broken"):
        read_frame(stream)


def test_a_truncated_buffer_is_the_end_of_the_stream():
    with pytest.raises(EOFError):
        read_frame(_frame(b'{"arrays": [{"name": "x", "dtype": "float64", "shape": [2]}]}', b"\0" * 9))


def test_the_hello_is_checked():
    good = {"protocol": "conv-conformance-exec/1", "name": "x", "methods": ["forward"]}
    buffer = io.BytesIO()
    write_frame(buffer, good)
    buffer.seek(0)
    assert check_hello(read_frame(buffer))["name"] == "x"
    for bad in ({**good, "protocol": "conv-conformance-exec/2"}, {**good, "name": ""},
                {**good, "methods": ["vjp"]}, {**good, "methods": ["forward", "train"]},
                {**good, "versions": {"x": 1}}):
        buffer = io.BytesIO()
        write_frame(buffer, bad)
        buffer.seek(0)
        with pytest.raises(ProtocolError, match="rule P3 broken"):
            check_hello(read_frame(buffer))

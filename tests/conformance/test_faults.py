"""Fault injection: every fault of tests/conformance/fixtures/faults.py, run through real workers.

For each fault: the run completes; every case has exactly one verdict per category that
applies to it; the fault's layer (TARGET) gets the verdicts faults.EXPECTED names, every other
case keeps the verdicts of an uninterrupted reference run (all pass); no process the adapter
started outlives the run; and --jobs 1 and --jobs 2 give the same verdicts.
"""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from conv_conformance.conformance.runner import WorkerStartError, run
from conv_conformance.conformance.record import CaseResult
from conv_conformance.oracle.cases import case_set
from tests.conformance.fixtures import faults

FAULTS = "tests.conformance.fixtures.faults"
# A memory limit the reference adapter works within and AllocatesTooMuch (3 GiB) exceeds.
MEMORY_LIMIT = 2 * 2 ** 30
_EMPTY_OK = ("ReturnsNaN", "ReturnsInf", "ReturnsInputView", "MutatesInputs", "MutatesOutputGrad")


@pytest.fixture(scope="module")
def cases():
    """Cropping1D (TARGET: two valid cases, one with a batch of 0, one invalid case), and of
    ZeroPadding1D and Conv1D one valid case each (and Conv1D's batch-0 case)."""
    every = case_set("smoke", layers=[faults.TARGET, "ZeroPadding1D", "Conv1D"])

    def pick(layer, kind, empty, count=1):
        return [c for c in every if c.layer == layer and c.kind == kind
                and (c.input_shape[0] == 0) == empty][:count]

    out = (pick(faults.TARGET, "valid", False, 2) + pick(faults.TARGET, "valid", True)
           + pick(faults.TARGET, "invalid", False) + pick("ZeroPadding1D", "valid", False)
           + pick("Conv1D", "valid", False) + pick("Conv1D", "valid", True))
    assert len(out) == 7
    assert any(c.layer == faults.TARGET and c.kind == "valid" for c in out)
    assert any(c.layer == faults.TARGET and c.kind == "invalid" for c in out)
    return out


def _run(name, cases, **kwargs):
    # a hang is cut at 5 s: far beyond what a reference case takes on a loaded machine
    kwargs.setdefault("timeout", 5.0 if name in ("SleepsPastTimeout", "LoopsInC") else 60.0)
    if name == "AllocatesTooMuch":
        kwargs.setdefault("memory_limit", MEMORY_LIMIT)
    seen: dict[str, CaseResult] = {}
    target = name if name == "reference" else f"{FAULTS}:{name}"
    for index, result in run(target, cases, **kwargs):
        assert cases[index].id == result.id and result.id not in seen
        seen[result.id] = result
    assert len(seen) == len(cases), "the run did not complete"
    return seen


@pytest.fixture(scope="module")
def baseline(cases):
    """The verdicts of the reference adapter itself on the same cases."""
    return {k: r.verdicts for k, r in _run("reference", cases).items()}


def _check(name, cases, results, baseline):
    expected = faults.EXPECTED[name]
    layer = getattr(getattr(faults, name), "layer", faults.TARGET)
    for case in cases:
        r = results[case.id]
        assert set(r.verdicts) == set(CaseResult.categories_of(case)), (case.id, r.verdicts)
        empty = case.input_shape[0] == 0  # NaN or Inf in no element, a view of no memory: right
        if case.layer == layer and case.kind == "valid" and not (empty and name in _EMPTY_OK):
            if "*" in expected:
                want = {c: expected["*"] for c in r.verdicts}
            else:
                want = baseline[case.id] | {c: expected.get(c, "pass") for c in ("shape", "output", "gradient")}
            assert r.verdicts == want, (name, case.id, r.verdicts, r.message[:500])
        else:
            assert r.verdicts == baseline[case.id], (name, case.id, r.verdicts, r.message[:500])


# Every fault runs through real worker processes, at --jobs 1 and 2, with the same records.
# SpawnsChild has its own test below (it leaves processes to be reaped).
_THROUGH_WORKERS = [n for n in faults.EXPECTED if n != "SpawnsChild"]


@pytest.mark.parametrize("name", _THROUGH_WORKERS)
def test_every_fault_is_classified_through_workers_alike_at_jobs_1_and_2(name, cases, baseline):
    one, two = _run(name, cases, jobs=1), _run(name, cases, jobs=2)
    _check(name, cases, one, baseline)
    for case_id, r in one.items():
        assert (r.verdicts, r.worst_ratio, r.message) == \
               (two[case_id].verdicts, two[case_id].worst_ratio, two[case_id].message), case_id
    layer = getattr(getattr(faults, name), "layer", faults.TARGET)
    target = [r for r in one.values() if r.layer == layer and r.kind == "valid" and r.input_shape[0]]
    assert target
    messages = [r.message for r in target]
    if name.startswith("Mutates") or name == "ReturnsInputView":
        assert all("the caller's" in m for m in messages), messages
    if name in ("ReturnsInt", "ReturnsBool", "ReturnsComplex"):
        assert all("but should be a real floating dtype" in m for m in messages)
    if name in ("ReturnsList", "ReturnsNone", "ReturnsMasked", "ReturnsObject"):
        assert all("but should be an array of shape" in m for m in messages)
    if name in ("SleepsPastTimeout", "LoopsInC"):
        assert all("did not finish within --timeout 5 s" in m for m in messages), messages
    if name == "AllocatesTooMuch":
        assert all(f"--memory-limit {MEMORY_LIMIT // 2 ** 20} MiB" in m for m in messages), messages
    if name == "Segfaults":
        assert all("SIGSEGV" in m for m in messages)
    if name == "Aborts":
        assert all("SIGABRT" in m for m in messages)
    if name == "Exits3":
        assert all("exit code 3" in m for m in messages)
    if name == "SysExit0":
        assert all("exit code 0" in m for m in messages)


def test_the_same_allocation_passes_without_a_memory_limit(cases, baseline):
    """What makes AllocatesTooMuch a crash above is the limit, not the allocation itself."""
    results = _run("AllocatesTooMuch", cases, memory_limit=None)
    assert {i: r.verdicts for i, r in results.items()} == baseline


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead, only not yet reaped by its parent
        return f.read().split(") ")[-1][0] != "Z"


def test_no_process_is_left_behind(cases, baseline, tmp_path, monkeypatch):
    """SpawnsChild leaves a 10-minute child per TARGET case; the workers lead their own process
    groups and are killed with them, so none survives the run."""
    pids_file = tmp_path / "children"
    monkeypatch.setenv(faults.CHILD_PID_FILE, str(pids_file))
    _check("SpawnsChild", cases, _run("SpawnsChild", cases, jobs=2), baseline)
    pids = [int(p) for p in pids_file.read_text().split()]
    assert pids
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in pids if _alive(p)]
    for p in alive:  # do not leave them behind even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not alive, f"children still running after the run: {alive}"


def test_megabytes_printed_are_captured_bounded_and_do_not_block(cases, baseline):
    start = time.monotonic()
    results = _run("PrintsMegabytes", cases, jobs=2)
    assert time.monotonic() - start < 60
    _check("PrintsMegabytes", cases, results, baseline)
    for r in results.values():
        if r.layer == faults.TARGET and r.kind == "valid":
            assert r.output.startswith("python says: xxx")
            assert "bytes left out" in r.output
            assert len(r.output) < 6000
            assert r.output.rstrip().endswith("y" * 100)  # the last thing written: C, fd 2
        else:
            assert r.output == ""


def test_output_of_a_case_and_of_loading_is_captured(cases):
    infos = []
    results = _run("ImportNoise", cases, on_ready=infos.append)
    assert "absl::InitializeLog()" in infos[0].output and "cudart_stub.cc" in infos[0].output
    for r in results.values():
        if r.layer == faults.TARGET:
            assert r.output == f"forward of {faults.TARGET} on {tuple(r.input_shape)}\n"
        else:
            assert r.output == ""


def test_a_worker_that_fails_to_start_shows_its_output(cases):
    with pytest.raises(WorkerStartError) as info:
        _run("FailsToLoad", cases)
    text = str(info.value)
    assert "ImportError: mylib could not be loaded" in text
    assert "libmylib.so: cannot open shared object file" in text


def test_memory_limit_must_be_positive(cases):
    with pytest.raises(ValueError, match="Argument `memory_limit`"):
        list(run("reference", cases, memory_limit=0))


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("process groups, /proc and RLIMIT_AS as on Linux")

"""Isolation and parallelism: worker processes, timeouts, crashes, --jobs determinism."""
from __future__ import annotations

import pytest

from conv_conformance.conformance.runner import WorkerStartError, run
from conv_conformance.oracle.cases import case_set
from tests.conformance.conftest import BROKEN
from tests.conformance.fixtures.broken import TARGET


def _by_id(target, cases, **kwargs):
    seen = {}
    for index, result in run(target, cases, **kwargs):
        assert cases[index].id == result.id
        assert result.id not in seen
        seen[result.id] = result
    assert len(seen) == len(cases)
    return seen


def test_reference_passes_in_a_worker(few_cases):
    infos = []
    results = _by_id("reference", few_cases, on_ready=infos.append)
    assert {r.verdict for r in results.values()} == {"pass"}
    assert infos[0].name == "reference"
    assert infos[0].target == "conv_conformance.conformance.adapters.reference:ReferenceAdapter"
    assert "numpy" in infos[0].versions


def test_verdicts_and_ratios_do_not_depend_on_jobs():
    cases = case_set("smoke", layers=["Conv1D", "Conv2D", "UpSampling2D", "Cropping1D"])
    one = _by_id(f"{BROKEN}:WrongValues", cases, jobs=1)
    two = _by_id(f"{BROKEN}:WrongValues", cases, jobs=2)
    again = _by_id(f"{BROKEN}:WrongValues", cases, jobs=1)  # the same run twice
    assert {r.verdict for r in one.values()} >= {"pass", "fail"}
    for case_id, r in one.items():
        for other in (two[case_id], again[case_id]):
            assert (r.verdicts, r.worst_ratio, r.worst, r.message) == \
                   (other.verdicts, other.worst_ratio, other.worst, other.message)


def _expect_lost(results, verdict, text):
    for r in results.values():
        if r.layer == TARGET:
            assert set(r.verdicts.values()) == {verdict}, r.id
            assert text in r.message
        else:
            assert r.verdict == "pass", (r.id, r.message)


def test_hanging_case_times_out_and_the_run_goes_on(few_cases):
    results = _by_id(f"{BROKEN}:Hangs", few_cases, jobs=2, timeout=0.5)
    _expect_lost(results, "timeout", "did not finish within --timeout 0.5 s")
    assert all(r.seconds >= 0.5 for r in results.values() if r.verdict == "timeout")


@pytest.mark.parametrize("adapter, text", [("Exits", "exit code 3"), ("Segfaults", "signal SIGSEGV")])
def test_case_that_kills_its_worker_is_a_crash(few_cases, adapter, text):
    results = _by_id(f"{BROKEN}:{adapter}", few_cases)
    _expect_lost(results, "crash", text)


def test_mutating_adapter_cannot_corrupt_other_cases(few_cases):
    """Writing into the caller's arrays is the `mutation` verdict of that call's category; the
    values it returned are still scored right and the next case gets fresh arrays."""
    results = _by_id(f"{BROKEN}:Mutates", few_cases)
    for r in results.values():
        if r.kind == "invalid":
            assert r.verdict == "pass", r.id
            continue
        assert r.verdicts["shape"] == "pass" and r.worst_ratio.get("output", 0.0) <= 1.0, r.id
        wrote = r.input_shape[0] > 0 or r.layer == "Conv1D"  # an empty batch has no elements to trash
        want = "mutation" if wrote else "pass"
        assert r.verdicts["output"] == want and r.verdicts.get("gradient", want) == want, (r.id, r.verdicts)
        assert ("wrote into the caller's inputs" in r.message) == (r.input_shape[0] > 0), r.id


def test_adapter_that_does_not_load_stops_the_run(few_cases):
    with pytest.raises(WorkerStartError, match="no attribute 'NoSuchAdapter'"):
        list(run(f"{BROKEN}:NoSuchAdapter", few_cases))


@pytest.mark.parametrize("kwargs, text", [({"jobs": 0}, "jobs"), ({"timeout": 0}, "timeout")])
def test_bad_arguments_are_named(few_cases, kwargs, text):
    with pytest.raises(ValueError, match=f"Argument `{text}`"):
        list(run("reference", few_cases, **kwargs))


@pytest.mark.parametrize("threads, expected", [(1, "threads=1,1,1,1"), (3, "threads=3,3,3,3")])
def test_workers_start_with_their_libraries_limited_to_threads(few_cases, threads, expected, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    results = _by_id(f"{BROKEN}:ThreadProbe", few_cases[:2], jobs=2, threads=threads)
    for r in results.values():
        assert expected in r.exception["message"], r.exception
        assert f"intra_op_parallelism_threads={threads}" in r.exception["message"]
    import os
    assert os.environ["OMP_NUM_THREADS"] == "7"  # the parent's environment is left as it was


def test_threads_none_leaves_the_libraries_alone(few_cases, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    results = _by_id(f"{BROKEN}:ThreadProbe", few_cases[:1], threads=None)
    assert "threads=5,unset" in next(iter(results.values())).exception["message"]


def test_a_worker_is_replaced_after_its_cases_per_worker():
    """Tires goes wrong from its 4th case in a process; it asks for a new worker every 3 cases."""
    cases = [c for c in case_set("smoke", layers=["Conv1D", "Cropping1D"])
             if c.kind == "valid" and c.input_shape[0] > 0][:8]  # wrong values need elements
    assert {r.verdict for r in _by_id(f"{BROKEN}:Tires", cases, jobs=2).values()} == {"pass"}
    assert {r.verdict for r in _by_id(f"{BROKEN}:Tires", cases, cases_per_worker=3).values()} == {"pass"}
    never = _by_id(f"{BROKEN}:Tires", cases, cases_per_worker=0)
    assert sum(r.verdict == "fail" for r in never.values()) == len(cases) - 3


def test_cases_per_worker_must_not_be_negative(few_cases):
    with pytest.raises(ValueError, match="cases_per_worker.*>= 0.*Received: cases_per_worker=-1"):
        list(run("reference", few_cases, cases_per_worker=-1))


# ---------------------------------------------------------------- replacement workers

FORKING = "tests.conformance.fixtures.forking"


def _parents(results):
    """{case id: the pid of the process its worker was started by} for the cases that print it."""
    return {r.id: int(r.output.split()[1]) for r in results.values() if r.output.startswith("parent ")}


def _pid_alive(pid):
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead, only not yet reaped
        return f.read().split(") ")[-1][0] != "Z"


def test_replacement_workers_are_forked_from_a_server_that_loaded_the_adapter(few_cases):
    """After the first crash every new worker is forked from the fork server (its parent), with
    the same records as spawned workers give; the server does not outlive the run."""
    import os

    forked = _by_id(f"{FORKING}:CrashesAndTells", few_cases, jobs=1)
    spawned = _by_id(f"{FORKING}:CrashesAndTells", few_cases, jobs=1, preload=False)
    _expect_lost(forked, "crash", "signal SIGSEGV")
    for case_id, r in forked.items():
        assert (r.verdicts, r.worst_ratio, r.message) == \
               (spawned[case_id].verdicts, spawned[case_id].worst_ratio, spawned[case_id].message), case_id
    order = [c.id for c in few_cases]
    first_crash = min(order.index(c.id) for c in few_cases if c.layer == TARGET)
    parents = _parents(forked)
    before = {parents[i] for i in order[:first_crash] if i in parents}
    after = {parents[i] for i in order[first_crash:] if i in parents}
    assert before <= {os.getpid()} and len(after) == 1 and os.getpid() not in after, (before, after)
    assert set(_parents(spawned).values()) == {os.getpid()}
    server = after.pop()
    assert not _pid_alive(server), f"the fork server {server} outlived the run"


def test_workers_are_spawned_when_the_loaded_adapter_runs_threads(few_cases):
    """Forking a process with threads can copy a lock some other thread holds: an adapter whose
    loading starts a thread gets spawned workers only."""
    import os

    results = _by_id(f"{FORKING}:ThreadedCrashesAndTells", few_cases, jobs=1)
    _expect_lost(results, "crash", "signal SIGSEGV")
    assert set(_parents(results).values()) == {os.getpid()}


def test_closing_a_run_kills_a_fork_server_that_is_still_loading(few_cases, monkeypatch):
    """A run closed (Ctrl-C, an error, the generator dropped) while the fork server still loads
    the adapter kills the server too; the replacement it waited for never starts."""
    from conv_conformance.conformance.runner import _STARTUP_TIMEOUT, _Pool

    pool = _Pool(f"{FORKING}:SlowToLoad", 1, 60.0, 1)
    try:
        pool.spawn()
        monkeypatch.setenv("CONV_CONFORMANCE_TEST_SLOW_LOAD", "1")  # the server's load only
        assert pool.spawn() is None  # a replacement: the server starts, the worker waits for it
        server = pool.server._forkserver_pid
        assert pool.deferred == 1 and pool.server.loading(_STARTUP_TIMEOUT) and _pid_alive(server)
    finally:
        pool.close()
    assert not _pid_alive(server)  # killed and reaped, not left to finish its minute


def test_each_worker_takes_its_own_lane_of_cases_in_order_then_the_back_of_the_longest():
    """Cases are dealt in turn into one lane per job, so a worker meets the same cases in the same
    order in every run of them (what a framework keys by its process's history comes out the
    same); a replacement continues its predecessor's lane, and an idle worker takes from the back
    of the longest other lane."""
    from conv_conformance.conformance.runner import _Lanes, _Slot

    lanes = _Lanes(list(range(7)), 2)
    a, b = _Slot(None, None), _Slot(None, None)
    slots = [a, b]
    assert [lanes.take(a, slots), lanes.take(b, slots), lanes.take(a, slots)] == [0, 1, 2]
    slots.remove(a)  # a crashed: its replacement continues lane 0, after the case a held
    c = _Slot(None, None)
    slots.append(c)
    assert [lanes.take(c, slots), lanes.take(c, slots), lanes.take(c, slots)] == [4, 6, 5]  # 5: b's last
    assert [lanes.take(b, slots)] == [3] and not lanes


def test_workers_started_before_the_cases_score_them_as_a_run_started_with_them(few_cases):
    """start() lets the workers import the adapter while the caller builds its case set; a run
    given them uses them (no worker of its own: the pids are those start() began with) and
    scores exactly as a run that started its own."""
    from conv_conformance.conformance.runner import start

    own = _by_id(f"{BROKEN}:WrongValues", few_cases, jobs=2)
    workers = start(f"{BROKEN}:WrongValues", jobs=2)
    pids = {slot.process.pid for slot in workers.slots}
    assert len(pids) == 2 and all(_pid_alive(p) for p in pids)
    given = _by_id(f"{BROKEN}:WrongValues", few_cases, jobs=2, workers=workers)
    assert workers.spawned == 2 and not workers.slots, "the run started workers of its own, or left them"
    assert not any(_pid_alive(p) for p in pids)
    for case_id, r in own.items():
        assert (r.verdicts, r.worst_ratio, r.message) == \
               (given[case_id].verdicts, given[case_id].worst_ratio, given[case_id].message), case_id


def test_workers_started_for_other_arguments_are_refused_and_closed(few_cases):
    from conv_conformance.conformance.runner import start

    workers = start("reference", jobs=1, timeout=30.0)
    pids = {slot.process.pid for slot in workers.slots}
    with pytest.raises(ValueError, match=r"Argument `workers`: they were started for .*'reference', 1, 30\.0"):
        list(run("reference", few_cases, jobs=1, timeout=60.0, workers=workers))
    assert not workers.slots and not any(_pid_alive(p) for p in pids)

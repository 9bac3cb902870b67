"""Running a case set in isolated worker processes.

Adapter code never runs in the process that holds the results. Each of the
``jobs`` slots is one :class:`multiprocessing.Process` (spawn start method)
connected by a :func:`multiprocessing.Pipe`: the worker loads the adapter once,
then receives small messages ``(index, case JSON, dtype)``, materializes the
case itself from its seed, scores it with :func:`conformance.scoring.check`
and sends back the :class:`~conformance.scoring.CaseResult`. The cases are dealt in turn into
one lane per job; a worker takes its own lane in order, then helps with the others
(:class:`_Lanes`), so a repeated run gives each worker the same history.

The parent waits on every pipe and process sentinel at once
(:func:`multiprocessing.connection.wait`) with the nearest case deadline as
timeout. A case still running at its deadline is recorded as ``timeout``; a
worker that dies (segfault, abort, ``os._exit``) is recorded as ``crash`` for
the case it held. Either way the worker is replaced by a fresh one and the run
goes on. From the first replacement on, a fork server loads the adapter once and fresh workers
are forked from it, already loaded (conformance._forkserver), where the adapter's libraries
leave that process single-threaded; otherwise they are spawned too. Results are yielded as
they arrive; nothing about finished cases is kept here.

Each worker starts with its numerical libraries limited to ``threads`` threads
(default 1; OpenMP/oneDNN, OpenBLAS, MKL, TensorFlow, XLA), whatever ``jobs``
is: cases are small, workers do not compete for cores, and a result cannot
depend on how many workers run beside it.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Iterator, Sequence
from unittest import mock

from conv_conformance.oracle.case import Case
from conv_conformance.vocabulary import DEFAULT_TOLERANCE

from . import _forkserver
from .record import CaseResult, lost
from .registry import AdapterInfo, describe, load_adapter, out_of_process
from .scoring import ScoringOptions, evaluate

__all__ = ["run", "start", "Workers", "Isolated", "WorkerStartError", "AdapterInfo"]

_STARTUP_TIMEOUT = 300.0  # importing a framework can take a while on a loaded machine


# Read once by each library when it loads in the worker; a spawned worker inherits them.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@contextlib.contextmanager
def _thread_limits(threads: int | None):
    """os.environ with every library limited to `threads` threads, for a process started inside."""
    if threads is None:
        yield
        return
    xla = f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} intra_op_parallelism_threads={threads}"
    limits = {name: str(threads) for name in _THREAD_VARIABLES}
    limits["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {xla}".strip()
    with mock.patch.dict(os.environ, limits):  # the caller's environment comes back on exit
        yield


class WorkerStartError(Exception):
    """The adapter could not be loaded in a worker (bad target, import error)."""


# ------------------------------------------------------------------ worker side

def _capture(log: str | None) -> int | None:
    """Send this process's fds 1 and 2 (Python and C writes alike) to the file ``log``."""
    if log is None:
        return None
    fd = os.open(log, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    return fd


def _flush_all() -> None:
    """Python's and C's buffered output into fds 1 and 2 (the capture file)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


def _rewind(fd: int | None) -> None:
    """Empty the capture file before the next case (all dups share its offset)."""
    if fd is not None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)


def _worker(conn: Connection, target: str, log: str | None = None, memory_limit: int | None = None) -> None:
    """Worker process main loop: load the adapter, then score cases until told to stop.

    The worker leads its own session, so the parent can kill it together with any process it
    started (conformance.runner._Pool.retire). With ``log``, everything written to fds 1 and 2
    goes to that file, emptied before each case; the parent reads it as the case's output.
    ``memory_limit`` (bytes) caps the address space once the adapter has loaded.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    with contextlib.suppress(OSError):
        os.setsid()
    fd = _capture(log)
    try:
        adapter = load_adapter(target)
        info = describe(adapter, target)  # a malformed declaration is a load error
    except BaseException as exc:  # report anything, including SystemExit from an adapter import
        _flush_all()
        conn.send(("load_error", f"{type(exc).__name__}: {exc}"))
        return
    if memory_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    _flush_all()
    conn.send(("ready", info))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        index, case_json, options, *given = message  # given: the arrays of a case drawn elsewhere
        _rewind(fd)
        case = Case.from_json(case_json)
        dtype = options.dtype
        try:
            result = evaluate(adapter, case, options, given[0] if given else None)
            if memory_limit and (result.exception or {}).get("type") == "MemoryError":
                result = _out_of_memory(case, dtype, result, memory_limit)
        except Exception as exc:  # the harness itself failed on this case: report, keep going
            result = CaseResult.for_case(case, dtype, exception={"type": type(exc).__name__,
                                                                  "message": str(exc)})
            for category in CaseResult.categories_of(case):
                result.verdicts[category] = "error"
            result.message = f"the harness could not score this case: {type(exc).__name__}: {exc}"
        _flush_all()
        conn.send(("result", index, result))


def _out_of_memory(case: Any, dtype: str, result: CaseResult, limit: int) -> CaseResult:
    """A case whose adapter ran out of the --memory-limit address space: every category crash."""
    record = lost(case, dtype, "crash", f"the case exceeded --memory-limit {limit // 2 ** 20} MiB "
                                        f"({result.exception.get('summary') or 'MemoryError'})", result.seconds)
    record.exception = result.exception
    return record


# ------------------------------------------------------------------ parent side

@dataclass
class _Slot:
    process: Any
    conn: Connection
    ready: bool = False
    task: tuple[int, Any] | None = None
    deadline: float = 0.0
    started: float = 0.0
    done: int = 0  # cases this worker has finished
    lane: int | None = None  # the queue of cases it takes from first (_Lanes)
    log: str | None = None  # the file its fds 1 and 2 write to


def _signal_name(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


#: What is kept of a case's captured output: this many characters from its start and from its end.
OUTPUT_HEAD = OUTPUT_TAIL = 2048
#: A worker that fails to start shows its output in full, up to this many bytes.
STARTUP_OUTPUT_LIMIT = 1 << 20


def captured(path: str | None, head: int = OUTPUT_HEAD, tail: int = OUTPUT_TAIL) -> str:
    """The text in a worker's capture file: all of it when short, else its first ``head`` and
    last ``tail`` bytes around a line saying how much was left out (never reads the middle)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= head + tail:
                data = f.read(size)
            else:
                first = f.read(head)
                f.seek(size - tail)
                data = first + f"\n[... {size - head - tail} bytes left out ...]\n".encode() + f.read(tail)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


class _Pool:
    def __init__(self, target: str, jobs: int, timeout: float, threads: int | None,
                 memory_limit: int | None = None, capture: bool = True, preload: bool = True) -> None:
        self.target, self.jobs, self.timeout, self.threads = target, jobs, timeout, threads
        self.memory_limit = memory_limit
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[_Slot] = []
        self.info: AdapterInfo | None = None
        self.logdir = tempfile.mkdtemp(prefix="conv-conformance-") if capture else None
        self.spawned = 0
        self.preload = preload and not out_of_process(target)
        self.server: _forkserver.Server | None = None
        self.serverdir: str | None = None
        self.forked = 0  # workers forked from the server (the others were spawned)
        self.deferred = 0  # workers to start once the server has loaded the adapter (fill)

    def _start_server(self) -> None:
        """Start the fork server that loads the adapter once for every later worker. Started at
        the first replacement, not with the run: a run that never replaces a worker pays nothing."""
        self.serverdir = tempfile.mkdtemp(prefix="conv-conformance-server-")
        log = None if self.logdir is None else os.path.join(self.serverdir, "server.log")
        self.server = _forkserver.Server(self.target, os.path.join(self.serverdir, "status.json"), log)
        with _thread_limits(self.threads):
            self.server.start()

    def spawn(self) -> _Slot | None:
        """Start a worker: forked from the fork server once it has loaded the adapter and is safe
        to fork from (conformance._forkserver), else a fresh spawned interpreter. While the server
        is still loading, the worker is deferred (None; :meth:`fill` starts it): a spawned worker
        would import the same frameworks at the same time, on the same cores."""
        if self.preload and self.server is None and self.spawned >= self.jobs:
            self._start_server()
        if self.server is not None and self.server.loading(_STARTUP_TIMEOUT):
            self.deferred += 1
            return None
        return self._start()

    def fill(self) -> None:
        """Start the workers deferred while the fork server loaded, once it has (or has failed)."""
        while self.deferred and not self.server.loading(_STARTUP_TIMEOUT):
            self.deferred -= 1
            self._start()

    def _start(self) -> _Slot:
        parent, child = self.context.Pipe()
        self.spawned += 1
        log = None if self.logdir is None else os.path.join(self.logdir, f"worker-{self.spawned}.log")
        args = (child, self.target, log, self.memory_limit)
        process = None
        if self.server is not None and self.server.usable():
            process = self.server.Process(target=_worker, args=args, daemon=True, name="conv-conformance-worker")
            try:
                process.start()
                self.forked += 1
            except (OSError, EOFError, ValueError):  # the server went away between the check and the fork
                self.server.stop()
                process = None
        if process is None:
            process = self.context.Process(target=_worker, args=args, daemon=True, name="conv-conformance-worker")
            with _thread_limits(self.threads):
                process.start()
        child.close()
        slot = _Slot(process, parent, deadline=time.monotonic() + _STARTUP_TIMEOUT, log=log)
        self.slots.append(slot)
        return slot

    def retire(self, slot: _Slot) -> None:
        """Kill the worker and every process it started (its session's process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(slot.process.pid, signal.SIGKILL)
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(slot.process.pid, signal.SIGKILL)  # children it started after the first kill
        slot.conn.close()
        self.slots.remove(slot)
        if slot.log is not None:
            with contextlib.suppress(OSError):
                os.unlink(slot.log)

    def startup_output(self, slot: _Slot) -> str:
        """A failed worker's output, in full up to STARTUP_OUTPUT_LIMIT, as lines to append."""
        text = captured(slot.log, STARTUP_OUTPUT_LIMIT // 2, STARTUP_OUTPUT_LIMIT // 2).rstrip()
        return f"\n--- output of the worker ---\n{text}" if text else ""

    def recycle(self, slot: _Slot) -> None:
        """Replace an idle worker by a fresh one (it is told to stop, then killed if it lingers)."""
        try:
            slot.conn.send(None)
        except (OSError, ValueError):
            pass
        slot.process.join(2)
        self.retire(slot)
        self.spawn()

    def close(self) -> None:
        for slot in list(self.slots):
            try:
                slot.conn.send(None)
            except (OSError, ValueError):
                pass
        for slot in list(self.slots):
            slot.process.join(0.5 if slot.task is None else 0)
            self.retire(slot)
        if self.server is not None:
            self.server.stop()
        for directory in (self.logdir, self.serverdir):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)


Workers = _Pool  # worker processes started by start(), before their cases are known


def _check_arguments(jobs: int, timeout: float, threads: int | None, memory_limit: int | None) -> None:
    if jobs < 1:
        raise ValueError(f"Argument `jobs` must be an integer >= 1. Received: jobs={jobs!r}")
    if not timeout > 0:
        raise ValueError(f"Argument `timeout` must be a number > 0. Received: timeout={timeout!r}")
    if threads is not None and threads < 1:
        raise ValueError(f"Argument `threads` must be an integer >= 1 or None. Received: threads={threads!r}")
    if memory_limit is not None and memory_limit < 1:
        raise ValueError(f"Argument `memory_limit` must be a number of bytes >= 1 or None. "
                         f"Received: memory_limit={memory_limit!r}")


def start(target: str, *, jobs: int = 1, timeout: float = 60.0, threads: int | None = 1,
          memory_limit: int | None = None, capture: bool = True, preload: bool = True) -> Workers:
    """Start ``jobs`` workers loading the adapter ``target`` now, for a :func:`run` given them
    as ``workers`` once its cases are known: building a large case set then overlaps the
    workers' imports. The arguments are :func:`run`'s. Whoever starts workers closes them
    (``close()``) if no :func:`run` takes them; a run closes the workers it was given."""
    _check_arguments(jobs, timeout, threads, memory_limit)
    pool = _Pool(target, jobs, timeout, threads, memory_limit, capture, preload)
    try:
        for _ in range(pool.jobs):
            pool.spawn()
    except BaseException:
        pool.close()
        raise
    return pool


def run(target: str, cases: Sequence[Any], dtype: str = "float32", *, jobs: int = 1,
        timeout: float = 60.0, threads: int | None = 1, on_ready: Any = None,
        cases_per_worker: int | None = None, repeat: int = 0, memory_limit: int | None = None,
        capture: bool = True, arrays: Sequence[Any] | None = None,
        tolerance: str = DEFAULT_TOLERANCE, results: str | None = None,
        preload: bool = True, workers: Workers | None = None) -> Iterator[tuple[int, CaseResult]]:
    """Score ``cases`` with the adapter ``target`` in ``jobs`` worker processes.

    ``memory_limit`` (bytes) caps each worker's address space once its adapter has loaded
    (``resource.RLIMIT_AS``): a case that exceeds it is a ``crash`` labelled with the limit.
    ``capture`` sends what a worker writes to fds 1 and 2 into its case's ``output`` (bounded:
    :data:`OUTPUT_HEAD` + :data:`OUTPUT_TAIL` characters) instead of the terminal.
    ``arrays``: per case, its materialized arrays (read from an exported corpus,
    ``oracle.corpus.read``) instead of the worker materializing it from its seed.

    ``threads`` limits the numerical libraries of each worker (None: leave them
    to their defaults). A worker that has finished ``cases_per_worker`` cases is
    replaced by a fresh one, so that memory a framework keeps per case (compiled
    executables, traced functions) cannot grow with the case set; None takes the
    adapter's own ``cases_per_worker`` attribute if it has one, 0 never replaces.
    ``repeat`` >= 2 scores the ``determinism`` category (see conformance.scoring.check);
    ``tolerance`` is the mode of the allowed errors the workers derive (oracle.materialize).
    ``preload``: a worker that replaces another is forked from a server process that has loaded
    the adapter once (conformance._forkserver), where that is safe; False spawns every worker.
    ``workers``: workers :func:`start` started for ``target`` with these ``jobs``, ``timeout``,
    ``threads``, ``memory_limit``, ``capture`` and ``preload`` (a ValueError if any differs),
    used instead of starting new ones.
    Yields ``(index into cases, CaseResult)`` in completion order. ``on_ready``
    is called once with the :class:`AdapterInfo` of the first worker that loads
    the adapter. Raises WorkerStartError if the adapter cannot be loaded. On
    exit (including KeyboardInterrupt or closing the generator) every worker
    is killed.
    """
    try:
        _check_arguments(jobs, timeout, threads, memory_limit)
        if cases_per_worker is not None and cases_per_worker < 0:
            raise ValueError("Argument `cases_per_worker` must be an integer >= 0 (0: never replace a worker) "
                             f"or None. Received: cases_per_worker={cases_per_worker!r}")
        options = ScoringOptions(dtype, tolerance, repeat, results)  # results: see ScoringOptions
        if workers is not None:
            given = (workers.target, workers.jobs, workers.timeout, workers.threads, workers.memory_limit,
                     workers.logdir is not None, workers.preload or out_of_process(target))
            wanted = (target, jobs, timeout, threads, memory_limit, capture, preload or out_of_process(target))
            if given != wanted:
                raise ValueError("Argument `workers`: they were started for (target, jobs, timeout, threads, "
                                 f"memory_limit, capture, preload) = {given}, this run asks for {wanted}")
    except BaseException:
        if workers is not None:
            workers.close()
        raise
    pool = workers or _Pool(target, min(jobs, max(len(cases), 1)), timeout, threads, memory_limit, capture,
                            preload)
    pending = _Lanes(list(enumerate(cases)), pool.jobs)
    try:
        for _ in range(pool.jobs if workers is None else 0):
            pool.spawn()
        remaining = len(cases)
        while remaining:
            pool.fill()
            limit = cases_per_worker if cases_per_worker is not None else (pool.info and pool.info.cases_per_worker)
            for slot in list(pool.slots):
                if limit and slot.ready and slot.task is None and slot.done >= limit and pending:
                    pool.recycle(slot)
            for slot in pool.slots:
                if slot.ready and slot.task is None and pending:
                    slot.task = pending.take(slot, pool.slots)
                    slot.started = time.monotonic()
                    slot.deadline = slot.started + timeout
                    given = () if arrays is None else (arrays[slot.task[0]],)
                    slot.conn.send((slot.task[0], slot.task[1].to_json(), options, *given))
            now = time.monotonic()
            busy = [s for s in pool.slots if s.task is not None or not s.ready]
            nearest = min((s.deadline for s in busy), default=now + 1.0)
            if pool.deferred:  # the server tells that it has loaded by a file: look every 50 ms
                nearest = min(nearest, now + 0.05)
            handles = [s.conn for s in pool.slots] + [s.process.sentinel for s in pool.slots]
            ready = set(wait(handles, timeout=max(0.0, nearest - now)))
            for slot in list(pool.slots):
                outcome = _poll(pool, slot, ready, dtype, on_ready)
                if outcome is not None:
                    remaining -= 1
                    yield outcome
    finally:
        pool.close()


class _Lanes:
    """The cases still to send, dealt in turn into one queue (lane) per job.

    A worker takes from the front of its own lane, so in a repeated run of the same cases at the
    same ``jobs`` each worker process meets the same cases in the same order: what a framework
    keys by its process's history (TensorFlow numbers its functions, and its persistent XLA
    cache keys by those names) comes out the same. A worker whose lane is empty takes from the
    back of the longest other lane, so no worker idles while cases wait; a replacement worker
    continues the lane of the one it replaces.
    """

    def __init__(self, items: list, jobs: int) -> None:
        self.lanes = [deque(items[i::jobs]) for i in range(jobs)]

    def __bool__(self) -> bool:
        return any(self.lanes)

    def take(self, slot: _Slot, slots: list[_Slot]) -> Any:
        if slot.lane is None:
            held = {s.lane for s in slots if s is not slot}
            slot.lane = min((i for i in range(len(self.lanes)) if i not in held), default=0)
        own = self.lanes[slot.lane]
        return own.popleft() if own else max(self.lanes, key=len).pop()


def _poll(pool: _Pool, slot: _Slot, ready: set, dtype: str, on_ready: Any) -> tuple[int, CaseResult] | None:
    """Handle what happened to one worker: a message, its death, or its deadline."""
    if slot.conn in ready or slot.process.sentinel in ready:
        try:
            while slot.conn.poll():
                message = slot.conn.recv()
                if message[0] == "ready":
                    slot.ready = True
                    if pool.info is None:
                        pool.info = message[1]
                        pool.info.output = captured(slot.log)
                        if on_ready is not None:
                            on_ready(message[1])
                elif message[0] == "load_error":
                    output = pool.startup_output(slot)
                    pool.retire(slot)
                    raise WorkerStartError(message[1] + output)
                else:
                    _, index, result = message
                    slot.task = None
                    slot.done += 1
                    result.output = result.output or captured(slot.log)
                    return index, result
        except (EOFError, OSError):
            pass
        if not slot.process.is_alive() or slot.process.sentinel in ready:
            slot.process.join(1)
            return _replace(pool, slot, dtype, "crash",
                            f"the worker process died ({_signal_name(slot.process.exitcode)}) "
                            "while running this case")
    if (slot.task is not None or not slot.ready) and time.monotonic() >= slot.deadline:
        if not slot.ready:
            output = pool.startup_output(slot)
            pool.retire(slot)
            raise WorkerStartError(f"the adapter {pool.target!r} did not load within {_STARTUP_TIMEOUT:.0f} s"
                                   + output)
        return _replace(pool, slot, dtype, "timeout",
                        f"the case did not finish within --timeout {pool.timeout:g} s")
    return None


def _replace(pool: _Pool, slot: _Slot, dtype: str, verdict: str, why: str) -> tuple[int, CaseResult] | None:
    task, seconds = slot.task, time.monotonic() - slot.started
    ready = slot.ready
    output = captured(slot.log) if ready else pool.startup_output(slot)
    pool.retire(slot)
    if not ready:
        raise WorkerStartError(f"the worker process died ({_signal_name(slot.process.exitcode)}) "
                               f"while loading the adapter {pool.target!r}" + output)
    pool.spawn()
    if task is None:
        return None
    if verdict == "crash" and pool.memory_limit:
        why += (f", with --memory-limit {pool.memory_limit // 2 ** 20} MiB in force (an allocation that "
                "fails in C code often ends a process this way)")
    index, case = task
    record = lost(case, dtype, verdict, why, seconds)
    record.output = output
    return index, record


class Isolated:
    """One worker process for scoring cases one at a time, as ``explore`` does.

    ``check(case, materialized, dtype)`` sends the case with its arrays to the
    worker and waits for the result; a case that hangs past ``timeout`` or takes
    the worker down comes back as a ``timeout`` or ``crash`` result and the next
    call gets a fresh worker. Use as a context manager (the worker is killed on exit).
    """

    def __init__(self, target: str, *, timeout: float = 60.0, threads: int | None = 1) -> None:
        if not timeout > 0:
            raise ValueError(f"Argument `timeout` must be a number > 0. Received: timeout={timeout!r}")
        self._pool = _Pool(target, 1, timeout, threads)
        self._pool.spawn()
        try:
            self._ready("float32")
        except BaseException:
            self._pool.close()
            raise

    @property
    def info(self) -> AdapterInfo | None:
        """What the worker reported when it loaded the adapter (None before the first check)."""
        return self._pool.info

    def check(self, case: Any, materialized: Any, options: ScoringOptions | str) -> CaseResult:
        """Score one case with its given arrays in the worker (raises WorkerStartError if the
        adapter cannot load); ``options`` may be just the dtype."""
        if isinstance(options, str):
            options = ScoringOptions(options)
        dtype = options.dtype
        slot = self._ready(dtype)
        slot.task = (0, case)
        slot.started = time.monotonic()
        slot.deadline = slot.started + self._pool.timeout
        slot.conn.send((0, case.to_json(), options, materialized))
        while True:
            outcome = self._step(slot, dtype)
            if outcome is not None:
                return outcome[1]

    def _ready(self, dtype: str) -> _Slot:
        """The worker, once it has loaded the adapter (a fresh one is still importing it)."""
        while not self._pool.slots:  # deferred until the fork server has loaded the adapter
            time.sleep(0.05)
            self._pool.fill()
        slot = self._pool.slots[0]
        while not slot.ready:
            self._step(slot, dtype)
        return slot

    def _step(self, slot: _Slot, dtype: str) -> tuple[int, CaseResult] | None:
        """Wait for the worker's next message, its death or its deadline, and handle it."""
        ready = set(wait([slot.conn, slot.process.sentinel], timeout=max(0.0, slot.deadline - time.monotonic())))
        return _poll(self._pool, slot, ready, dtype, None)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> "Isolated":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

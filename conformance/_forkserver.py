"""Workers forked from a server process that has already loaded the adapter.

A spawned worker is a fresh interpreter that imports the adapter's frameworks again: seconds of
CPU for TensorFlow or PyTorch, paid on every crash, timeout and ``cases_per_worker`` recycle. A
:class:`Server` is a multiprocessing fork server (one per run, not the process-wide one, so that
its preload and environment are those of this run) whose only preload is this module. Imported
there, the module loads the adapter and asks for its versions, as a worker does (same code, same
environment: the frameworks, the adapter's own lazy imports and the settings they make), reports
how many threads the process then has, and the server forks each new worker from that state.

Forking copies one thread only, so a process whose libraries already run threads of their own
can hand its children locks that no thread will release: the runner forks only from a server
with a single thread after loading, and spawns otherwise. Measured after loading each
registered adapter and calling its versions() (TensorFlow 2.21, Keras 3, tf-keras, PyTorch 2.13,
JAX, LiteRT on an AMD EPYC, 1 thread per library): reference, keras, tf-keras, torch, jax,
keras-jax, keras-torch, keras-numpy and litert leave one thread; onnxruntime and openvino start
a thread as soon as they are imported, so their workers are spawned. (Detecting TensorFlow's
environment, as registry.describe does, starts its thread pools: the server does not.)

A server that fails to load the adapter, hangs or dies is simply not used: workers are then
spawned, and a load error is reported by a spawned worker as before.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
from multiprocessing import context, popen_forkserver, process, reduction, spawn, util
from multiprocessing import forkserver as _stdlib_forkserver
from typing import Any
from unittest import mock

from .registry import adapter_versions, load_adapter

__all__ = ["Server"]

# Read by this module when the fork server imports it; removed before any worker is forked.
_TARGET = "CONV_CONFORMANCE_PRELOAD_TARGET"
_STATUS = "CONV_CONFORMANCE_PRELOAD_STATUS"
_LOG = "CONV_CONFORMANCE_PRELOAD_LOG"
_SYS_PATH = "CONV_CONFORMANCE_PRELOAD_SYS_PATH"
_MAIN_PATH = "CONV_CONFORMANCE_PRELOAD_MAIN_PATH"


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # no procfs: the count cannot be checked, so forking is not trusted
        return 0


def _preload() -> None:
    """In the fork server: load the adapter, then write {"threads": n} or {"error": ...}."""
    target, status = os.environ.pop(_TARGET, None), os.environ.pop(_STATUS, None)
    if target is None or status is None:
        return
    log = os.environ.pop(_LOG, None)
    sys.path[:] = json.loads(os.environ.pop(_SYS_PATH, "[]")) or sys.path
    main_path = os.environ.pop(_MAIN_PATH, None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's parent handles Ctrl-C and stops us
    if log is not None:  # what loading prints belongs to no case: keep it off the terminal
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        # Each worker builds its own instance; this one imports what the adapter runs on: its
        # module, and the frameworks its versions() reports (most adapters import them lazily).
        # Not registry.describe: detecting the environment starts TensorFlow's thread pools.
        if main_path is not None:
            # The parent's main script, imported once here as a spawned worker imports it: a
            # forked worker then finds it loaded instead of running it again (multiprocessing's
            # own "__main__" preload no longer receives the path in Python 3.11).
            process.current_process()._inheriting = True
            try:
                spawn.import_main_path(main_path)
            finally:
                del process.current_process()._inheriting
        adapter_versions(load_adapter(target))
        report: dict[str, Any] = {"threads": _threads()}
    except BaseException as exc:  # anything, SystemExit included: the server is then not used
        report = {"error": f"{type(exc).__name__}: {exc}"}
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    with open(status + ".tmp", "w") as f:
        json.dump(report, f)
    os.replace(status + ".tmp", status)  # the parent never reads a half-written report


class _Popen(popen_forkserver.Popen):
    """popen_forkserver.Popen asking the process's own server, not the process-wide one (the
    body of the standard library's ``_launch``, Python 3.11, with that one call changed)."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = process_obj._server.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)  # the child watches it to learn that its parent is gone
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = _stdlib_forkserver.read_signed(self.sentinel)


class _Process(context.ForkServerProcess):
    def __init__(self, server: "Server", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server = server

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_server", None)  # the child needs only the target and its arguments
        return state

    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


class Server(_stdlib_forkserver.ForkServer):
    """A fork server that loads ``target`` before forking workers (see the module docstring).

    :meth:`start` returns at once; the server loads the adapter in the background and
    :meth:`usable` says whether it is ready and safe to fork from. :meth:`stop` kills it.
    """

    def __init__(self, target: str, status: str, log: str | None) -> None:
        super().__init__()
        self.target, self.status, self.log = target, status, log
        self.set_forkserver_preload([__name__])
        self._state: dict | None = None
        self._started = 0.0

    def start(self) -> None:
        """Launch the server with the current environment (the caller's thread limits)."""
        extra = {_TARGET: self.target, _STATUS: self.status, _SYS_PATH: json.dumps(sys.path)}
        main_path = spawn.get_preparation_data("main").get("init_main_from_path")
        if main_path is not None:
            extra[_MAIN_PATH] = main_path
        if self.log is not None:
            extra[_LOG] = self.log
        self._started = time.monotonic()
        with mock.patch.dict(os.environ, extra):  # restored once the server has started
            self.ensure_running()

    def state(self) -> dict | None:
        """What the server reported after loading the adapter (None: not yet)."""
        if self._state is None:
            with contextlib.suppress(OSError, ValueError):
                with open(self.status) as f:
                    self._state = json.load(f)
        return self._state

    def loading(self, limit: float) -> bool:
        """Still loading the adapter: alive, no report yet, started less than ``limit`` s ago."""
        if self.state() is not None or not self._alive():
            return False
        if time.monotonic() - self._started > limit:
            self._state = {"error": f"the fork server did not load the adapter in {limit:g} s"}
            return False
        return True

    def usable(self) -> bool:
        """Loaded, alive, and single-threaded: a worker forked from it starts safely."""
        state = self.state()
        return bool(state) and state.get("threads") == 1 and self._alive()

    def _alive(self) -> bool:
        if self._forkserver_pid is None:
            return False
        if os.waitpid(self._forkserver_pid, os.WNOHANG)[0] == 0:
            return True
        self._forkserver_pid = None  # reaped just now: stop() must not signal that pid again
        self._state = {"error": "the fork server died"}
        return False

    def Process(self, **kwargs: Any) -> _Process:
        """A multiprocessing.Process that this server forks when started."""
        return _Process(self, **kwargs)

    def stop(self) -> None:
        """Kill the server (whatever it is doing), reap it, and release what it held."""
        with self._lock:
            pid, self._forkserver_pid = self._forkserver_pid, None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            if self._forkserver_alive_fd is not None:
                os.close(self._forkserver_alive_fd)
                self._forkserver_alive_fd = None
            address, self._forkserver_address = self._forkserver_address, None
            if address is not None and not util.is_abstract_socket_namespace(address):
                with contextlib.suppress(OSError):
                    os.unlink(address)


_preload()

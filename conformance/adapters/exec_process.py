"""``--adapter exec:COMMAND``: an implementation in any language, driven over its stdin and stdout.

The harness starts ``COMMAND`` (split as a shell would, never run by a shell) once per worker
process, reads its hello (name, versions, declaration, environment, the methods it serves) and
then sends one request per call (docs/exec-protocol.md; the codec is conformance.exec_protocol).
What the harness guarantees a Python adapter holds for the process too:

* it inherits the worker's fd 2, so what it writes to stderr is the case's captured, bounded
  ``output`` (runner.captured);
* it stays in the worker's process group (a runner worker leads its own), so a hang is the
  runner's ``timeout`` and retiring the worker kills the implementation with it; outside a runner
  worker it leads its own group, killed when this process exits. On Linux it also receives
  SIGKILL if the worker dies first (PR_SET_PDEATHSIG);
* when it dies inside a call, the worker ends the same way (the same signal or exit status), so
  the runner records ``crash`` as for any adapter that takes its worker down;
* a response that breaks a rule of the protocol raises ProtocolError (``error``, naming the
  rule; conformance.scoring) and the process is replaced before the next call, since the stream
  can no longer be trusted to be in step.

Arrays cross the pipe as copies, so the ``mutation`` verdict cannot occur: an implementation
cannot write into or alias the harness's arrays.
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import select
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..exec_protocol import METHODS, PROTOCOL, ProtocolError, check_hello, check_response, read_frame, write_frame

__all__ = ["PREFIX", "ExecAdapter", "ExecStartError", "exec_adapter", "TfjsAdapter", "TfjsWasmAdapter",
           "STARTUP_TIMEOUT_VARIABLE"]

PREFIX = "exec:"
#: Seconds to wait for the hello (default 60): an implementation that never greets is a load error.
STARTUP_TIMEOUT_VARIABLE = "CONV_CONFORMANCE_EXEC_STARTUP_TIMEOUT"
_PR_SET_PDEATHSIG = 1
_PIPE_SIZE = 1 << 20


class ExecStartError(RuntimeError):
    """The command could not be started, or did not send a valid hello."""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started it dies (Linux)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


if sys.platform.startswith("linux"):
    import ctypes

    _LIBC = ctypes.CDLL(None, use_errno=True)


def _widen(*pipes: Any) -> None:
    """Pipe buffers of up to 1 MiB (Linux; 64 KiB by default): an array crosses in a few large
    writes instead of one reader-writer switch per 64 KiB, which on a busy machine costs a
    scheduling delay each."""
    for pipe in pipes:
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_SIZE)


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


class ExecAdapter:
    """The adapter contract served by a process speaking the exec protocol."""

    def __init__(self, command: str | Sequence[str], *, cwd: str | os.PathLike | None = None) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else list(command)
        if not self.argv:
            raise ExecStartError("`exec:` needs a command, e.g. exec:./my-implementation")
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self._own_group = False
        self._owner = os.getpid()
        self._id = 0
        hello = self._start()
        self.name: str = hello["name"]
        self._versions = {str(k): str(v) for k, v in hello.get("versions", {}).items()}
        self._environment = {str(k): str(v) for k, v in hello.get("environment", {}).items()}
        self.declaration: Any = hello.get("declaration")
        self.methods = tuple(hello["methods"])
        for method in METHODS:
            if method not in self.methods:
                setattr(self, method, None)  # absent: its category is unsupported
        atexit.register(self.close)

    # ------------------------------------------------------------------ the process

    def _start(self) -> dict[str, Any]:
        # a runner worker leads its group: the child stays in it, so retiring the worker kills it
        self._own_group = os.getpgrp() != os.getpid()
        self._owner = os.getpid()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0,
                                         cwd=self.cwd, start_new_session=self._own_group,
                                         preexec_fn=_die_with_parent)
        except OSError as exc:
            raise ExecStartError(f"cannot start {shlex.join(self.argv)!r}: {exc}") from None
        _widen(self.proc.stdin, self.proc.stdout)
        timeout = float(os.environ.get(STARTUP_TIMEOUT_VARIABLE, "60"))
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        try:
            if not ready:
                raise ExecStartError(f"{shlex.join(self.argv)!r} sent no hello within {timeout:g} s "
                                     f"({STARTUP_TIMEOUT_VARIABLE})")
            return check_hello(read_frame(self.proc.stdout))
        except EOFError:
            code = self.proc.wait()
            self.proc = None
            raise ExecStartError(f"{shlex.join(self.argv)!r} ended ({_status(code)}) before its hello "
                                 "(its stderr is in the worker's output)") from None
        except ProtocolError as exc:
            self.close()
            raise ExecStartError(str(exc)) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End the process: close its stdin (it should exit), then kill it, and its process group
        when it leads its own."""
        proc, self.proc = self.proc, None
        if proc is None or os.getpid() != self._owner:
            return  # a forked copy of this object: the process belongs to the one that started it
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self._own_group:
                os.killpg(proc.pid, signal.SIGKILL)  # with anything it started
            elif proc.poll() is None:
                proc.kill()  # the rest of the worker's group goes when the runner retires the worker
        with contextlib.suppress(Exception):
            proc.wait(5)
        with contextlib.suppress(OSError):
            proc.stdout.close()

    def _died(self, method: str, why: BaseException) -> None:
        """The process ended inside a call: end this process the same way (runner: ``crash``)."""
        code = self.proc.wait()  # it closed its stdout; a process that lingers is the runner's timeout
        sys.stderr.write(f"[exec] {shlex.join(self.argv)!r} ended ({_status(code)}) during {method}: {why}\n")
        sys.stderr.flush()
        if code < 0:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
            os._exit(128 - code)
        os._exit(code)

    def _call(self, method: str, spec: Any, arrays: Mapping[str, np.ndarray], weights: Sequence[str] = (),
              args: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
        if self.proc is None:
            self._start()  # the previous process broke the protocol: a fresh one
        self._id += 1
        header = {"id": self._id, "method": method, "spec": spec, "weights": list(weights), "args": dict(args or {})}
        try:
            write_frame(self.proc.stdin, header, arrays)
            frame = read_frame(self.proc.stdout)
            return check_response(frame, self._id, method)
        except (BrokenPipeError, EOFError) as exc:
            self._died(method, exc)
            raise
        except ProtocolError:
            self.close()
            raise

    # ------------------------------------------------------------------ the adapter contract

    def versions(self) -> dict[str, str]:
        """The versions the hello gave."""
        return dict(self._versions)

    def environment(self) -> dict[str, str]:
        """The hello's environment facts, the command and the protocol version."""
        return {**self._environment, "exec_command": shlex.join(self.argv), "exec_protocol": PROTOCOL}

    def forward(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._call("forward", spec, {"inputs": inputs, **weights}, weights)["output"]

    def vjp(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        return self._call("vjp", spec, {"inputs": inputs, **weights, "output_grad": output_grad}, weights)

    def initialize(self, spec: dict, input_shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
        return self._call("initialize", spec, {}, (), {"input_shape": [int(d) for d in input_shape],
                                                       "seed": int(seed)})

    def regularization(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray]) -> dict[str, float]:
        out = self._call("regularization", spec, {"inputs": inputs, **weights}, weights)
        return {k: float(v) if v.shape == () else v for k, v in out.items()}

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call("regularization_vjp", spec, {"inputs": inputs, **weights}, weights)

    def constrain(self, spec: dict, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call("constrain", spec, dict(weights), weights)


def exec_adapter(target: str) -> ExecAdapter:
    """The adapter of an ``exec:COMMAND`` target."""
    return ExecAdapter(target[len(PREFIX):])


# ---------------------------------------------------------------------- named exec adapters

def _tfjs_client() -> Path:
    """clients/tfjs/client.js of the source checkout (npm ci installs its packages there)."""
    root = Path(__file__).resolve().parents[2]
    client = root / "clients" / "tfjs" / "client.js"
    if not (client.parent / "node_modules").is_dir():
        raise ExecStartError(f"the TensorFlow.js client needs its packages: run `npm ci` in {client.parent} "
                             "(docs/exec-protocol.md)")
    return client


def TfjsAdapter() -> ExecAdapter:  # noqa: N802 - a factory registered as an adapter name
    """TensorFlow.js, Keras layer API (tf.layers), pure-JS CPU backend, under Node."""
    return ExecAdapter(["node", str(_tfjs_client()), "--backend", "cpu"])


def TfjsWasmAdapter() -> ExecAdapter:  # noqa: N802 - a factory registered as an adapter name
    """TensorFlow.js, Keras layer API (tf.layers), WebAssembly backend, under Node."""
    return ExecAdapter(["node", str(_tfjs_client()), "--backend", "wasm"])

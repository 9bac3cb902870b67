"""The results an adapter returned for a case, kept so that a third party can re-score them.

A worker scoring with ``ScoringOptions.results`` set wraps the adapter in a :class:`Recorder`:
every call scoring makes (``forward``, ``vjp``, ``regularization``, ``regularization_vjp``,
``constrain``; the rechecks and repeats included) is logged with what it returned or raised,
and the log is written to ``DIR/<case id>.npz`` (:func:`write`, ``np.savez_compressed``). A
:class:`Replay` plays such a log back as an adapter, so that
:func:`conformance.scoring.evaluate` re-scores a case from its stored results alone, through the
same comparison routine and the same verdict rules as the run (``verify`` does this).

What is not kept: the ``initialize`` draws (the initializer category's statistical tests need
tens of thousands of values per weight, far beyond a bundle's size budget). A replay declines
to give them (:class:`NotKept`), so the initializer category can be checked only by re-running
the adapter (``verify --rerun``).

A log records, per call, the value returned (arrays, dicts of arrays, scalars, lists, or the
type of anything else), or the exception raised, and whether the call wrote into an array it
was passed (the written array is kept) or returned a view of one, so that a replay reproduces
the ``mutation`` verdict as well.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import Unsupported

__all__ = ["FORMAT", "KEPT", "NOT_KEPT", "Recorder", "Replay", "NotKept", "ResultsError", "write", "read",
           "path_for", "sha256_file", "recorder_for", "arrays_of"]

FORMAT = 1
#: Adapter methods whose calls are logged and replayed.
KEPT = ("forward", "vjp", "regularization", "regularization_vjp", "constrain")
#: Methods whose results are not kept (see the module docstring).
NOT_KEPT = ("initialize",)
_LOG = "__log__"


class ResultsError(ValueError):
    """A results file that is missing, unreadable, truncated or not the case it should be."""


class NotKept(Exception):
    """Raised by a replay for a call whose results a bundle does not keep."""


class _Raised(RuntimeError):
    """Raised by a replay where the adapter raised something other than Unsupported."""


def path_for(directory: str | os.PathLike, case_id: str) -> Path:
    return Path(directory) / f"{case_id}.npz"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ encoding values

def _store_array(arrays: dict[str, np.ndarray], value: Any) -> dict:
    arr = np.array(value, copy=True)
    key = f"a{len(arrays)}"
    if arr.dtype.kind == "V" or arr.dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        arrays[key] = arr.view(f"u{arr.dtype.itemsize}")  # ml_dtypes types have no .npy descr
        return {"array": key, "dtype": arr.dtype.name}
    arrays[key] = arr
    return {"array": key}


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> dict:
    if value is None:
        return {"none": True}
    if isinstance(value, Mapping):
        return {"dict": {str(k): _encode(v, arrays) for k, v in value.items()}}
    if isinstance(value, (bool, int, float, np.generic)) and np.ndim(value) == 0:
        # a Python scalar is not an array to compare.score, a NumPy scalar is: keep which
        return _store_array(arrays, value) | {"scalar": "numpy" if isinstance(value, np.generic) else type(value).__name__}
    if isinstance(value, list):
        try:
            return _store_array(arrays, value) | {"list": True}
        except (ValueError, TypeError):
            return {"opaque": "list"}
    if isinstance(value, np.ma.MaskedArray):
        return {"opaque": "MaskedArray"}
    if isinstance(value, np.ndarray) or hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
        try:
            arr = np.asarray(value)
        except Exception:  # noqa: BLE001 - an __array__ that raises is not comparable either way
            return {"opaque": type(value).__name__}
        if arr.dtype.kind == "O":
            return {"opaque": "object array"}
        return _store_array(arrays, arr)
    return {"opaque": type(value).__name__}


def _decode(entry: Mapping, arrays: Mapping[str, np.ndarray]) -> Any:
    if "none" in entry:
        return None
    if "dict" in entry:
        return {k: _decode(v, arrays) for k, v in entry["dict"].items()}
    if "opaque" in entry:
        return _Opaque(entry["opaque"])
    arr = np.array(arrays[entry["array"]])
    if "dtype" in entry:
        import ml_dtypes

        arr = arr.view(getattr(ml_dtypes, entry["dtype"]))
    if "list" in entry:
        return arr.tolist()
    scalar = entry.get("scalar")
    if scalar == "numpy":
        return arr[()]
    if scalar is not None:
        return {"bool": bool, "int": int}.get(scalar, float)(arr.item())
    return arr


def _harness_exception(name: str | None, text: str) -> Exception:
    """The exception to replay: the suite's own class when the adapter raised one (scoring treats
    some apart, such as an exec-protocol violation), else a RuntimeError; never an adapter's class,
    whose module a verifier need not have, nor import."""
    module, _, qualname = (name or "").partition(":")
    if module.startswith("conv_conformance.") and "." not in qualname:
        try:
            cls = getattr(importlib.import_module(module), qualname)
            if isinstance(cls, type) and issubclass(cls, Exception):
                exc = cls.__new__(cls)  # its own __init__ may want more than the text
                Exception.__init__(exc, text)
                return exc
        except Exception:  # noqa: BLE001 - a class that will not rebuild replays as a plain error
            pass
    return _Raised(text)


class _Opaque:
    """Stands for a returned value that is neither an array nor a container of arrays."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _passed(args: tuple) -> dict[str, np.ndarray]:
    """The arrays a call was passed, by path: ``a0`` for a positional array, ``a2['kernel']``."""
    out = {}
    for i, arg in enumerate(args):
        if isinstance(arg, np.ndarray):
            out[f"a{i}"] = arg
        elif isinstance(arg, Mapping):
            out.update({f"a{i}[{k!r}]": v for k, v in arg.items() if isinstance(v, np.ndarray)})
    return out


# ------------------------------------------------------------------ recording

class Recorder:
    """An adapter that forwards every call to ``adapter`` and logs the kept ones (:data:`KEPT`).

    ``start()`` begins the log of a new case; ``log`` is the list of calls since then.
    """

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter
        self.log: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}

    def start(self) -> None:
        self.log, self.arrays = [], {}

    def methods(self) -> list[str]:
        """The kept methods the adapter has (a replay has exactly these)."""
        return [m for m in KEPT if getattr(self._adapter, m, None) is not None]

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._adapter, name)
        if name not in KEPT or value is None:
            return value
        return lambda *args: self._call(name, value, args)

    def _call(self, name: str, fn: Any, args: tuple) -> Any:
        passed = _passed(args)
        before = {k: np.array(v, copy=True) for k, v in passed.items()}
        entry: dict[str, Any] = {"method": name}
        self.log.append(entry)
        try:
            value = fn(*args)
        except Exception as exc:
            entry["raise"] = {"unsupported": isinstance(exc, Unsupported), "type": type(exc).__name__,
                              "class": f"{type(exc).__module__}:{type(exc).__qualname__}", "message": str(exc)[:2000]}
            raise
        finally:
            mutated = {k: _store_array(self.arrays, v)
                       for k, v in passed.items() if v.tobytes() != before[k].tobytes()}
            if mutated:
                entry["mutated"] = mutated
        try:
            entry["value"] = _encode(value, self.arrays)
        except Exception as exc:  # noqa: BLE001 - a value that cannot be kept must not change the scoring
            entry["value"] = {"opaque": f"{type(value).__name__} ({type(exc).__name__})"}
        values = value.items() if isinstance(value, Mapping) else [(None, value)]
        aliases = {("" if key is None else str(key)): path for key, v in values if isinstance(v, np.ndarray)
                   for path, arr in passed.items() if np.shares_memory(v, arr)}
        if aliases:
            entry["aliases"] = aliases
        return value


_RECORDER: list[Recorder] = []


def recorder_for(adapter: Any) -> Recorder:
    """The one Recorder of ``adapter`` in this process (kept, so that per-adapter caches keyed on
    the adapter object, such as its parsed declaration, stay hits), its log emptied."""
    if not _RECORDER or _RECORDER[0]._adapter is not adapter:
        _RECORDER[:] = [Recorder(adapter)]
    _RECORDER[0].start()
    return _RECORDER[0]


def write(directory: str | os.PathLike, case_id: str, dtype: str, recorder: Recorder) -> Path:
    """Write ``recorder``'s log of case ``case_id`` to ``DIR/<case id>.npz`` (atomically)."""
    head = {"format": FORMAT, "case": case_id, "dtype": dtype, "methods": recorder.methods(),
            "calls": recorder.log}
    path = path_for(directory, case_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **{_LOG: np.frombuffer(json.dumps(head, sort_keys=True).encode(), np.uint8)},
                            **recorder.arrays)
    os.replace(tmp, path)
    return path


def read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(log header, arrays) of a results file; ResultsError naming what is wrong."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ResultsError(f"results file {path} is unreadable or truncated: {type(exc).__name__}: {exc}") from None
    try:
        head = json.loads(arrays.pop(_LOG).tobytes())
    except (KeyError, ValueError) as exc:
        raise ResultsError(f"results file {path} has no call log: {exc}") from None
    if head.get("format") != FORMAT:
        raise ResultsError(f"results file {path} has format {head.get('format')!r}; this suite reads {FORMAT}")
    return head, arrays


def arrays_of(head: Mapping, arrays: Mapping[str, np.ndarray]) -> list[tuple[str, Any]]:
    """Every call's returned value, decoded, as (method, value) in call order (raises: None)."""
    return [(c["method"], None if "raise" in c else _decode(c["value"], arrays)) for c in head["calls"]]


# ------------------------------------------------------------------ replaying

class Replay:
    """An adapter that returns, call by call, what a results log recorded.

    It has exactly the methods the recorded adapter had, and ``declaration`` (given: the
    bundle's). A call beyond the log, or of another method than the log's next one, raises
    ResultsError: scoring then made other calls than it did in the run.
    """

    def __init__(self, head: Mapping, arrays: Mapping[str, np.ndarray], declaration: Any = None) -> None:
        self.declaration = declaration
        self.load(head, arrays)

    def load(self, head: Mapping, arrays: Mapping[str, np.ndarray]) -> None:
        """Play another case's log from its start (one Replay serves many cases, so that the
        per-adapter caches of scoring keep one entry)."""
        self._calls = list(head["calls"])
        self._arrays = arrays
        self._methods = set(head["methods"])
        self.position = 0
        self.not_kept: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in NOT_KEPT:
            return self._not_kept(name)
        if name in KEPT:
            return (lambda *args: self._play(name, args)) if name in self._methods else None
        raise AttributeError(name)

    def _not_kept(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            self.not_kept.add(name)
            raise NotKept(f"{name}: a bundle does not keep these results")
        return call

    def _play(self, name: str, args: tuple) -> Any:
        if self.position >= len(self._calls):
            raise ResultsError(f"scoring made a call to {name} that the results log does not hold "
                               f"(it holds {len(self._calls)} calls)")
        entry = self._calls[self.position]
        if entry["method"] != name:
            raise ResultsError(f"call {self.position} is {name}, but the results log holds {entry['method']}")
        self.position += 1
        passed = _passed(args)
        for path, stored in (entry.get("mutated") or {}).items():
            if path in passed:
                np.copyto(passed[path], _decode(stored, self._arrays), casting="unsafe")
        if "raise" in entry:
            raised = entry["raise"]
            text = f"{raised['type']}: {raised['message']}"
            raise Unsupported(text) if raised["unsupported"] else _harness_exception(raised.get("class"), text)
        value = _decode(entry["value"], self._arrays)
        for key, path in (entry.get("aliases") or {}).items():
            if path in passed:
                if key == "":
                    return passed[path]
                value[key] = passed[path]
        return value

    @property
    def exhausted(self) -> bool:
        """Whether every logged call was replayed."""
        return self.position == len(self._calls)

"""``conv-conformance score``: results an implementation wrote offline, scored as a live run.

The implementation reads an exported case set (``conv-conformance export``, oracle/export.py)
and writes, per case, a directory of results (docs/exec-protocol.md, "Scoring results written
offline")::

    RESULTS/implementation.json           optional: name, versions, environment, declaration
    RESULTS/<case id>/result.json         {"forward": {"status": "ok"}, "vjp": {...}}
    RESULTS/<case id>/output.npy          forward's output
    RESULTS/<case id>/gradient.<name>.npy vjp's gradients: inputs and each weight

:class:`Replay` is an adapter that answers each call from those files, and every case is scored
by :meth:`conformance.session.Session.score`, so a result gets exactly the verdict a live adapter
returning the same values would. A file that breaks the layout (R1 to R5 below) raises
ProtocolError: ``error``, naming the rule. Nothing in RESULTS is trusted: only the files the
layout names are opened, links and non-regular files are refused, JSON files are bounded, an
array's size is read from its header and checked before any data is read, and nothing is
written anywhere but OUT.

* R1: ``<case id>/result.json`` exists, is a regular file (not a link), at most 1 MiB of JSON.
* R2: each entry (``forward``, ``vjp``) has a ``status`` of ok, unsupported (with a string
  ``reason``) or error (with a string ``message``).
* R3: an ok forward has ``output.npy``; an ok vjp its ``gradient.<name>.npy`` files.
* R4: every ``.npy`` is a regular file with a readable header, no pickle, within
  ``max_elements`` elements and as long as its header says.
* R5: ``implementation.json``, if present, is a bounded JSON object (name, versions,
  environment, declaration).
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import Unsupported
from .environment import detect
from .exec_protocol import ImplementationError, ProtocolError
from .levels import declaration_of
from .record import CaseResult
from .registry import AdapterInfo
from .report import ReportWriter
from .session import RunConfig, Session

__all__ = ["Replay", "score", "MAX_JSON_BYTES", "IMPLEMENTATION_FILE"]

MAX_JSON_BYTES = 1 << 20
IMPLEMENTATION_FILE = "implementation.json"
_LAYOUT = "offline results"


def _regular(path: Path, rule: str) -> os.stat_result | None:
    """lstat of ``path`` if it is a regular file (None when absent); a link, a directory, a FIFO
    or a device breaks ``rule``."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProtocolError(rule, f"cannot read {path.name}: {exc}", _LAYOUT) from None
    if not stat.S_ISREG(info.st_mode):
        raise ProtocolError(rule, f"{path.name} must be a regular file (not a link, directory or device)", _LAYOUT)
    return info


def _json(path: Path, rule: str) -> Any:
    info = _regular(path, rule)
    if info is None:
        return None
    if info.st_size > MAX_JSON_BYTES:
        raise ProtocolError(rule, f"{path.name} holds {info.st_size} bytes; at most {MAX_JSON_BYTES}", _LAYOUT)
    try:
        with open(path, "rb", opener=_no_follow) as f:
            return json.loads(f.read(MAX_JSON_BYTES + 1).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(rule, f"{path.name} is not JSON: {exc}"[:300], _LAYOUT) from None


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))


def _npy(path: Path, max_elements: int) -> np.ndarray:
    """The array of a results ``.npy`` file, its size checked against its header first (R4)."""
    info = _regular(path, "R4")
    if info is None:
        raise ProtocolError("R3", f"{path.parent.name}/{path.name} is missing", _LAYOUT)
    try:
        with open(path, "rb", opener=_no_follow) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported .npy version {version}")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject:
                raise ValueError("object arrays (pickle) are refused")
            count = math.prod(shape)
            if count > max_elements:
                raise ValueError(f"{count} elements exceed the limit of {max_elements}")
            if info.st_size != f.tell() + count * dtype.itemsize:
                raise ValueError(f"the file holds {info.st_size - f.tell()} data bytes; its header says "
                                 f"{count * dtype.itemsize}")
            data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    except (OSError, ValueError, SyntaxError, TypeError) as exc:
        raise ProtocolError("R4", f"{path.parent.name}/{path.name}: {exc}"[:400], _LAYOUT) from None
    return data.reshape(shape, order="F" if fortran else "C").copy()


def _entry(result: Mapping[str, Any], method: str, case_id: str) -> Mapping[str, Any] | None:
    entry = result.get(method)
    if entry is None:
        return None
    status = entry.get("status") if isinstance(entry, Mapping) else None
    if status == "ok":
        return entry
    if status == "unsupported" and isinstance(entry.get("reason"), str):
        raise Unsupported(entry["reason"])
    if status == "error" and isinstance(entry.get("message"), str):
        raise ImplementationError(entry["message"])
    raise ProtocolError("R2", f"{case_id}/result.json: `{method}` must be {{\"status\": \"ok\"}}, "
                              f"{{\"status\": \"unsupported\", \"reason\": ...}} or "
                              f"{{\"status\": \"error\", \"message\": ...}}; received {entry!r}"[:400], _LAYOUT)


class Replay:
    """An adapter answering each call with the results stored for the case :meth:`bind` names."""

    def __init__(self, results: str | os.PathLike, *, max_elements: int) -> None:
        self.root = Path(results)
        self.max_elements = max_elements
        about = _json(self.root / IMPLEMENTATION_FILE, "R5") or {}
        if not isinstance(about, dict):
            raise ProtocolError("R5", f"{IMPLEMENTATION_FILE} must be a JSON object", _LAYOUT)
        self.name = str(about.get("name") or "offline")
        self._versions = {str(k): str(v) for k, v in dict(about.get("versions") or {}).items()}
        self._environment = {str(k): str(v) for k, v in dict(about.get("environment") or {}).items()}
        self.declaration = about.get("declaration")
        self._case: Any = None
        self._gradients: Sequence[str] = ()

    def bind(self, case: Any, gradients: Sequence[str]) -> None:
        """Answer the next calls for ``case``, whose vjp returns ``gradients`` (names)."""
        self._case, self._gradients = case, tuple(gradients)

    def versions(self) -> dict[str, str]:
        return dict(self._versions)

    def environment(self) -> dict[str, str]:
        return {**self._environment, "offline_results": str(self.root)}

    def _result(self) -> Mapping[str, Any]:
        # a case id is <Layer>-<12 hex digits> (oracle.corpus checked it): a safe directory name
        folder = self.root / self._case.id
        if folder.is_symlink():
            raise ProtocolError("R1", f"{self._case.id} is a link; results must be plain directories", _LAYOUT)
        result = _json(folder / "result.json", "R1")
        if result is None:
            raise ProtocolError("R1", f"no results for case {self._case.id} ({self._case.id}/result.json)", _LAYOUT)
        if not isinstance(result, dict):
            raise ProtocolError("R1", f"{self._case.id}/result.json must be a JSON object", _LAYOUT)
        return result

    def forward(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        if _entry(self._result(), "forward", self._case.id) is None:
            raise ProtocolError("R2", f"{self._case.id}/result.json has no `forward` entry", _LAYOUT)
        return _npy(self.root / self._case.id / "output.npy", self.max_elements)

    def vjp(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        if _entry(self._result(), "vjp", self._case.id) is None:
            raise Unsupported("no `vjp` entry in result.json: the gradients were not computed")
        folder = self.root / self._case.id
        return {name: _npy(folder / f"gradient.{name}.npy", self.max_elements) for name in self._gradients
                if _regular(folder / f"gradient.{name}.npy", "R4") is not None}


def score(cases: Sequence[Any], arrays: Sequence[Any], results: str | os.PathLike, out: str | os.PathLike, *,
          meta: Callable[[Session], dict[str, Any]], tolerance: str, dtype: str, waivers: Any = None,
          max_elements: int, on_result: Callable[[CaseResult], None] | None = None) -> dict[str, Any]:
    """Score ``cases`` (with their re-derived ``arrays``) against the results in ``results``;
    write ``out/report.json`` and return its summary. ``meta(session)`` gives the report's
    top-level fields (the corpus's profile and id, as ``run --cases`` names them)."""
    root = Path(results)
    if not root.is_dir() or root.is_symlink():
        raise ProtocolError("R1", f"{results} is not a directory", _LAYOUT)
    replay = Replay(root, max_elements=max_elements)
    session = Session(RunConfig(f"offline:{root}", dtype=dtype, tolerance=tolerance), cases, arrays=arrays,
                      waivers=waivers)
    writer = ReportWriter(out, meta(session))
    info = AdapterInfo(replay.name, f"offline:{root}", replay.versions(), None, detect(replay.environment()),
                       None)
    declared = declaration_of(replay)
    info.declaration = declared.to_json() if declared is not None else None
    session.bind(info, writer)
    for index, (case, m) in enumerate(zip(cases, arrays)):
        replay.bind(case, sorted(m.expected_gradients or {}))
        result = session.score(replay, case, m)
        writer.add(index, result)
        if on_result is not None:
            on_result(result)
    return session.finish(writer, interrupted=False)

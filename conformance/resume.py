"""Taking up a run that was killed or interrupted: ``conv-conformance run --resume DIR``.

A run writes ``DIR/run.json`` (its options, and the adapter and environment once a worker
has loaded the adapter) before it scores anything, and streams each case record to
``DIR/report.partial.jsonl`` as it arrives (:class:`conformance.report.ReportWriter`). A
SIGKILL at any moment leaves at most the last line cut short. Resuming reads the records
back (dropping a cut line), scores only the cases that have none, and writes the same
``report.json`` an uninterrupted run writes, apart from timestamps and timings.

While the old records are copied into the new partial file they are also kept in
``DIR/report.partial.resumed.jsonl``, so a kill during the resume itself loses nothing:
the next resume reads both files.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from .record import CaseResult

__all__ = ["RUN_FILE", "ResumeError", "save_run", "load_run", "restore", "release"]

RUN_FILE = "run.json"
PARTIAL = "report.partial.jsonl"
BACKUP = "report.partial.resumed.jsonl"


class ResumeError(ValueError):
    """A directory that holds no run to resume, or a run file that is not one."""


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_run(directory: str | os.PathLike, run: dict[str, Any]) -> None:
    """Write ``DIR/run.json`` atomically: the options ``run --resume`` restores."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    _atomic_write(path / RUN_FILE, json.dumps(run, indent=1, sort_keys=True) + "\n")


def load_run(directory: str | os.PathLike) -> dict[str, Any]:
    """The options a run in ``directory`` was started with; ResumeError if there is none."""
    path = Path(directory) / RUN_FILE
    if not path.is_file():
        raise ResumeError(f"Argument `--resume`: {directory} holds no run to resume (no {RUN_FILE}; "
                          "it is written when a run starts)")
    try:
        run = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResumeError(f"Argument `--resume`: {path} is not readable JSON ({exc})") from exc
    if not isinstance(run, dict) or not isinstance(run.get("options"), dict) \
            or not isinstance(run["options"].get("adapter"), str):
        raise ResumeError(f"Argument `--resume`: {path} is not a run file (no options.adapter)")
    return run


def _records(path: Path) -> list[dict]:
    """The complete JSON records of a partial file; a line cut short (or garbled) is dropped."""
    if not path.is_file():
        return []
    out = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # the write a kill interrupted
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and isinstance(record.get("id"), str):
                out.append(record)
    return out


def restore(directory: str | os.PathLike, cases: Sequence[Any]) -> dict[int, CaseResult]:
    """The finished cases of the run in ``directory``, by index into ``cases``.

    Moves the records into ``report.partial.resumed.jsonl`` (kept until :func:`release`), so
    the caller's new ReportWriter can start its partial file afresh and add them again.
    """
    path = Path(directory)
    index_of = {c.id: i for i, c in enumerate(cases)}
    done: dict[int, CaseResult] = {}
    lines = []
    for record in _records(path / BACKUP) + _records(path / PARTIAL):
        index = index_of.get(record["id"])
        if index is not None and index not in done:
            done[index] = CaseResult.from_json(record)
            lines.append(json.dumps(record, allow_nan=False) + "\n")
    _atomic_write(path / BACKUP, "".join(lines))
    with_partial = path / PARTIAL
    if with_partial.exists():
        with_partial.unlink()
    return done


def release(directory: str | os.PathLike) -> None:
    """Drop the copy :func:`restore` kept, once the new partial file holds every record."""
    (Path(directory) / BACKUP).unlink(missing_ok=True)

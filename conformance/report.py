"""Building report.json (schema: ``reports/schema.json``, schema_version 1).

:class:`ReportWriter` streams each case record to ``DIR/report.partial.jsonl``
the moment it arrives (so nothing computed is lost if the run dies), keeps
only counters in memory, and at the end writes ``DIR/report.json`` with the
cases in case-set order (atomically: a temporary file renamed over it), then
removes the partial file unless the run was interrupted (``run --resume`` reads it). JSON has no
Infinity/NaN, so every non-finite number is written as the string "inf",
"-inf" or "nan".
"""
from __future__ import annotations

import json
import math
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from conv_conformance.vocabulary import CATEGORIES, FAILING, VERDICTS

from . import findings
from .environment import detect
from .levels import LevelTally, conformant
from .record import CaseResult

__all__ = ["SCHEMA_VERSION", "ReportWriter", "jsonable", "platform_info", "utc_now", "suite_version",
           "default_meta"]

SCHEMA_VERSION = 1


def utc_now() -> str:
    """The current time, ISO 8601 in UTC with a Z suffix."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def platform_info() -> dict[str, str]:
    """Python version, operating system and machine of this process."""
    return {"python": platform.python_version(), "system": platform.system(),
            "machine": platform.machine()}


def suite_version() -> str:
    """The installed conv-conformance version."""
    from importlib import metadata

    try:
        return metadata.version("conv-conformance")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def jsonable(obj: Any, *, nonfinite_as_strings: bool = True) -> Any:
    """``obj`` with NumPy scalars/arrays made plain and, unless ``nonfinite_as_strings`` is
    False, non-finite floats as "inf", "-inf", "nan"."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, nonfinite_as_strings=nonfinite_as_strings) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nonfinite_as_strings=nonfinite_as_strings) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), nonfinite_as_strings=nonfinite_as_strings)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if nonfinite_as_strings and isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def _counts() -> dict[str, int]:
    return {v: 0 for v in VERDICTS}


class ReportWriter:
    """Accumulates case results into ``directory/report.json``.

    ``meta`` holds the run's top-level fields (profile, dtype, adapter, ...);
    :meth:`add` streams one result to disk; :meth:`finish` writes the report.
    Memory stays constant in the number of cases apart from one file offset
    per case.
    """

    def __init__(self, directory: str | os.PathLike, meta: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "report.json"
        self.partial_path = self.directory / "report.partial.jsonl"
        self.meta = dict(meta)
        self.counts = _counts()
        self.by_category = {c: _counts() for c in CATEGORIES}
        self.worst_ratio: dict[str, float | None] = {"output": None, "gradient": None}
        self._offsets: dict[int, int] = {}
        self._levels: LevelTally | None = None
        #: more summary fields, e.g. ``waivers`` (conformance.waivers.WaiverSet.summary)
        self.summary_extra: dict[str, Any] = {}
        #: mark failing cases with the known findings that explain them (conformance.findings)
        self.findings = True
        self._stream = open(self.partial_path, "w", encoding="utf-8")

    @property
    def cases(self) -> int:
        return len(self._offsets)

    def add(self, index: int, result: CaseResult) -> None:
        """Record the result of case number ``index`` (its position in the case set)."""
        self.counts[result.verdict] += 1
        for category, verdict in result.verdicts.items():
            self.by_category[category][verdict] += 1
        for category, ratio in result.worst_ratio.items():
            best = self.worst_ratio.get(category)
            if ratio is not None and (best is None or not ratio <= best):
                self.worst_ratio[category] = ratio
        precision = getattr(result, "precision", None)
        if precision is not None:  # per adapter: the fewest bits seen (conformance.precision)
            tally = self.summary_extra.setdefault("precision", {"cases": 0, "short": 0, "min_bits": None})
            tally["cases"] += 1
            tally["short"] += bool(precision["short"])
            bits = precision["bits"]
            if bits is not None and (tally["min_bits"] is None or bits < tally["min_bits"]):
                tally["min_bits"] = bits
            if precision.get("worst_u") is not None:  # the error against the output's own rounding
                medians = self.__dict__.setdefault("_median_u", [])
                medians.append(precision["median_u"])
                tally["median_u"] = round(float(np.median(medians)), 3)
                tally["worst_u"] = max(tally.get("worst_u", 0.0), precision["worst_u"])
                if precision.get("bits_lost") is not None:
                    tally["max_bits_lost"] = max(tally.get("max_bits_lost", 0.0), precision["bits_lost"])
        self._offsets[index] = self._stream.tell()
        record = result.to_json()
        self.level_tally.add(record)
        self._stream.write(json.dumps(jsonable(record), allow_nan=False) + "\n")
        self._stream.flush()

    @property
    def level_tally(self) -> LevelTally:
        """Per-layer levels and coverage (conformance.levels), under ``meta["adapter"]["declaration"]``."""
        if self._levels is None:
            self._levels = LevelTally((self.meta.get("adapter") or {}).get("declaration"))
        return self._levels

    def summary(self, *, interrupted: bool = False) -> dict[str, Any]:
        """The report's ``summary``: conformant when complete, no case is fail/error/timeout/crash and
        no layer is not_conformant (conformance.levels.conformant); ``levels`` per layer and
        ``coverage``, overall and per category (conformance.levels)."""
        failing = sum(self.counts[v] for v in FAILING)
        levels = self.level_tally.levels()
        return {"conformant": conformant(levels, failing=failing, interrupted=interrupted), "cases": self.cases,
                "counts": dict(self.counts),
                "by_category": {c: dict(n) for c, n in self.by_category.items()},
                "worst_ratio": jsonable(self.worst_ratio),
                "coverage": self.level_tally.coverage(), "levels": levels,
                **self.summary_extra}

    def _findings_matcher(self) -> Any:
        """The catalogue of known findings bound to this run's adapter, versions, environment and
        dtype (conformance.findings), or None when ``self.findings`` is off or no adapter is recorded."""
        adapter = self.meta.get("adapter") or {}
        if not self.findings or not adapter.get("name"):
            return None
        return findings.Matcher(findings.load(), adapter, self.meta.get("environment") or {}, self.meta.get("dtype", "float32"))

    def finish(self, *, interrupted: bool = False) -> dict[str, Any]:
        """Write report.json (cases in case-set order) and return its summary. Each failing case
        carries the ids of the known findings that explain it (``findings``) or ``new``; the
        summary's ``findings`` counts them (conformance.findings); no verdict changes."""
        self._stream.close()
        try:  # a first pass counts the known and new failures for the summary
            matcher = self._findings_matcher()
            if matcher is not None:
                with open(self.partial_path, encoding="utf-8") as src:
                    for index in sorted(self._offsets):
                        src.seek(self._offsets[index])
                        matcher.annotate(json.loads(src.readline()))
                self.summary_extra["findings"] = matcher.summary()
        except Exception:  # noqa: BLE001 - a broken catalogue must not cost the report: written unannotated
            matcher = None
            self.summary_extra.pop("findings", None)
        head = {"schema_version": SCHEMA_VERSION, **self.meta, "finished": utc_now(),
                "interrupted": interrupted, "summary": self.summary(interrupted=interrupted)}
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as out, open(self.partial_path, encoding="utf-8") as src:
            text = json.dumps(jsonable(head), indent=1, allow_nan=False)
            out.write(text[:-2] + ',\n "cases": [')  # text ends with "\n}"
            for n, index in enumerate(sorted(self._offsets)):
                src.seek(self._offsets[index])
                line = src.readline().rstrip("\n")
                if matcher is not None:
                    line = json.dumps(matcher.annotate(json.loads(line), count=False), allow_nan=False)
                out.write(("\n  " if n == 0 else ",\n  ") + line)
            out.write("\n ]\n}\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)  # atomic: report.json is the old file or the whole new one
        if not interrupted:  # an interrupted run keeps it for `run --resume`
            self.partial_path.unlink()
        return head["summary"]

    def __enter__(self) -> "ReportWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self._stream.closed:
            self._stream.close()


def default_meta(*, corpus_id: str, profile: str, dtype: str, adapter: dict, jobs: int,
                 timeout: float, started: str | None = None, threads_per_job: int | None = 1,
                 repeat: int = 0) -> dict[str, Any]:
    """Top-level report fields apart from summary, cases and finished. ``environment``
    starts as this process's (conformance.environment.detect); the run replaces it with
    the adapter worker's once the adapter has loaded."""
    return {"suite_version": suite_version(), "corpus_id": corpus_id, "profile": profile,
            "dtype": dtype, "adapter": adapter, "platform": platform_info(), "environment": detect(),
            "started": started or utc_now(), "jobs": jobs, "timeout": timeout,
            "threads_per_job": threads_per_job, "repeat": repeat}


"""One session: the only loop that turns cases into records.

A :class:`RunConfig` holds everything a run depends on (the adapter, the dtype, the tolerance
mode, repeat, timeouts, workers, waivers); a :class:`Session` runs a case set under it. ``run``,
``certify``, ``explore`` and the pytest plugin all score through it, so one case gets one
record whichever front end asks:

* :meth:`Session.run` scores cases in isolated worker processes (conformance.runner) and
  streams each record, with its waiver applied, into a report (conformance.report);
* :meth:`Session.score` scores one case in this process, as a pytest item or an in-process
  ``explore`` does; both paths end in :func:`conformance.scoring.evaluate`;
* :meth:`Session.meta` gives the report's top-level fields, the tolerance mode among them.

Bad input from a user (an unknown layer, an unreadable waiver file) raises
:class:`UsageError`, which every front end turns into its own usage error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Sequence

from conv_conformance import reference
from conv_conformance.vocabulary import DEFAULT_TOLERANCE

from .record import CaseResult
from .registry import AdapterInfo, resolve
from .report import ReportWriter, default_meta, suite_version, utc_now
from .runner import Isolated, WorkerStartError, Workers, run, start
from .scoring import ScoringOptions, evaluate
from .waivers import WaiverError, WaiverSet, load

__all__ = ["UsageError", "RunConfig", "Session", "Outcome", "check_layers", "load_waivers"]


class UsageError(ValueError):
    """An argument names something that does not exist or is malformed; the message names the
    argument, the rule and the value received."""


def check_layers(layers: Sequence[str] | None) -> list[str] | None:
    """``layers`` as a list if every name is a layer the suite covers; else UsageError listing them."""
    if layers is None:
        return None
    layers = list(layers)
    unknown = [name for name in layers if name not in reference.LAYERS]
    if unknown or not layers:
        raise UsageError(f"Argument `--layers` must name layers among {', '.join(sorted(reference.LAYERS))}. "
                         f"Received: {', '.join(unknown) or '(empty)'}")
    return layers


def load_waivers(path: str | None) -> WaiverSet | None:
    """The WaiverSet of a waiver file (None without one); a bad file is a UsageError."""
    if path is None:
        return None
    try:
        return WaiverSet(load(path, suite_version()))
    except WaiverError as exc:
        raise UsageError(f"Argument `--waivers`: {exc}") from exc


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on besides its cases.

    ``adapter`` is a registered name or ``module:attr``; ``memory_limit`` is in bytes (None:
    none); ``cases_per_worker`` None takes the adapter's own attribute, 0 never replaces a
    worker; ``threads`` limits each worker's numerical libraries (None: their defaults).
    """

    adapter: str
    dtype: str = "float32"
    tolerance: str = DEFAULT_TOLERANCE
    repeat: int = 0
    timeout: float = 60.0
    jobs: int = 1
    threads: int | None = 1
    cases_per_worker: int | None = None
    memory_limit: int | None = None
    capture: bool = True
    #: a directory where each worker keeps every result the adapter returned (conformance.results_store)
    results: str | None = None

    def __post_init__(self) -> None:
        self.options  # noqa: B018 - checks dtype, tolerance and repeat, naming the bad one

    @property
    def options(self) -> ScoringOptions:
        """What the process that scores a case needs: dtype, tolerance mode, repeat, results directory."""
        return ScoringOptions(self.dtype, self.tolerance, self.repeat, self.results)

    def start_workers(self) -> Workers:
        """This configuration's workers, loading the adapter from now on (conformance.runner.start),
        for :meth:`Session.run`: start them before building a large case set."""
        return start(self.adapter, jobs=self.jobs, timeout=self.timeout, threads=self.threads,
                     memory_limit=self.memory_limit, capture=self.capture)


@dataclass
class Outcome:
    """How a session ended: the report's summary, and whether it was interrupted."""

    summary: dict[str, Any]
    interrupted: bool
    path: Any = None
    adapter: AdapterInfo | None = None


class Session:
    """A case set scored under one :class:`RunConfig`.

    ``arrays`` (per case) replaces materialization from the seed (a corpus read from files);
    ``waivers`` turns the failing categories it covers into ``waived``.
    """

    def __init__(self, config: RunConfig, cases: Sequence[Any], *, arrays: Sequence[Any] | None = None,
                 waivers: WaiverSet | None = None) -> None:
        self.config = config
        self.cases = list(cases)
        self.arrays = None if arrays is None else list(arrays)
        self.waivers = waivers
        self.adapter_info: AdapterInfo | None = None

    # ------------------------------------------------------------------ report fields

    def meta(self, *, profile: str, corpus_id: str, started: str | None = None,
             jobs: int | None = None, timeout: float | None | str = "config",
             threads_per_job: int | None | str = "config") -> dict[str, Any]:
        """The report's top-level fields apart from summary, cases and finished. ``jobs``,
        ``timeout`` and ``threads_per_job`` are the configuration's unless given (None: none, as a
        pytest run without pytest-timeout records)."""
        c = self.config
        meta = default_meta(corpus_id=corpus_id, profile=profile, dtype=c.dtype,
                            adapter={"name": c.adapter, "target": resolve(c.adapter), "versions": {}},
                            jobs=c.jobs if jobs is None else jobs, timeout=c.timeout if timeout == "config" else timeout,
                            started=started or utc_now(),
                            threads_per_job=c.threads if threads_per_job == "config" else threads_per_job,
                            repeat=c.repeat)
        meta["tolerance"] = c.tolerance
        return meta

    def bind(self, info: AdapterInfo, writer: ReportWriter | None = None) -> None:
        """Record the loaded adapter: in the report's meta, and in the waivers' conditions."""
        self.adapter_info = info
        if writer is not None:
            writer.meta["adapter"] = info.adapter_record()
            writer.meta["environment"] = info.environment
        if self.waivers is not None:
            self.waivers.bind(info.adapter_record(), info.environment, self.config.dtype)

    def finish(self, writer: ReportWriter, *, interrupted: bool) -> dict[str, Any]:
        """Write the report (with the waivers' summary) and return its summary."""
        if self.waivers is not None:
            writer.summary_extra["waivers"] = self.waivers.summary()
        return writer.finish(interrupted=interrupted)

    # ------------------------------------------------------------------ scoring

    def score(self, adapter: Any, case: Any, materialized: Any = None) -> CaseResult:
        """One case scored in this process with the session's options, its waiver applied."""
        result = evaluate(adapter, case, self.config.options, materialized)
        if self.waivers is not None:
            self.waivers.apply(result)
        return result

    def isolated(self) -> Isolated:
        """One worker process that scores given cases one at a time (``explore``): use as a
        context manager; its ``check(case, materialized, options)`` scores one case."""
        c = self.config
        return Isolated(c.adapter, timeout=c.timeout, threads=c.threads)

    def run(self, writer: ReportWriter, *, skip: Collection[int] = (),
            on_ready: Callable[[AdapterInfo], None] | None = None,
            on_result: Callable[[CaseResult], None] | None = None,
            stop: Callable[[], bool] | None = None, workers: Workers | None = None) -> Outcome:
        """Score every case whose index is not in ``skip`` (cases a resumed run already recorded
        in ``writer``) in worker processes, streaming each record into ``writer``; return the
        summary of the report written.

        ``on_ready`` gets the loaded adapter's AdapterInfo once; ``on_result`` each record as it
        arrives; ``stop`` is asked after each record and ends the run early (as an interrupted
        one) when it returns True. Ctrl-C ends the run as interrupted, keeping every record
        scored. An adapter that cannot be loaded raises UsageError and leaves no report.
        ``workers``: the workers :meth:`RunConfig.start_workers` started (closed here in any case).
        """
        c = self.config
        skipped = set(skip)
        todo = [i for i in range(len(self.cases)) if i not in skipped]

        def ready(info: AdapterInfo) -> None:
            self.bind(info, writer)
            if on_ready is not None:
                on_ready(info)

        results = run(c.adapter, [self.cases[i] for i in todo], c.dtype, jobs=c.jobs, timeout=c.timeout,
                      threads=c.threads, on_ready=ready, cases_per_worker=c.cases_per_worker, repeat=c.repeat,
                      memory_limit=c.memory_limit, capture=c.capture, tolerance=c.tolerance, results=c.results,
                      arrays=None if self.arrays is None else [self.arrays[i] for i in todo], workers=workers) \
            if todo else iter(())  # a resumed run with nothing left starts no worker
        if not todo and workers is not None:
            workers.close()
        interrupted = False
        try:
            for k, result in results:
                if self.waivers is not None:
                    self.waivers.apply(result)
                writer.add(todo[k], result)
                if on_result is not None:
                    on_result(result)
                if stop is not None and stop():
                    interrupted = True
                    break
        except KeyboardInterrupt:
            interrupted = True
        except WorkerStartError as exc:
            writer.finish(interrupted=True)
            writer.path.unlink()
            raise UsageError(f"cannot load adapter {c.adapter!r}: {exc}") from exc
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()
        summary = self.finish(writer, interrupted=interrupted)
        return Outcome(summary, interrupted, writer.path, self.adapter_info)


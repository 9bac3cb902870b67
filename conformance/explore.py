"""Exploring beyond the case sets: Hypothesis draws configurations, the adapter is scored in a
worker, each distinct failure is shrunk to a minimal case and printed as a runnable reproducer.

``conv-conformance explore`` is a thin front end to :func:`explore` and :func:`reproducer`.
A drawn case is materialized by :func:`oracle.materialize.materialize_arrays` and scored by the
same session path as every case of ``run``, so a case gets the same record either way.
"""
from __future__ import annotations

from typing import Any

import hypothesis
import numpy as np
from hypothesis import HealthCheck, Verbosity, given, settings

from conv_conformance import reference
from conv_conformance.oracle import strategies
from conv_conformance.oracle.case import make_case
from conv_conformance.oracle.materialize import materialize_arrays
from conv_conformance.vocabulary import DEFAULT_TOLERANCE, FAILING

from .runner import WorkerStartError
from .session import RunConfig, Session

__all__ = ["explore", "reproducer", "Finding", "score_drawn"]

_EXPENSIVE_BUDGET = 8  # hangs and crashes explore spends on shrinking (each costs --timeout or a new worker)


class Finding(Exception):
    """A drawn case the adapter fails; one subclass per (layer, verdicts) so that
    Hypothesis treats each kind of failure as a distinct bug and shrinks each."""

    def __init__(self, result: Any, case: Any, arrays: Any) -> None:
        super().__init__(result.message)
        self.result, self.case, self.arrays = result, case, arrays


_FINDING_KINDS: dict[str, type] = {}


def _finding(result: Any, case: Any, arrays: Any) -> Finding:
    key = f"{result.layer}: " + ", ".join(f"{k}={v}" for k, v in sorted(result.verdicts.items()))
    kind = _FINDING_KINDS.setdefault(key, type(f"Finding[{key}]", (Finding,), {}))
    return kind(result, case, arrays)


def explore(adapter: Any, *, max_examples: int = 100, layers: list[str] | None = None,
            dtype: str = "float32", seed: int | None = None, timeout: float = 60.0,
            tolerance: str = DEFAULT_TOLERANCE) -> list[Finding]:
    """Score ``adapter`` on configurations drawn by ``oracle.strategies.valid_cases``;
    return each distinct failure, shrunk by Hypothesis to a minimal case.

    ``adapter`` given as a target (a registered name or ``module:attr``) runs in a
    worker process (:class:`conformance.runner.Isolated`): a case that hangs past
    ``timeout`` seconds or kills the worker is a finding (timeout, crash) like any
    other, and the search goes on with a fresh worker. An adapter object runs in
    this process."""
    if isinstance(adapter, str):
        session = Session(RunConfig(adapter, dtype=dtype, tolerance=tolerance, timeout=timeout), [])
        with session.isolated() as isolated:
            return _explore_with(lambda case, m: isolated.check(case, m, session.config.options),
                                 session, max_examples, layers, seed)
    session = Session(RunConfig(getattr(adapter, "name", None) or "in-process", dtype=dtype, tolerance=tolerance,
                                timeout=timeout), [])
    return _explore_with(lambda case, m: session.score(adapter, case, m), session, max_examples, layers, seed)


def score_drawn(score: Any, session: Session, spec: dict, case: Any, drawn: Any) -> Any:
    """The record of a drawn configuration: its arrays materialized as a case's are, then
    ``score(case, materialized)``."""
    c = session.config
    m = materialize_arrays(spec, drawn.inputs, drawn.weights, drawn.output_grad, c.dtype, c.tolerance)
    return score(case, m)


def _explore_with(score: Any, session: Session, max_examples: int, layers: list[str] | None,
                  seed: int | None) -> list[Finding]:
    dtype = session.config.dtype
    # A configuration that hangs or kills the worker costs a timeout or a new worker each time;
    # Hypothesis would retry it many times while shrinking. Its verdict is kept (with the arrays
    # that actually ran, which the reproducer prints) and the shrinking goes on elsewhere.
    # After _EXPENSIVE_BUDGET of them, every new configuration is answered with the last one that
    # really hung or crashed, so shrinking stops costing a timeout or a worker start per step.
    stopped: dict[str, tuple[Any, Any, Any]] = {}
    load_failures: list[BaseException] = []

    @settings(max_examples=max_examples, deadline=None, database=None, verbosity=Verbosity.quiet,
              report_multiple_bugs=True, print_blob=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(strategies.valid_cases(layers=layers, dtype=dtype))
    def probe(drawn: Any) -> None:
        spec = reference.normalize(drawn.spec)
        case = make_case(spec, drawn.input_shape, "valid")
        if case.id in stopped:  # this configuration hung or crashed once: not again while shrinking
            result, case, arrays = stopped[case.id]
        elif len(stopped) >= _EXPENSIVE_BUDGET:  # enough time spent on hangs and crashes: keep the last one
            result, case, arrays = stopped[next(reversed(stopped))]
        else:
            try:
                result = score_drawn(score, session, spec, case, drawn)
            except WorkerStartError as exc:  # a fresh worker could not load the adapter: end the search
                load_failures.append(exc)
                raise
            arrays = drawn
            if result.verdict in ("timeout", "crash"):
                stopped[case.id] = (result, case, drawn)
        if result.verdict in FAILING:
            raise _finding(result, case, arrays)

    if seed is not None:
        probe = hypothesis.seed(seed)(probe)
    try:
        probe()
    except Finding as exc:
        return [exc]
    except BaseException as exc:
        if load_failures:
            raise load_failures[0] from None
        if isinstance(exc, BaseExceptionGroup) and all(isinstance(e, Finding) for e in exc.exceptions):
            return list(exc.exceptions)
        raise
    return []


def _literal(array: Any) -> str:
    return f"np.array({np.asarray(array, dtype=np.float64).tolist()!r})"


def reproducer(target: str, case: Any, arrays: Any, dtype: str, result: Any) -> str:
    """A runnable Python script that calls the adapter on this case and prints
    how far it is from the reference."""
    weights = ",\n    ".join(f"{k!r}: {_literal(v)}" for k, v in arrays.weights.items())
    lines = [
        "import numpy as np",
        "from conv_conformance import reference",
        "from conv_conformance.conformance.calls import cast",
        "from conv_conformance.conformance.registry import load_adapter",
        "",
        f"adapter = load_adapter({target!r})",
        f"dtype = {dtype!r}",
        f"spec = {case.spec!r}",
        f"inputs = {_literal(arrays.inputs)}",
        f"weights = {{\n    {weights}}}" if weights else "weights = {}",
        f"output_grad = {_literal(arrays.output_grad)}",
        "",
        "actual = np.asarray(adapter.forward(spec, cast(inputs, dtype), "
        "{k: cast(w, dtype) for k, w in weights.items()}), dtype=np.float64)",
        "expected = reference.forward(spec, inputs, weights)",
        "print('forward:', actual.shape, 'expected', expected.shape)",
        "if actual.shape == expected.shape:",
        "    print('  max |actual - expected| =', np.max(np.abs(actual - expected)))",
    ]
    if "gradient" in result.verdicts and hasattr(arrays, "output_grad"):
        lines += [
            "grads = adapter.vjp(spec, cast(inputs, dtype), {k: cast(w, dtype) for k, w in weights.items()}, "
            "cast(output_grad, dtype))",
            "for name, want in reference.vjp(spec, inputs, weights, output_grad).items():",
            "    got = np.asarray(grads[name], dtype=np.float64)",
            "    diff = np.max(np.abs(got - want)) if got.shape == want.shape else (got.shape, want.shape)",
            "    print('gradient', name, ':', diff)",
        ]
    return "\n".join(lines)

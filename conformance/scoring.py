"""The case engine: one case through an adapter, scored in every category that applies.

:func:`check` runs one case in the current process and returns its
:class:`~conformance.record.CaseResult`. Every front end reaches it through
:func:`conformance.session.evaluate`: the worker processes of :mod:`conformance.runner`
(``run``, ``certify``, ``explore``) and the pytest plugin's items. Arrays are compared by
:func:`conformance.compare.score`, the one comparison routine.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from conv_conformance import _compat, reference
from conv_conformance.oracle.materialize import check_dtype, check_tolerance_mode, materialize
from conv_conformance.vocabulary import DEFAULT_TOLERANCE, worst_verdict

from . import Unsupported, training
from . import calls, compare, record, results_store
from .calls import MAX_MESSAGE, CallText, error_text, exception_record
from .exec_protocol import ProtocolError
from .levels import declaration_of, enforce
from .precision import accumulation_note, judge

__all__ = ["ScoringOptions", "evaluate", "check", "RECHECK_CALLS"]


@dataclass(frozen=True)
class ScoringOptions:
    """What scoring a case depends on besides the case and the adapter: the dtype of its arrays,
    the tolerance mode of its allowed errors, and how often each call is repeated (``repeat`` >= 2
    scores the determinism category). Every front end passes the same record down to the process
    that scores; nothing is read from the environment."""

    dtype: str = "float32"
    tolerance: str = DEFAULT_TOLERANCE
    repeat: int = 0
    #: a directory: the process that scores a case writes there every result the adapter returned
    #: (conformance.results_store), so arrays never travel back to the parent
    results: str | None = None

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        check_tolerance_mode(self.tolerance)
        if not isinstance(self.repeat, int) or self.repeat < 0 or self.repeat == 1:
            raise ValueError(f"Argument `repeat` must be 0 (off) or an integer >= 2. Received: repeat={self.repeat!r}")


def evaluate(adapter: Any, case: Any, options: ScoringOptions, materialized: Any = None) -> record.CaseResult:
    """Score one case in this process: materialize it (unless its arrays, expected values and
    allowed errors are given, as for a case read from an exported corpus or drawn by ``explore``)
    and :func:`check` it. The one path from a case to its record."""
    m = materialized if materialized is not None else materialize(case, options.dtype, options.tolerance)
    if options.results is None:
        return check(adapter, case, m, options.dtype, repeat=options.repeat)
    recorder = results_store.recorder_for(adapter)
    result = check(recorder, case, m, options.dtype, repeat=options.repeat)
    results_store.write(options.results, case.id, options.dtype, recorder)
    return result

#: Calls of a failing forward or vjp (the first included) before its verdict is settled: a result
#: that changes between identical calls is ``nondeterministic``, not ``fail``.
RECHECK_CALLS = 3
# ------------------------------------------------------------- comparing arrays

# ------------------------------------------------------------- checking a case

class _Timer:
    def __init__(self) -> None:
        self.seconds = 0.0

    def call(self, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - start


def _invalid_reason(case: Any) -> str:
    try:
        reference.output_shape(case.spec, case.input_shape)
    except Exception as exc:  # InvalidConfig or a malformed spec
        return str(exc)
    return "the reference rejects it"


def check(adapter: Any, case: Any, materialized: Any, dtype: str, *, repeat: int = 0) -> record.CaseResult:
    """Run one case through ``adapter`` and score every category that applies.

    Valid case: ``forward`` (shape, output); if ``case.gradient``, ``vjp``
    (the shape and values of every gradient; no ``vjp`` -> gradient
    unsupported). Invalid case: error behaviour only (pass if the adapter
    raises anything but Unsupported, fail if it returns). Each call gets fresh
    copies of the arrays cast to ``dtype``.

    A forward or vjp whose values fail is called again, :data:`RECHECK_CALLS`
    calls in all: if the results differ bitwise, the verdict is
    ``nondeterministic`` and the message shows the spread of values seen.
    ``repeat`` >= 2 adds the ``determinism`` category: every call is made
    ``repeat`` times and passes only if all results are bitwise equal.
    """
    m = materialized
    result = record.CaseResult.for_case(case, dtype)
    call = CallText(case.spec, case.input_shape, dtype)
    timer = _Timer()
    if case.kind == "invalid":
        _check_invalid(adapter, case, m, dtype, call, timer, result)
    else:
        messages: list[str] = []
        runs: dict[str, list] = {}
        _check_forward(adapter, m, dtype, call, timer, result, messages, runs, repeat)
        if case.gradient:
            _check_vjp(adapter, m, dtype, call, timer, result, messages, runs, repeat)
        if repeat >= 2:
            _score_determinism(result, runs, repeat, call, messages)
        if training.applies(case):
            training.check_training(adapter, case, m, dtype, timer, result, messages)
        result.message = "\n".join(messages)[:MAX_MESSAGE]
    enforce(_declaration(adapter), result)
    result.seconds = timer.seconds
    return result


_DECLARATIONS: dict[int, tuple[Any, Any]] = {}


def _declaration(adapter: Any) -> Any:
    """The adapter's parsed declaration (conformance.levels.declaration_of), once per adapter."""
    held = _DECLARATIONS.get(id(adapter))
    if held is None or held[0] is not adapter:
        held = _DECLARATIONS[id(adapter)] = (adapter, declaration_of(adapter))
    return held[1]


def _check_invalid(adapter, case, m, dtype, call, timer, result) -> None:
    try:
        out = timer.call(adapter.forward, copy.deepcopy(case.spec), calls.cast(m.inputs, dtype),
                         {k: calls.cast(v, dtype) for k, v in m.weights.items()})
    except Unsupported as exc:
        result.verdicts["error_behaviour"] = "unsupported"
        result.exception = exception_record(exc)
        result.message = f"unsupported: {exc} [{call}]"
    except ProtocolError as exc:  # a response that broke the exec protocol rejects nothing
        result.verdicts["error_behaviour"] = "error"
        result.exception = exception_record(exc)
        result.message = error_text("forward", exc, call)
    except Exception as exc:
        result.verdicts["error_behaviour"] = "pass"
        result.exception = exception_record(exc)
    else:
        shape = getattr(out, "shape", None)
        result.verdicts["error_behaviour"] = "fail"
        result.message = (f"forward returned a result (shape {shape}) on a configuration Keras rejects: "
                          f"{_invalid_reason(case)} [{call}]")


def _passed(m, dtype, gradient: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fresh copies for one call, by name, each with the source it was cast from."""
    out = {"inputs": (calls.cast(m.inputs, dtype), m.inputs)}
    out.update({f"weights[{k!r}]": (calls.cast(w, dtype), w) for k, w in m.weights.items()})
    if gradient:
        out["output_grad"] = (calls.cast(m.output_grad, dtype), m.output_grad)
    return out


def _ownership(what: str, returned: Any, passed: dict, dtype: str) -> list[str]:
    """How a call broke the caller's ownership of the arrays it passed: arrays written into
    (compared bitwise with a fresh copy) and returned arrays that share memory with one."""
    found = []
    for name, (arr, source) in passed.items():
        fresh = calls.cast(source, dtype)
        if arr.tobytes() != fresh.tobytes():
            a, f = arr.astype(np.float64), fresh.astype(np.float64)
            changed = int(np.count_nonzero(~((a == f) | (np.isnan(a) & np.isnan(f)))))
            found.append(f"{what} wrote into the caller's {name} ({changed} of {arr.size} elements changed)")
    values = returned.items() if isinstance(returned, Mapping) else [("result", returned)]
    for key, value in values:
        if isinstance(value, np.ndarray):
            shared = [name for name, (arr, _) in passed.items() if np.shares_memory(value, arr)]
            if shared:
                label = "its result" if key == "result" else f"grad[{key!r}]"
                found.append(f"{what} returned {label} as a view of the caller's {', '.join(shared)} "
                             "(shares memory): results must be new arrays")
    return found


def _forward_call(adapter, m, dtype, result, sink: list | None = None) -> Any:
    def call() -> Any:
        passed = _passed(m, dtype, False)
        out = adapter.forward(_spec(result), passed["inputs"][0],
                              {k: passed[f"weights[{k!r}]"][0] for k in m.weights})
        if sink is not None:
            sink.extend(_ownership("forward", out, passed, dtype))
        return out
    return call


def _vjp_call(adapter, m, dtype, result, sink: list | None = None) -> Any:
    def call() -> Any:
        passed = _passed(m, dtype, True)
        grads = adapter.vjp(_spec(result), passed["inputs"][0],
                            {k: passed[f"weights[{k!r}]"][0] for k in m.weights}, passed["output_grad"][0])
        if sink is not None:
            sink.extend(_ownership("vjp", grads, passed, dtype))
        return grads
    return call


def _again(fn: Any, timer: _Timer, count: int) -> list[Any]:
    """``count`` more results of ``fn`` (an exception ends the list early: it is not a value)."""
    out = []
    for _ in range(count):
        try:
            out.append(timer.call(fn))
        except Exception:  # noqa: BLE001 - a raising repeat differs from a returning first call
            out.append(None)
    return out


def _bitwise_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            return False
        return all(_bitwise_equal(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "OU":
        return bool(np.all(a == b))
    return a.tobytes() == b.tobytes()


def _spread(results: list[Any], worst: dict | None, key: str | None = None) -> str:
    """The values each call returned at the worst element, e.g. ``[2.68, 4.5e+34, 4.5e+34]``."""
    if not worst:
        return ""
    index = tuple(worst["index"])
    seen = []
    for r in results:
        arr = r.get(key) if (key is not None and isinstance(r, Mapping)) else r
        try:
            seen.append(f"{float(np.asarray(arr, dtype=np.float64)[index]):.6g}")
        except Exception:  # noqa: BLE001 - raised, or a different shape
            seen.append("raised" if arr is None else "different shape")
    return f"values at index {index} over {len(results)} identical calls: [{', '.join(seen)}]"


def _check_forward(adapter, m, dtype, call, timer, result, messages, runs, repeat) -> None:
    v = result.verdicts
    owned: list[str] = []
    fn = _forward_call(adapter, m, dtype, result, owned)
    try:
        out = timer.call(fn)
    except Unsupported as exc:
        v["shape"] = v["output"] = "unsupported"
        result.exception = exception_record(exc)
        messages.append(f"forward unsupported: {exc} [{call}]")
        return
    except Exception as exc:
        v["shape"] = v["output"] = "error"
        result.exception = exception_record(exc)
        messages.append(error_text("forward", exc, call))
        return
    found = list(owned)  # the first call's: later calls of a mutating adapter would repeat it
    c = compare.score("out", out, m.expected_output, m.allowed_output, call=call,
              strict=getattr(m, "strict_output", None))
    v["shape"] = "pass" if c.shape_ok else "fail"
    if c.ratio is not None:
        result.worst_ratio["output"] = c.ratio
        result.worst["output"] = c.worst
        if c.strict_ratio is not None:
            result.strict_ratio["output"] = c.strict_ratio
    v["output"] = ("pass" if c.strict_passed else "quality_warning") if c.passed else "fail"
    if c.message:
        messages.append(c.message)
    if v["output"] == "quality_warning":
        messages.append(f"out is within the loose precision class (ratio {c.ratio:.3g}) but not the strict "
                        f"one (ratio {c.strict_ratio:.3g}) [{call}]")
        note = accumulation_note(out, m, dtype, call)
        if note:
            messages.append(note)
    if c.shape_ok:  # effective precision: a result many bits short of the dtype fails
        judge(result, out, m, dtype, call, messages)
    results = [out]
    if not c.passed or repeat >= 2:
        results += _again(fn, timer, max(repeat, RECHECK_CALLS if not c.passed else 1) - 1)
    runs["forward"] = results
    if not c.passed and not all(_bitwise_equal(out, r) for r in results[1:]):
        v["output"] = "nondeterministic"
        messages.append(f"out is nondeterministic: identical calls returned different results; "
                        f"{_spread(results, c.worst)} [{call}]")
    _mutation(v, "output", found, messages, call)


def _mutation(v: dict, category: str, found: list[str], messages: list[str], call: Any) -> None:
    """The ``mutation`` verdict: the call wrote into an array the caller passed or returned a view
    of one (conformance.scoring._ownership); it outranks fail, whatever the values were."""
    if found:
        v[category] = worst_verdict([v[category], "mutation"])
        messages.extend(f"{text} [{call}]" for text in found)


def _spec(result: record.CaseResult) -> dict:
    return copy.deepcopy(result.spec)


def _check_vjp(adapter, m, dtype, call, timer, result, messages, runs, repeat) -> None:
    v = result.verdicts
    vjp = getattr(adapter, "vjp", None)
    if vjp is None:
        v["gradient"] = "unsupported"
        messages.append(f"gradient unsupported: the adapter has no vjp [{call}]")
        return
    owned: list[str] = []
    fn = _vjp_call(adapter, m, dtype, result, owned)
    try:
        grads = timer.call(fn)
    except Unsupported as exc:
        v["gradient"] = "unsupported"
        result.exception = result.exception or exception_record(exc)
        messages.append(f"vjp unsupported: {exc} [{call}]")
        return
    except Exception as exc:
        v["gradient"] = "error"
        result.exception = result.exception or exception_record(exc)
        messages.append(error_text("vjp", exc, call))
        return
    found = list(owned)
    if not isinstance(grads, Mapping):
        v["gradient"] = "fail"
        messages.append(f"vjp returned {type(grads).__name__}, but should return a dict keyed by "
                        f"{sorted(m.expected_gradients)} [{call}]")
        return
    shape_ok, values_ok, worst_ratio, worst = True, True, None, None
    strict_worst: float | None = None
    strict = getattr(m, "strict_gradients", None) or {}
    unmeasured: str | None = None  # a gradient missing or not comparable: its error ratio is infinite
    for key in m.expected_gradients:
        name = f"grad[{key!r}]"
        if key not in grads:
            values_ok = False
            unmeasured = unmeasured or key
            messages.append(f"vjp returned no {key!r} gradient; it returned keys {sorted(grads)} "
                            f"and should return {sorted(m.expected_gradients)} [{call}]")
            continue
        c = compare.score(name, grads[key], m.expected_gradients[key], m.allowed_gradients[key], call=call,
                  strict=strict.get(key))
        if c.strict_ratio is not None and (strict_worst is None or not c.strict_ratio <= strict_worst):
            strict_worst = c.strict_ratio
        shape_ok &= c.shape_ok
        values_ok &= c.passed
        if not c.passed and c.ratio is None:
            unmeasured = unmeasured or key
        if c.ratio is not None and (worst_ratio is None or c.ratio > worst_ratio):
            worst_ratio, worst = c.ratio, {"name": key, **c.worst} if c.worst else None
        if c.message:
            messages.append(c.message)
    if not shape_ok:
        v["shape"] = worst_verdict([v.get("shape", "pass"), "fail"])
    else:
        v.setdefault("shape", "pass")
    v["gradient"] = "pass" if values_ok else "fail"
    if unmeasured is not None:  # so the recorded ratio says "fail" too (certify.verify checks it)
        worst_ratio, worst = math.inf, None
    if strict_worst is not None:
        result.strict_ratio["gradient"] = strict_worst
        if values_ok and strict_worst > 1.0:
            v["gradient"] = "quality_warning"
            messages.append(f"the gradients are within the loose precision class (ratio {worst_ratio:.3g}) but "
                            f"not the strict one (ratio {strict_worst:.3g}) [{call}]")
    if worst_ratio is not None:
        result.worst_ratio["gradient"] = worst_ratio
        if worst is not None:
            result.worst["gradient"] = worst
    results = [grads]
    if not values_ok or repeat >= 2:
        results += _again(fn, timer, max(repeat, RECHECK_CALLS if not values_ok else 1) - 1)
    runs["vjp"] = results
    if not values_ok and not all(_bitwise_equal(grads, r) for r in results[1:]):
        v["gradient"] = "nondeterministic"
        key = worst["name"] if worst else None
        messages.append(f"vjp is nondeterministic: identical calls returned different gradients; "
                        f"{_spread(results, worst, key)}{f' of {key!r}' if key else ''} [{call}]")
    _mutation(v, "gradient", found, messages, call)


def _score_determinism(result: record.CaseResult, runs: dict[str, list], repeat: int, call: Any,
                       messages: list[str]) -> None:
    """The ``determinism`` category: each call made ``repeat`` times returned bitwise-equal results."""
    if not runs:
        return  # nothing returned a value (declined or raised): nothing to compare
    differing = [what for what, results in runs.items()
                 if not all(_bitwise_equal(results[0], r) for r in results[1:repeat])]
    result.verdicts["determinism"] = "fail" if differing else "pass"
    if differing:
        messages.append(f"determinism: {' and '.join(differing)} returned different bits over {repeat} "
                        f"identical calls [{call}]")


_MOVED = {**dict.fromkeys(("cast", "describe_call", "summarize_exception"), "conv_conformance.conformance.calls"),
          **dict.fromkeys(("score", "Score", "strict_allowed"), "conv_conformance.conformance.compare"),
          "CaseResult": "conv_conformance.conformance.record",
          **dict.fromkeys(("CATEGORIES", "VERDICTS", "FAILING", "worst_verdict"), "conv_conformance.vocabulary")}
# the names this module used to define, still importable from here for one release
__getattr__ = _compat.forward(__name__, _MOVED)

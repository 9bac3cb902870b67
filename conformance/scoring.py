"""Scoring: one comparison routine, one failure format, one case check.

:func:`score` scores an array an adapter returned against the float64
reference.  Each element's error ratio is ``|actual - expected| / allowed``
(``allowed`` is the per-element absolute error the oracle derived from a
forward error bound); an element with ``allowed == 0`` must be exact (ratio 0
when equal, inf otherwise) and a NaN where a number is expected is inf.  The
array passes when its worst ratio is at most 1.

Every failure is described the same way (after NumPy's ``assert_array_compare``
and array-api-tests): shape and dtype first, then the number of mismatched
elements, the worst index, the worst absolute and relative difference, the
two values there, and the call that produced them::

    out.shape=(2, 5, 5, 3), but should be (2, 4, 4, 3) [Conv2D(filters=3, kernel_size=3, strides=2, padding='same') on x.shape=(2, 8, 8, 1) float32]

:func:`check` runs one case through an adapter in the current process and
returns a :class:`CaseResult` (the worker processes of :mod:`conformance.runner`,
the pytest plugin and ``explore`` all call it).
"""
from __future__ import annotations

import copy
import math
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import Unsupported

__all__ = ["CATEGORIES", "VERDICTS", "FAILING", "Score", "CaseResult", "score", "check",
           "describe_call", "worst_verdict", "cast"]

CATEGORIES = ("shape", "output", "gradient", "error_behaviour", "determinism",
              "initializer", "regularizer", "constraint")  # the last three: conformance.training
#: Verdicts from best to worst; a case's overall verdict is the worst of its categories.
#: ``nondeterministic``: identical calls gave different results, at least one of them wrong.
#: ``quality_warning``: within the loose precision class, not the strict one (allowed, reported).
#: ``waived``: a failing category a valid waiver covers (allowed, listed; conformance.waivers).
#: ``mutation``: the call wrote into an array the caller passed (inputs, weights, output_grad) or
#: returned a view of one; it outranks fail whatever the values were.
VERDICTS = ("pass", "unsupported", "quality_warning", "waived", "fail", "mutation", "nondeterministic",
            "error", "timeout", "crash")
#: Verdicts that make an adapter non-conformant.
FAILING = frozenset({"fail", "mutation", "nondeterministic", "error", "timeout", "crash"})
#: Calls of a failing forward or vjp (the first included) before its verdict is settled: a result
#: that changes between identical calls is ``nondeterministic``, not ``fail``.
RECHECK_CALLS = 3
_SEVERITY = {v: i for i, v in enumerate(VERDICTS)}
_MAX_MESSAGE = 4000


def worst_verdict(verdicts: Any) -> str:
    """The most severe of some verdicts (crash > timeout > error > nondeterministic > fail >
    waived > quality_warning > unsupported > pass)."""
    values = list(verdicts.values() if isinstance(verdicts, Mapping) else verdicts)
    return max(values, key=_SEVERITY.__getitem__) if values else "pass"


# ------------------------------------------------------------- describing calls

def _short(value: Any) -> str:
    if isinstance(value, (list, tuple)) and value and all(v == value[0] for v in value) \
            and not isinstance(value[0], (list, tuple)):
        return repr(value[0])
    if isinstance(value, list):
        return repr(tuple(_tuples(v) for v in value))
    return repr(value)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _defaults(spec: dict) -> dict:
    """The normalized config of this layer with only its required arguments given."""
    from conv_conformance import reference

    config = spec.get("config") or {}
    required = {k: config[k] for k in ("filters", "kernel_size") if k in config}
    try:
        return reference.normalize({"class_name": spec["class_name"], "config": required})["config"]
    except Exception:  # invalid or unknown layer: show every argument
        return {}


def describe_call(spec: Mapping, input_shape: Any = None, dtype: str | None = None) -> str:
    """``Conv2D(filters=4, kernel_size=3, strides=2, padding='same') on x.shape=(2, 8, 8, 1) float32``.

    Arguments equal to their Keras default are left out, except ``filters`` and
    ``kernel_size``; a list whose entries are all equal prints as one number.
    """
    config = dict(spec.get("config") or {})
    defaults = _defaults(dict(spec))
    args = [f"{k}={_short(v)}" for k, v in config.items()
            if k in ("filters", "kernel_size") or k not in defaults or defaults[k] != v]
    call = f"{spec.get('class_name', '?')}({', '.join(args)})"
    if input_shape is not None:
        call += f" on x.shape={tuple(input_shape)}"
        if dtype:
            call += f" {dtype}"
    return call


# ------------------------------------------------------------- comparing arrays

@dataclass
class Score:
    """The outcome of comparing one returned array with its reference.

    ``shape_ok`` False means values were not compared (``ratio`` is None).
    ``worst`` locates the largest error ratio: index, expected, actual, allowed.
    """

    name: str
    shape_ok: bool
    ratio: float | None = None
    mismatches: int = 0
    worst: dict | None = None
    message: str = ""
    #: worst ratio against the strict precision class (None: values not compared)
    strict_ratio: float | None = None

    @property
    def passed(self) -> bool:
        return self.shape_ok and self.ratio is not None and self.ratio <= 1.0

    @property
    def strict_passed(self) -> bool:
        """Passed and within the strict class too (a pass outside it is a quality warning)."""
        return self.passed and (self.strict_ratio is None or self.strict_ratio <= 1.0)


def _ratios(actual: np.ndarray, expected: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        diff = np.abs(actual - expected)
        ratio = np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1.0), np.inf)
        same = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
        ratio = np.where(same, 0.0, ratio)
        return np.where(np.isnan(ratio), np.inf, ratio)


_ML_FLOATS = ("bfloat16", "float8_e4m3fn", "float8_e5m2")


def _not_an_array(actual: Any) -> str:
    """What is wrong with a returned value as an array ("" if nothing): None, a Python list or
    scalar, a masked array (masked elements have no value) or an object array."""
    if actual is None:
        return "None"
    if isinstance(actual, np.ma.MaskedArray):
        return f"a masked array ({int(np.ma.count_masked(actual))} elements masked)"
    if not (isinstance(actual, np.ndarray) or hasattr(actual, "__array__")
            or hasattr(actual, "__array_interface__")):
        return f"a {type(actual).__name__}"
    try:
        kind = np.asarray(actual).dtype.kind
    except Exception as exc:  # noqa: BLE001 - an __array__ that raises
        return f"not convertible to an array ({type(exc).__name__}: {exc})"
    return "an object array" if kind == "O" else ""


def strict_allowed(allowed: Any, strict: Any = None) -> np.ndarray:
    """The strict precision class's allowed errors: ``strict`` when the oracle gives it
    (``Materialized.strict_output`` / ``strict_gradients``), else today's model's bound
    without its safety factor, ``allowed / oracle.tolerance.SAFETY`` (docs/certification.md)."""
    if strict is not None:
        return np.asarray(strict, dtype=np.float64)
    from conv_conformance.oracle.tolerance import SAFETY

    return np.asarray(allowed, dtype=np.float64) / SAFETY


def score(name: str, actual: Any, expected: np.ndarray, allowed: Any, *, call: Any,
          strict: Any = None) -> Score:
    """Score ``actual`` against ``expected`` with per-element absolute tolerance ``allowed``.

    ratio = |actual - expected| / allowed per element (allowed 0: exact; NaN: inf);
    passes when the worst ratio is <= 1. ``name`` is how the array is called in
    messages (``out``, ``grad['kernel']``) and ``call`` the layer call that made it.
    ``strict_ratio`` is the worst ratio against :func:`strict_allowed` (``strict``
    or ``allowed / SAFETY``): a pass with strict_ratio > 1 is a quality warning.
    """
    expected = np.asarray(expected, dtype=np.float64)
    not_array = _not_an_array(actual)
    if not_array:
        return Score(name, False, message=f"{name} is {not_array}, but should be an array of shape "
                                               f"{expected.shape} [{call}]")
    raw = np.asarray(actual)
    dtype = str(raw.dtype)
    if raw.shape != expected.shape:
        return Score(name, False, message=f"{name}.shape={raw.shape}, but should be "
                                               f"{expected.shape} [{call}]")
    # ml_dtypes' bfloat16 (and float8 types) are kind "V" in NumPy but real floating dtypes
    if raw.dtype.kind != "f" and raw.dtype.name not in _ML_FLOATS:
        return Score(name, True, message=f"{name}.dtype={dtype}, but should be a real "
                                              f"floating dtype [{call}]")
    got = raw.astype(np.float64)
    tol = np.broadcast_to(np.asarray(allowed, dtype=np.float64), expected.shape)
    if expected.size == 0:
        return Score(name, True, ratio=0.0, strict_ratio=0.0)
    ratio = _ratios(got, expected, tol)
    strict_tol = np.broadcast_to(strict_allowed(allowed, strict), expected.shape)
    strict_ratio = float(np.max(_ratios(got, expected, strict_tol)))
    flat = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(flat, ratio.shape))
    worst_ratio = float(ratio[index])
    worst = {"index": list(index), "expected": float(expected[index]),
             "actual": float(got[index]), "allowed": float(tol[index])}
    bad = ratio > 1.0
    mismatches = int(np.count_nonzero(bad))
    if not mismatches:
        return Score(name, True, ratio=worst_ratio, worst=worst, strict_ratio=strict_ratio)
    with np.errstate(all="ignore"):
        diff = np.abs(got - expected)[bad]
        rel = diff / np.abs(expected[bad])
    diff, rel = (np.where(np.isnan(d), np.inf, d) for d in (diff, rel))
    lines = [
        f"{name} differs from the reference beyond the allowed error [{call}]",
        f" {name}.shape={raw.shape}, dtype={dtype}",
        f" Mismatched elements: {mismatches} / {ratio.size} ({100 * mismatches / ratio.size:.3g}%)",
        f" Worst error ratio: {worst_ratio:.6g} at index {index}",
        f"  actual:   {worst['actual']!r}",
        f"  expected: {worst['expected']!r}",
        f"  allowed:  {worst['allowed']!r}",
        f" Max absolute difference among violations: {np.max(diff):.6g}",
        f" Max relative difference among violations: {np.max(rel):.6g}",
    ]
    return Score(name, True, ratio=worst_ratio, mismatches=mismatches, worst=worst,
                      message="\n".join(lines), strict_ratio=strict_ratio)


# ------------------------------------------------------------- checking a case

@dataclass
class CaseResult:
    """Everything the report records about one case (see report.json ``cases``).

    ``seconds`` is the time spent inside the adapter's own calls.
    """

    id: str
    layer: str
    spec: dict
    input_shape: list
    kind: str
    dtype: str
    verdicts: dict[str, str] = field(default_factory=dict)
    worst_ratio: dict[str, float] = field(default_factory=dict)
    worst: dict[str, dict] = field(default_factory=dict)
    exception: dict | None = None
    message: str = ""
    seconds: float = 0.0
    #: worst ratio per category against the strict precision class (see score)
    strict_ratio: dict[str, float] = field(default_factory=dict)
    #: the waiver that turned failing categories into ``waived`` (conformance.waivers)
    waiver: dict | None = None
    #: what the adapter printed (fds 1 and 2) during the case, bounded (conformance.runner)
    output: str = ""
    #: the forward's effective precision (conformance.precision.Precision.to_json); None: no estimate
    precision: dict | None = None

    @property
    def verdict(self) -> str:
        """The case's overall verdict: the worst over its categories."""
        return worst_verdict(self.verdicts)

    def to_json(self) -> dict:
        """The report.json record (non-finite numbers still floats; see conformance.report)."""
        return {"id": self.id, "layer": self.layer, "spec": self.spec,
                "input_shape": list(self.input_shape), "kind": self.kind, "dtype": self.dtype,
                "verdicts": dict(self.verdicts), "worst_ratio": dict(self.worst_ratio),
                "worst": dict(self.worst), "exception": self.exception,
                "message": self.message, "seconds": self.seconds,
                **({"strict_ratio": dict(self.strict_ratio)} if self.strict_ratio else {}),
                **({"waiver": self.waiver} if self.waiver is not None else {}),
                **({"output": self.output} if self.output else {}),
                **({"precision": self.precision} if self.precision is not None else {})}

    @classmethod
    def for_case(cls, case: Any, dtype: str, **fields: Any) -> "CaseResult":
        """An empty result carrying a case's identity."""
        return cls(id=case.id, layer=case.layer, spec=case.spec, input_shape=list(case.input_shape),
                   kind=case.kind, dtype=dtype, **fields)

    @classmethod
    def categories_of(cls, case: Any) -> tuple[str, ...]:
        """The categories that apply to a case."""
        if case.kind == "invalid":
            return ("error_behaviour",)
        from . import training

        extra = training.CATEGORIES if training.applies(case) else ()
        return (("shape", "output", "gradient") if case.gradient else ("shape", "output")) + extra


def cast(array: Any, dtype: str) -> np.ndarray:
    """A fresh copy of ``array`` in the run dtype (bfloat16 via ml_dtypes)."""
    if dtype == "bfloat16":
        import ml_dtypes

        return np.array(array, dtype=ml_dtypes.bfloat16, copy=True)
    return np.array(array, dtype=np.dtype(dtype), copy=True)


# Lines of framework exception texts that say nothing about the cause.
_NOISE = re.compile(r"^(Exception encountered when calling|Arguments received by|Call arguments received by|"
                    r"\u2022 |Traceback|During handling|\s*$)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\](\s*name:\s*\S*)?\s*$")


def summarize_exception(exc: BaseException) -> str:
    """``Type: cause``: the exception's most informative line.

    Keras wraps a TensorFlow error in "Exception encountered when calling
    Conv2D.call()." and lists the call's arguments; the cause is the wrapped
    line (``{{function_node ...}} The Conv2D op currently only supports the NHWC
    tensor format ...``). This returns that line without the node and op tags;
    the whole text stays in the record's ``exception``.
    """
    text = _ANSI.sub("", str(exc))
    lines = [ln.strip() for ln in text.splitlines()]
    informative = [ln for ln in lines if not _NOISE.match(ln)]
    line = informative[0] if informative else (lines[0] if lines else "")
    line = _OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", line))
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _exception(exc: BaseException) -> dict:
    return {"type": type(exc).__name__, "summary": summarize_exception(exc)[:500],
            "message": _ANSI.sub("", str(exc))[:_MAX_MESSAGE]}


def _error_text(what: str, exc: BaseException, call: str) -> str:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return f"{what} raised {summarize_exception(exc)} [{call}]\n{_ANSI.sub('', tb)}"[:_MAX_MESSAGE]


class _Call:
    """describe_call(...), computed only when a message needs it."""

    def __init__(self, spec: Any, input_shape: Any, dtype: str) -> None:
        self._args, self._text = (spec, input_shape, dtype), None

    def __str__(self) -> str:
        if self._text is None:
            self._text = describe_call(*self._args)
        return self._text

    def __format__(self, format_spec: str) -> str:
        return format(str(self), format_spec)


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
    from conv_conformance import reference

    try:
        reference.output_shape(case.spec, case.input_shape)
    except Exception as exc:  # InvalidConfig or a malformed spec
        return str(exc)
    return "the reference rejects it"


def check(adapter: Any, case: Any, materialized: Any, dtype: str, *, repeat: int = 0) -> CaseResult:
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
    result = CaseResult.for_case(case, dtype)
    call = _Call(case.spec, case.input_shape, dtype)
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
        from . import training  # initializer, regularizer, constraint (issue 11)

        if training.applies(case):
            training.check_training(adapter, case, m, dtype, timer, result, messages)
        result.message = "\n".join(messages)[:_MAX_MESSAGE]
    from .levels import enforce

    enforce(_declaration(adapter), result)
    result.seconds = timer.seconds
    return result


_DECLARATIONS: dict[int, tuple[Any, Any]] = {}


def _declaration(adapter: Any) -> Any:
    """The adapter's parsed declaration (conformance.levels.declaration_of), once per adapter."""
    from .levels import declaration_of

    held = _DECLARATIONS.get(id(adapter))
    if held is None or held[0] is not adapter:
        held = _DECLARATIONS[id(adapter)] = (adapter, declaration_of(adapter))
    return held[1]


def _check_invalid(adapter, case, m, dtype, call, timer, result) -> None:
    try:
        out = timer.call(adapter.forward, copy.deepcopy(case.spec), cast(m.inputs, dtype),
                         {k: cast(v, dtype) for k, v in m.weights.items()})
    except Unsupported as exc:
        result.verdicts["error_behaviour"] = "unsupported"
        result.exception = _exception(exc)
        result.message = f"unsupported: {exc} [{call}]"
    except Exception as exc:
        result.verdicts["error_behaviour"] = "pass"
        result.exception = _exception(exc)
    else:
        shape = getattr(out, "shape", None)
        result.verdicts["error_behaviour"] = "fail"
        result.message = (f"forward returned a result (shape {shape}) on a configuration Keras rejects: "
                          f"{_invalid_reason(case)} [{call}]")


def _passed(m, dtype, gradient: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fresh copies for one call, by name, each with the source it was cast from."""
    out = {"inputs": (cast(m.inputs, dtype), m.inputs)}
    out.update({f"weights[{k!r}]": (cast(w, dtype), w) for k, w in m.weights.items()})
    if gradient:
        out["output_grad"] = (cast(m.output_grad, dtype), m.output_grad)
    return out


def _ownership(what: str, returned: Any, passed: dict, dtype: str) -> list[str]:
    """How a call broke the caller's ownership of the arrays it passed: arrays written into
    (compared bitwise with a fresh copy) and returned arrays that share memory with one."""
    found = []
    for name, (arr, source) in passed.items():
        fresh = cast(source, dtype)
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


def _again(fn: Any, timer: _Timer, calls: int) -> list[Any]:
    """``calls`` more results of ``fn`` (an exception ends the list early: it is not a value)."""
    out = []
    for _ in range(calls):
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
        result.exception = _exception(exc)
        messages.append(f"forward unsupported: {exc} [{call}]")
        return
    except Exception as exc:
        v["shape"] = v["output"] = "error"
        result.exception = _exception(exc)
        messages.append(_error_text("forward", exc, call))
        return
    found = list(owned)  # the first call's: later calls of a mutating adapter would repeat it
    c = score("out", out, m.expected_output, m.allowed_output, call=call,
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
    if c.shape_ok:
        from .precision import judge  # effective precision (issue 12): bits short of the dtype fail

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


def _spec(result: CaseResult) -> dict:
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
        result.exception = result.exception or _exception(exc)
        messages.append(f"vjp unsupported: {exc} [{call}]")
        return
    except Exception as exc:
        v["gradient"] = "error"
        result.exception = result.exception or _exception(exc)
        messages.append(_error_text("vjp", exc, call))
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
        c = score(name, grads[key], m.expected_gradients[key], m.allowed_gradients[key], call=call,
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


def _score_determinism(result: CaseResult, runs: dict[str, list], repeat: int, call: Any,
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

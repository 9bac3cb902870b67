"""What the engine says about a call: how it is described, how its arrays are cast, how an
exception it raised is summarized.

    describe_call(spec, input_shape, dtype)  # "Conv2D(filters=4, kernel_size=3, ...) on x.shape=(2, 8, 8, 1) float32"
    cast(array, dtype)                       # a fresh copy in the run's dtype (bfloat16 via ml_dtypes)
    summarize_exception(exc)                 # "Type: the informative line"
"""
from __future__ import annotations

import re
import traceback
from typing import Any, Mapping

import numpy as np

from conv_conformance import reference

__all__ = ["CallText", "describe_call", "cast", "summarize_exception", "exception_record", "error_text", "MAX_MESSAGE"]

#: The longest message or exception text a record keeps.
MAX_MESSAGE = 4000


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


def cast(array: Any, dtype: str) -> np.ndarray:
    """A fresh copy of ``array`` in the run dtype (bfloat16 via ml_dtypes)."""
    if dtype == "bfloat16":
        # imported here: a report lists the frameworks an adapter imported, ml_dtypes among them
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


def exception_record(exc: BaseException) -> dict:
    """The record's ``exception`` field: type, one-line summary, text (bounded)."""
    return {"type": type(exc).__name__, "summary": summarize_exception(exc)[:500],
            "message": _ANSI.sub("", str(exc))[:MAX_MESSAGE]}


def error_text(what: str, exc: BaseException, call: Any) -> str:
    """``what raised Type: cause [call]`` and the last frames of the traceback (bounded)."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3))
    return f"{what} raised {summarize_exception(exc)} [{call}]\n{_ANSI.sub('', tb)}"[:MAX_MESSAGE]


class CallText:
    """``describe_call(spec, input_shape, dtype)``, computed only when a message formats it."""

    def __init__(self, spec: Any, input_shape: Any, dtype: str) -> None:
        self._args, self._text = (spec, input_shape, dtype), None

    def __str__(self) -> str:
        if self._text is None:
            self._text = describe_call(*self._args)
        return self._text

    def __format__(self, format_spec: str) -> str:
        return format(str(self), format_spec)

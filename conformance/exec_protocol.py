"""The exec protocol's wire format: frames, array buffers, the hello and the responses.

One frame is a 4-byte little-endian unsigned length ``N``, ``N`` bytes of UTF-8 JSON (the
header), then the raw bytes of every array the header lists in its ``arrays`` field, in that
order: little-endian, C order, ``prod(shape) * itemsize`` bytes each. docs/exec-protocol.md is
the specification; each rule it numbers (``P1`` ...) is named by the :class:`ProtocolError` a
break of it raises, so a record says which rule an implementation broke.

Imports only NumPy, ml_dtypes (for bfloat16) and the standard library: the codec is the same
for the harness and for Python implementations of the protocol (tests/conformance/fixtures).
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any, BinaryIO, Mapping

import numpy as np

from . import Unsupported

__all__ = ["PROTOCOL", "MAJOR", "METHODS", "DTYPES", "MAX_HEADER", "MAX_ARRAY_BYTES", "ProtocolError",
           "ImplementationError", "Frame", "write_frame", "read_frame", "check_hello", "check_response",
           "array_entry", "dtype_of"]

#: The protocol's name and version, as the hello's ``protocol`` field carries it.
PROTOCOL = "conv-conformance-exec/1"
MAJOR = 1
#: The calls an implementation may serve; ``forward`` is required.
METHODS = ("forward", "vjp", "initialize", "regularization", "regularization_vjp", "constrain")
#: Wire dtype names. Requests use the run's dtype; a response may use any of them (an integer
#: result is a valid frame whose values then fail the case, as for a Python adapter).
DTYPES = ("float64", "float32", "float16", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool")
#: A header longer than this breaks P2: no layer spec comes near it.
MAX_HEADER = 1 << 24
#: An array larger than this breaks P4 (a response that would exhaust the worker's memory).
MAX_ARRAY_BYTES = 1 << 32
_LENGTH = struct.Struct("<I")


class ProtocolError(Exception):
    """The implementation broke a rule of the protocol (or of the offline results layout,
    conformance.offline); ``rule`` is its number in docs/exec-protocol.md and the message says
    what was received."""

    def __init__(self, rule: str, message: str, protocol: str = "exec protocol") -> None:
        super().__init__(f"{protocol} rule {rule} broken: {message}")
        self.rule = rule


class ImplementationError(Exception):
    """The implementation answered a call with ``"status": "error"``: it raised (rejecting a
    configuration Keras rejects, or failing on a valid one)."""


def dtype_of(name: str) -> np.dtype:
    """The NumPy dtype of a wire dtype name (little-endian)."""
    if name == "bfloat16":
        import ml_dtypes  # imported when used: a report lists what an adapter imported

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name).newbyteorder("<")


def array_entry(name: str, array: np.ndarray) -> dict[str, Any]:
    """The header entry of an array: ``{"name", "dtype", "shape"}``."""
    return {"name": name, "dtype": array.dtype.name, "shape": list(array.shape)}


class Frame:
    """A decoded frame: its JSON header and its arrays by name, in header order."""

    def __init__(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.header, self.arrays = header, arrays


def write_frame(stream: BinaryIO, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray] = {}) -> None:
    """Write one frame: ``header`` with an ``arrays`` list describing ``arrays``, then their bytes."""
    parts = {name: np.asarray(a, order="C") for name, a in arrays.items()}  # 0-d stays 0-d
    body = dict(header, arrays=[array_entry(n, a) for n, a in parts.items()])
    text = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    stream.write(_LENGTH.pack(len(text)) + text)
    for a in parts.values():
        stream.write(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int, what: str) -> bytes:
    """``size`` bytes; EOFError when the stream ends first (the other side has gone)."""
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            raise EOFError(f"the stream ended after {got} of the {size} bytes of {what}")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> Frame:
    """The next frame. EOFError if the stream ends (at or inside a frame); ProtocolError for a
    frame that breaks P2 (header) or P4 (array list and buffers)."""
    (length,) = _LENGTH.unpack(_read_exactly(stream, 4, "a frame's length"))
    if length == 0 or length > MAX_HEADER:
        raise ProtocolError("P2", f"a frame's header length must be 1 to {MAX_HEADER} bytes; received {length} "
                                  "(is something printing to stdout? logs belong on stderr)")
    raw = _read_exactly(stream, length, "a frame's header")
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("P2", f"a frame's header must be a UTF-8 JSON object; {exc}: {raw[:120]!r}") from None
    if not isinstance(header, dict):
        raise ProtocolError("P2", f"a frame's header must be a JSON object; received {type(header).__name__}")
    entries = header.get("arrays", [])
    if not isinstance(entries, list):
        raise ProtocolError("P4", f"`arrays` must be a list of {{name, dtype, shape}}; received {entries!r}"[:300])
    shapes = [_entry(e) for e in entries]
    arrays: dict[str, np.ndarray] = {}
    for name, dtype, shape in shapes:
        size = math.prod(shape) * dtype.itemsize
        data = bytearray(_read_exactly(stream, size, f"array {name!r}"))
        arrays[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
    return Frame(header, arrays)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _entry(entry: Any) -> tuple[str, np.dtype, tuple[int, ...]]:
    if not isinstance(entry, dict) or set(entry) != {"name", "dtype", "shape"}:
        raise ProtocolError("P4", f"each `arrays` entry must be an object with exactly name, dtype, shape; "
                                  f"received {entry!r}"[:300])
    name, dtype, shape = entry["name"], entry["dtype"], entry["shape"]
    if not isinstance(name, str) or not name:
        raise ProtocolError("P4", f"an array's `name` must be a non-empty string; received {name!r}")
    if dtype not in DTYPES:
        raise ProtocolError("P4", f"array {name!r}: `dtype` must be one of {', '.join(DTYPES)}; received {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise ProtocolError("P4", f"array {name!r}: `shape` must be a list of integers >= 0; received {shape!r}"[:300])
    dt = dtype_of(dtype)
    if math.prod(shape) * dt.itemsize > MAX_ARRAY_BYTES:
        raise ProtocolError("P4", f"array {name!r} of shape {shape} {dtype} exceeds {MAX_ARRAY_BYTES} bytes")
    return name, dt, tuple(shape)


def check_hello(frame: Frame) -> dict[str, Any]:
    """The hello's fields, checked against P3: protocol, name, methods (with forward); versions,
    environment and declaration optional (the declaration is checked where it is parsed)."""
    h = frame.header
    protocol = h.get("protocol")
    if not isinstance(protocol, str) or not protocol.startswith("conv-conformance-exec/"):
        raise ProtocolError("P3", f"the hello's `protocol` must be {PROTOCOL!r}; received {protocol!r}")
    major = protocol.rpartition("/")[2].split(".")[0]
    if major != str(MAJOR):
        raise ProtocolError("P3", f"the implementation speaks {protocol!r}; this harness speaks {PROTOCOL!r}")
    if not isinstance(h.get("name"), str) or not h["name"]:
        raise ProtocolError("P3", f"the hello's `name` must be a non-empty string; received {h.get('name')!r}")
    methods = h.get("methods")
    if not isinstance(methods, list) or "forward" not in methods or not set(methods) <= set(METHODS):
        raise ProtocolError("P3", f"the hello's `methods` must list forward and any of {', '.join(METHODS[1:])}; "
                                  f"received {methods!r}"[:300])
    for key in ("versions", "environment"):
        value = h.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ProtocolError("P3", f"the hello's `{key}` must be an object of strings; received {value!r}"[:300])
    if frame.arrays:
        raise ProtocolError("P3", "the hello carries no arrays")
    return h


def check_response(frame: Frame, request_id: int, method: str) -> dict[str, np.ndarray]:
    """The arrays of an ``ok`` response; Unsupported-worthy and error responses raise (the caller
    maps them): P5 (id), P6 (status and its fields), P7 (what the method returns)."""
    h = frame.header
    if h.get("id") != request_id:
        raise ProtocolError("P5", f"a response's `id` must be the request's ({request_id}); received {h.get('id')!r}")
    status = h.get("status")
    if status == "unsupported":
        reason = h.get("reason")
        if not isinstance(reason, str):
            raise ProtocolError("P6", f"an `unsupported` response needs a string `reason`; received {reason!r}")
        raise Unsupported(reason)
    if status == "error":
        message = h.get("message")
        if not isinstance(message, str):
            raise ProtocolError("P6", f"an `error` response needs a string `message`; received {message!r}")
        raise ImplementationError(message)
    if status != "ok":
        raise ProtocolError("P6", f"a response's `status` must be ok, unsupported or error; received {status!r}")
    if method == "forward" and list(frame.arrays) != ["output"]:
        raise ProtocolError("P7", f"a forward response carries exactly one array, `output`; "
                                  f"received {list(frame.arrays)}")
    return frame.arrays

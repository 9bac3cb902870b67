"""Reading an exported case directory back (``oracle.export`` layout), refusing hostile input.

A corpus directory may come from anywhere (a third party, an old release, a download), so
:func:`read` trusts nothing in it. It refuses, with :class:`CorpusError` and one line naming
the file and the rule:

* an ``index.json`` that is not JSON, is cut short, or lacks a field of the format;
* unknown layers, unknown or invalid arguments (``reference.normalize``), input shapes
  Keras rejects, weights of the wrong names;
* case ids or file names that leave the directory (``..``, absolute paths, separators, links);
* ``.npy`` files that are pickled (object arrays: ``allow_pickle=False``), truncated,
  corrupt, of another dtype than the format gives them (format 2: inputs, weights and
  output_grad in ``oracle.export.storage_dtype`` of the index's dtype, bfloat16 values only in a
  bfloat16 set; everything else, and everything in format 1, float64), or whose shape
  disagrees with the case;
* absurd sizes: every array's header is read first and the total element count is checked
  against ``max_elements`` (default :data:`MAX_ELEMENTS`, raisable) before anything is
  allocated.

Nor does it trust the values: :func:`rederive` recomputes every valid case's expected values and
allowed errors from the reference and the case's own inputs, scores with those, and reports
which cases' stored values disagree (doctored) and which cases' inputs are not the ones their
seed draws (redrawn). Only a corpus with neither is the genuine case set it names.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.reference import InvalidConfig
from conv_conformance.reference.shapes import layer_of

from conv_conformance.vocabulary import DEFAULT_TOLERANCE, DTYPES

from .case import Case
from .export import GIVEN, storage_dtype
from .materialize import Materialized, materialize, materialize_arrays, round_to

__all__ = ["CorpusError", "MAX_ELEMENTS", "read", "Provenance", "rederive"]

#: Elements of all arrays of one case together (about 2 GiB of float64), unless raised.
MAX_ELEMENTS = 1 << 28
_ID = re.compile(r"^[A-Za-z0-9]{1,64}-[0-9a-f]{12}$")
_NAME = re.compile(r"^(inputs|output_grad|expected_output|allowed_output|weights\.[a-z_]{1,40}|"
                   r"expected_gradient\.[a-z_]{1,40}|allowed_gradient\.[a-z_]{1,40})$")


class CorpusError(ValueError):
    """An exported case directory that cannot be read safely; the message names what is wrong."""


def _index(directory: Path) -> dict:
    path = directory / "index.json"
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise CorpusError(f"{directory} is not an exported case directory: no index.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from None
    try:
        index = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CorpusError(f"{path} is not valid JSON (cut short or corrupt?): {exc}") from None
    if not isinstance(index, dict) or index.get("format_version") not in (1, 2) \
            or not isinstance(index.get("cases"), list):
        raise CorpusError(f"{path} is not an index of format_version 1 or 2 with a list of cases")
    return index


def _given_dtype(index: dict) -> tuple[np.dtype, str | None]:
    """The dtype of the inputs, weights and output_grad files, and the dtype their values must be
    exact in when the file's own dtype does not say it (bfloat16 stored as float32)."""
    if index["format_version"] == 1:  # every array float64
        return np.dtype(np.float64), None
    dtype = index.get("dtype")
    if dtype not in DTYPES:
        raise CorpusError(f"index.json: dtype must be one of {', '.join(DTYPES)}; received {dtype!r}")
    storage = storage_dtype(dtype)
    if index.get("storage_dtype") != storage:
        raise CorpusError(f"index.json: storage_dtype must be {storage!r} for a {dtype} case set (format 2); "
                          f"received {index.get('storage_dtype')!r}")
    return np.dtype(storage), (dtype if dtype != storage else None)


def _exact_in(array: np.ndarray, dtype: str) -> bool:
    return bool(np.array_equal(round_to(array, dtype), array))


def _file(directory: Path, case_id: str, name: str, rel: Any) -> Path:
    """The path of one array, refusing anything but ``<case id>/<name>.npy`` inside directory."""
    if not _NAME.match(name):
        raise CorpusError(f"case {case_id}: array name {name!r} is not one the format defines")
    expected = f"{case_id}/{name}.npy"
    if rel != expected:
        raise CorpusError(f"case {case_id}: file {rel!r} must be {expected!r} (no other path is allowed)")
    path = directory / case_id / f"{name}.npy"
    root = directory.resolve()
    if path.is_symlink() or path.parent.is_symlink() or root not in path.resolve().parents:
        raise CorpusError(f"case {case_id}: {rel!r} leaves the corpus directory (a link?)")
    return path


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran order) from a .npy header, without reading the data."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except FileNotFoundError:
        raise CorpusError(f"{path} is missing") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorpusError(f"{path} is not a .npy file (corrupt header: {exc})") from None
    return tuple(shape), dtype, fortran


def _load(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:  # pickled (object) arrays and truncated data both land here
        raise CorpusError(f"{path} cannot be read without pickle or is cut short: {exc}") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from None
    if array.shape != shape:
        raise CorpusError(f"{path} holds shape {array.shape}, but its case needs {shape}")
    return array


def read(directory: str | Path, *, max_elements: int = MAX_ELEMENTS) -> list[tuple[Case, Materialized]]:
    """The cases of an exported directory with their arrays; CorpusError on anything unsafe."""
    directory = Path(directory)
    index = _index(directory)
    given, exact_in = _given_dtype(index)
    out = []
    for n, entry in enumerate(index["cases"]):
        if not isinstance(entry, dict):
            raise CorpusError(f"index.json: case #{n} is not an object")
        case_id = entry.get("id")
        if not isinstance(case_id, str) or not _ID.match(case_id):
            raise CorpusError(f"index.json: case #{n} has id {case_id!r}; ids are <Layer>-<12 hex digits>")
        try:
            case = Case.from_json(entry)
            if case.kind not in ("valid", "invalid"):
                raise ValueError(f"kind must be 'valid' or 'invalid', not {case.kind!r}")
            if case.kind == "invalid":  # a configuration Keras rejects, by design: its layer must exist
                layer_of(case.spec)
            else:
                spec = reference.normalize(case.spec)
                out_shape = reference.output_shape(spec, case.input_shape)
                want_w = reference.weight_shapes(spec, case.input_shape)
        except InvalidConfig as exc:
            raise CorpusError(f"case {case_id}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise CorpusError(f"case {case_id}: malformed entry ({type(exc).__name__}: {exc})") from None
        files = entry.get("files")
        if not isinstance(files, dict):
            raise CorpusError(f"case {case_id}: no `files` object")
        paths = {name: _file(directory, case_id, name, rel) for name, rel in files.items()}
        headers = {name: _header(p) for name, p in paths.items()}
        total = sum(math.prod(s) for s, _, _ in headers.values())
        if total > max_elements:
            raise CorpusError(f"case {case_id}: its arrays hold {total} elements, more than max_elements="
                              f"{max_elements} (raise the limit to read it)")
        for name, (shape, dtype, _) in headers.items():
            want = given if name.split(".", 1)[0] in GIVEN else np.dtype(np.float64)
            if dtype != want:
                raise CorpusError(f"case {case_id}: {paths[name]} is {dtype}; format {index['format_version']} "
                                  f"stores {name} as {want}")
        if case.kind == "valid":
            need = {"inputs": tuple(case.input_shape), "expected_output": tuple(out_shape),
                    "allowed_output": tuple(out_shape)} | {f"weights.{k}": tuple(v) for k, v in want_w.items()}
            for name, shape in need.items():
                if name not in headers:
                    raise CorpusError(f"case {case_id}: no {name} array")
                if headers[name][0] != shape:
                    raise CorpusError(f"case {case_id}: {name} has shape {headers[name][0]}, but the case "
                                      f"needs {shape}")
            unknown = [k for k in headers if k.startswith("weights.") and k not in need]
            if unknown:
                raise CorpusError(f"case {case_id}: weights {unknown} are not weights of {case.layer}")
        arrays = {name: _load(paths[name], headers[name][0]).astype(np.float64) for name in paths}
        for name in paths:
            if exact_in and name.split(".", 1)[0] in GIVEN and not _exact_in(arrays[name], exact_in):
                raise CorpusError(f"case {case_id}: {paths[name]} holds values that are not {exact_in} "
                                  f"(a {exact_in} case set stores only {exact_in} values)")
        weights = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("weights.")}
        grads = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("expected_gradient.")}
        allowed = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("allowed_gradient.")}
        out.append((case, Materialized(arrays["inputs"], weights, arrays.get("output_grad"),
                                       arrays.get("expected_output"), grads or None,
                                       arrays.get("allowed_output"), allowed or None)))
    return out


@dataclass
class Provenance:
    """What re-deriving a corpus from the reference found (ids in corpus order)."""

    #: cases whose stored expected values or allowed errors differ from the recomputed ones
    doctored: list[str] = field(default_factory=list)
    #: cases whose inputs, weights or output gradient are not the ones their seed draws
    redrawn: list[str] = field(default_factory=list)
    #: sha256 (16 hex digits) over the ids and the bytes of every array actually scored
    content_id: str = ""

    @property
    def genuine(self) -> bool:
        return not self.doctored and not self.redrawn

    def to_json(self) -> dict:
        return {"genuine": self.genuine, "content_id": self.content_id, "doctored": list(self.doctored),
                "redrawn": list(self.redrawn)}


def _same(a: Any, b: Any) -> bool:
    """Bitwise-equal arrays (both None counts as equal)."""
    if a is None or b is None:
        return a is None and b is None
    return np.shape(a) == np.shape(b) and np.asarray(a, np.float64).tobytes() == np.asarray(b, np.float64).tobytes()


def _close(stored: Any, computed: Any) -> bool:
    """Stored values that a float64 reference on another machine could have written: equal to the
    recomputed ones within 1e-9 relative (a different BLAS sums in another order)."""
    if stored is None or computed is None:
        return stored is None and computed is None
    a, b = np.asarray(stored, np.float64), np.asarray(computed, np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.abs(a - b) <= 1e-9 * np.abs(b))))


def _stored_agrees(stored: Materialized, computed: Materialized) -> bool:
    if not (_close(stored.expected_output, computed.expected_output)
            and _close(stored.allowed_output, computed.allowed_output)):
        return False
    for name in ("expected_gradients", "allowed_gradients"):
        a, b = getattr(stored, name) or {}, getattr(computed, name) or {}
        if a and (set(a) != set(b) or not all(_close(a[k], b[k]) for k in a)):
            return False
    return True


def rederive(read_cases: list[tuple[Case, Materialized]], dtype: str,
             tolerance_mode: str = DEFAULT_TOLERANCE) -> tuple[list[tuple[Case, Materialized]], Provenance]:
    """Every case with the values the reference gives it: expected values and allowed errors
    recomputed (in ``tolerance_mode``) from the case's stored inputs, never taken from the files.

    The stored values are checked against a recomputation in the exporter's mode (rigorous):
    a case whose stored values disagree is ``doctored``; one whose stored inputs are not its
    seed's draws is ``redrawn`` (scored on its own inputs all the same)."""
    out, prov = [], Provenance()
    digest = hashlib.sha256()
    for case, stored in read_cases:
        seeded = materialize(case, dtype, DEFAULT_TOLERANCE)
        drawn = (_same(stored.inputs, seeded.inputs) and _same(stored.output_grad, seeded.output_grad)
                 and set(stored.weights) == set(seeded.weights)
                 and all(_same(stored.weights[k], seeded.weights[k]) for k in seeded.weights))
        if not drawn:
            prov.redrawn.append(case.id)
        if case.kind == "invalid":
            scored = stored
        else:
            spec = reference.normalize(case.spec)
            check = seeded if drawn else materialize_arrays(spec, stored.inputs, stored.weights, stored.output_grad,
                                                            dtype, DEFAULT_TOLERANCE)
            if not _stored_agrees(stored, check):
                prov.doctored.append(case.id)
            scored = check if tolerance_mode == DEFAULT_TOLERANCE else materialize_arrays(
                spec, stored.inputs, stored.weights, stored.output_grad, dtype, tolerance_mode)
        digest.update(case.id.encode())
        for array in (scored.inputs, scored.output_grad, *(scored.weights[k] for k in sorted(scored.weights))):
            if array is not None:
                digest.update(np.ascontiguousarray(array, np.float64).tobytes())
        out.append((case, scored))
    prov.content_id = digest.hexdigest()[:16]
    return out, prov

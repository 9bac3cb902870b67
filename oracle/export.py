"""Write a case set as language-neutral files: one JSON index plus ``.npy`` arrays.

Layout of ``directory``::

    index.json                  format_version 2: corpus id, profile, dtype, the storage
                                dtype of each kind of array (``arrays``), and per case: id,
                                layer, spec, input_shape, kind, gradient, and the file name
                                of every array (relative to directory)
    <case id>/inputs.npy        the input, in the storage dtype of ``dtype`` (below)
    <case id>/weights.<name>.npy
    <case id>/output_grad.npy   (valid cases)
    <case id>/expected_output.npy, expected_gradient.<name>.npy   float64
    <case id>/allowed_output.npy,  allowed_gradient.<name>.npy    float64

The arrays an implementation is given (inputs, weights, output_grad) are stored in the dtype
the case set is for, so a reader that loads them as they are runs the dtype under test:
float32 and float16 as themselves (``<f4``, ``<f2``), float64 as ``<f8``. NumPy's ``.npy``
has no bfloat16 that a C or JavaScript reader can load (ml_dtypes writes an opaque ``|V2``),
so a bfloat16 case set stores them as float32 whose values are all exactly bfloat16: the top
16 bits of each float32 are the bfloat16 value and the low 16 bits are zero. The expected
values and allowed errors are the float64 reference's, whatever the dtype. All arrays are
little-endian C-order ``.npy`` (format 1.0, no pickle): readable by any language with an npy
reader. An implementation passes an element when ``|actual - expected| <= allowed``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conv_conformance.vocabulary import DTYPES

from .case import corpus_id
from .cases import case_set
from .materialize import Materialized, materialize

__all__ = ["FORMAT_VERSION", "GIVEN", "storage_dtype", "export"]

FORMAT_VERSION = 2

#: The arrays an implementation is given; every other array is float64.
GIVEN = ("inputs", "weights", "output_grad")

# bfloat16 has no .npy dtype a reader outside NumPy + ml_dtypes can load; float32 holds every
# bfloat16 value exactly.
_STORAGE = {"float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "float32"}


def storage_dtype(dtype: str) -> str:
    """The dtype of the given arrays' ``.npy`` files in an export of a ``dtype`` case set."""
    return _STORAGE[dtype]


def _given(name: str) -> bool:
    return name.split(".", 1)[0] in GIVEN


def _save(directory: Path, case_dir: str, name: str, array: np.ndarray, storage: str) -> str:
    rel = f"{case_dir}/{name}.npy"
    if _given(name):
        stored = np.asarray(array).astype(np.dtype(storage).newbyteorder("<"))
        # the drawn values are exact in the case set's dtype, so storing them loses nothing
        if not np.array_equal(stored.astype(np.float64), array):
            raise ValueError(f"{rel}: the values are not exact in {storage}")
    else:
        stored = np.asarray(array, dtype="<f8")
    np.save(directory / rel, np.ascontiguousarray(stored), allow_pickle=False)
    return rel


def _storage_fields(dtype: str) -> dict[str, str]:
    """What index.json says of the arrays' dtypes, so that no reader has to guess."""
    storage = storage_dtype(dtype)
    held = (f"inputs, weights.* and output_grad are {storage}" + (
        f" holding only {dtype} values (the top 16 bits of each float32 are the {dtype} value, the "
        f"low 16 bits are zero)" if storage != dtype else "") + "; expected_* and allowed_* are float64, "
        "the float64 reference's values and allowed errors")
    return {"storage_dtype": storage, "reference_dtype": "float64", "storage": held}


def _arrays(m: Materialized) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"inputs": m.inputs}
    out |= {f"weights.{k}": v for k, v in m.weights.items()}
    if m.output_grad is not None:
        out["output_grad"] = m.output_grad
    if m.expected_output is not None:
        out["expected_output"] = m.expected_output
        out["allowed_output"] = m.allowed_output
    for k, v in (m.expected_gradients or {}).items():
        out[f"expected_gradient.{k}"] = v
        out[f"allowed_gradient.{k}"] = m.allowed_gradients[k]
    return out


def export(profile: str, directory: str | Path, *, dtype: str = "float32",
           layers: list[str] | None = None) -> Path:
    """Materialize every case of ``profile`` at ``dtype`` into ``directory``;
    returns the path of ``index.json``."""
    if dtype not in DTYPES:
        raise ValueError(f"Argument `dtype` must be one of {', '.join(map(repr, DTYPES))}. "
                         f"Received: dtype={dtype!r}")
    cases = case_set(profile, layers=layers)
    storage = storage_dtype(dtype)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for case in cases:
        (directory / case.id).mkdir(exist_ok=True)
        files = {name: _save(directory, case.id, name, a, storage)
                 for name, a in _arrays(materialize(case, dtype)).items()}
        entries.append(case.to_json() | {"files": files})
    index = {"format_version": FORMAT_VERSION, "corpus_id": corpus_id(cases), "profile": profile,
             "dtype": dtype, **_storage_fields(dtype), "comparison": "abs(actual - expected) <= allowed, elementwise",
             "cases": entries}
    path = directory / "index.json"
    path.write_text(json.dumps(index, indent=1, sort_keys=True))
    return path

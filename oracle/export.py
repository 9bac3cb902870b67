"""Write a case set as language-neutral files: one JSON index plus ``.npy`` arrays.

Layout of ``directory``::

    index.json                  corpus id, profile, dtype, and per case: id, layer,
                                spec, input_shape, kind, gradient, and the file
                                name of every array (relative to directory)
    <case id>/inputs.npy        the input, float64 (values exact in `dtype`)
    <case id>/weights.<name>.npy
    <case id>/output_grad.npy   (valid cases)
    <case id>/expected_output.npy, expected_gradient.<name>.npy
    <case id>/allowed_output.npy,  allowed_gradient.<name>.npy

Arrays are float64 C-order ``.npy`` (format 1.0, no pickle): readable by any
language with an npy reader. An implementation passes an element when
``|actual - expected| <= allowed``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conv_conformance.vocabulary import DTYPES

from .case import corpus_id
from .cases import case_set
from .materialize import Materialized, materialize

__all__ = ["FORMAT_VERSION", "export"]

FORMAT_VERSION = 1


def _save(directory: Path, case_dir: str, name: str, array: np.ndarray) -> str:
    rel = f"{case_dir}/{name}.npy"
    np.save(directory / rel, np.ascontiguousarray(array, dtype=np.float64), allow_pickle=False)
    return rel


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
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for case in cases:
        (directory / case.id).mkdir(exist_ok=True)
        files = {name: _save(directory, case.id, name, a) for name, a in _arrays(materialize(case, dtype)).items()}
        entries.append(case.to_json() | {"files": files})
    index = {"format_version": FORMAT_VERSION, "corpus_id": corpus_id(cases), "profile": profile,
             "dtype": dtype, "comparison": "abs(actual - expected) <= allowed, elementwise",
             "cases": entries}
    path = directory / "index.json"
    path.write_text(json.dumps(index, indent=1, sort_keys=True))
    return path

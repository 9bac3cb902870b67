"""A conformance case: a normalized layer spec on an input shape, with a stable id.

Ids are the sha256 of the canonical JSON of (spec, input_shape, kind, seed): the same on
every machine and process. :func:`corpus_id` hashes the ordered ids of a whole set.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["Case", "make_case", "corpus_id"]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _sha(obj: Any) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()


@dataclass(frozen=True)
class Case:
    """One conformance case: a layer configuration on an input shape."""

    id: str
    layer: str
    spec: dict
    input_shape: tuple[int, ...]
    kind: str
    seed: int
    gradient: bool
    meta: dict | None = None  # where the case comes from (networks profile: models and layers)

    def to_json(self) -> dict:
        """A JSON-ready dict (lists for tuples); ``meta`` only when the case has one."""
        out = {"id": self.id, "layer": self.layer, "spec": self.spec, "input_shape": list(self.input_shape),
               "kind": self.kind, "seed": self.seed, "gradient": self.gradient}
        return out if self.meta is None else out | {"meta": self.meta}

    @classmethod
    def from_json(cls, d: dict) -> Case:
        """The inverse of :meth:`to_json`."""
        return cls(id=d["id"], layer=d["layer"], spec=d["spec"], input_shape=tuple(d["input_shape"]),
                   kind=d["kind"], seed=int(d["seed"]), gradient=bool(d["gradient"]), meta=d.get("meta"))


def make_case(spec: dict, input_shape: Sequence[int], kind: str) -> Case:
    """A Case with its seed and id derived from (spec, input_shape, kind)."""
    if kind not in ("valid", "invalid"):
        raise ValueError(f"Argument `kind` must be one of 'valid', 'invalid'. Received: kind={kind!r}")
    shape = [int(v) for v in input_shape]
    seed = int(_sha({"spec": spec, "input_shape": shape, "kind": kind})[:8], 16)
    digest = _sha({"spec": spec, "input_shape": shape, "kind": kind, "seed": seed})[:12]
    return Case(id=f"{spec['class_name']}-{digest}", layer=spec["class_name"], spec=spec,
                input_shape=tuple(shape), kind=kind, seed=seed, gradient=kind == "valid")


def corpus_id(cases: Sequence[Case]) -> str:
    """sha256 (first 16 hex digits) of the ordered case ids of a set."""
    return hashlib.sha256("\n".join(c.id for c in cases).encode()).hexdigest()[:16]

"""Which argument values and pairs of values a case set covers, per layer.

The factors and their values are those of :func:`oracle.cases.domains`
(arguments only; the ``shape`` pseudo-factor is not recoverable from a case).
A pair is *required* when :func:`oracle.cases.compatible` allows it, i.e.
Keras accepts some configuration containing it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from .cases import Case, compatible, domains

__all__ = ["LayerCoverage", "coverage", "summary"]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass
class LayerCoverage:
    """Coverage of one layer's argument values and pairs by the valid cases of a set."""

    layer: str
    cases: int
    values: dict[str, set[str]] = field(default_factory=dict)       # argument -> covered values (JSON)
    missing_values: dict[str, set[str]] = field(default_factory=dict)
    pairs: int = 0                                                   # covered required pairs
    required_pairs: int = 0
    missing_pairs: list[tuple[tuple[str, str], tuple[str, str]]] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready summary."""
        return {"layer": self.layer, "cases": self.cases,
                "values": {k: sorted(v) for k, v in self.values.items()},
                "missing_values": {k: sorted(v) for k, v in self.missing_values.items() if v},
                "pairs": self.pairs, "required_pairs": self.required_pairs,
                "missing_pairs": [list(map(list, p)) for p in self.missing_pairs]}


def coverage(cases: Sequence[Case], layer: str) -> LayerCoverage:
    """The argument values and required pairs of values of ``layer`` that the
    valid cases of ``cases`` cover."""
    dom = {k: v for k, v in domains(layer).items() if k != "shape"}
    names = list(dom)
    rows = [c.spec["config"] for c in cases if c.layer == layer and c.kind == "valid"]
    out = LayerCoverage(layer, len(rows))
    seen_pairs = set()
    for cfg in rows:
        keys = [(n, _key(cfg.get(n))) for n in names]
        for n, k in keys:
            out.values.setdefault(n, set()).add(k)
        seen_pairs.update((a, b) for i, a in enumerate(keys) for b in keys[i + 1:])
    for n in names:
        out.missing_values[n] = {_key(v) for v in dom[n]} - out.values.get(n, set())
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for va in dom[a]:
                for vb in dom[b]:
                    if not compatible(layer, {a: va, b: vb}):
                        continue
                    out.required_pairs += 1
                    pair = ((a, _key(va)), (b, _key(vb)))
                    if pair in seen_pairs:
                        out.pairs += 1
                    else:
                        out.missing_pairs.append(pair)
    return out


def summary(cases: Sequence[Case]) -> dict[str, dict]:
    """Per layer present in ``cases``: :meth:`LayerCoverage.to_json`."""
    layers = sorted({c.layer for c in cases})
    return {name: coverage(cases, name).to_json() for name in layers}

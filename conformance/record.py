"""The record of one scored case (a ``report.json`` case), and its one decoder.

    CaseResult.for_case(case, dtype)        # an empty record carrying the case's identity
    CaseResult.from_json(record)            # the record report.json, a partial file or a pytest report holds
    lost(case, dtype, verdict, why)         # a case whose scoring never returned (timeout, crash)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from conv_conformance import reference
from conv_conformance.vocabulary import TRAINING_CATEGORIES, worst_verdict

from .calls import describe_call

__all__ = ["CaseResult", "lost", "training_applies"]

_WEIGHTED = ("conv", "conv_transpose", "depthwise", "separable")


def training_applies(case: Any) -> bool:
    """The training-time categories apply to valid cases of layers with weights."""
    return case.kind == "valid" and reference.LAYERS[case.layer].family in _WEIGHTED


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
        extra = TRAINING_CATEGORIES if training_applies(case) else ()
        return (("shape", "output", "gradient") if case.gradient else ("shape", "output")) + extra

    @classmethod
    def from_json(cls, record: dict) -> "CaseResult":
        """The CaseResult that writes back exactly ``record`` (a report.json case, where
        non-finite ratios are the strings "inf", "-inf", "nan"; unknown keys are ignored)."""
        fields = {k: v for k, v in record.items() if k in _FIELDS}
        for key in ("worst_ratio", "strict_ratio"):
            if isinstance(fields.get(key), dict):
                fields[key] = {k: (float(v) if isinstance(v, str) else v) for k, v in fields[key].items()}
        return cls(**fields)


_FIELDS = {f.name for f in dataclasses.fields(CaseResult)}


def lost(case: Any, dtype: str, verdict: str, why: str, seconds: float = 0.0) -> CaseResult:
    """The record of a case whose scoring never returned: ``verdict`` in each of its categories."""
    result = CaseResult.for_case(case, dtype, message=f"{why} [{describe_call(case.spec, case.input_shape, dtype)}]",
                                 seconds=seconds)
    for category in CaseResult.categories_of(case):
        result.verdicts[category] = verdict
    return result

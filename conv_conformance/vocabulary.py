"""The words every part of the suite shares, defined once: dtypes, profiles, tolerance modes,
categories and verdicts.

This module sits below the four packages (it imports only the standard library), so the
reference, the oracle, the harness, the reports and the command line all read the same
tuples. Order is meaningful where it is stated: :data:`DTYPES` seeds each case's random draws
by index, :data:`VERDICTS` runs from best to worst.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

__all__ = ["DTYPES", "CORE_DTYPE", "PROFILES", "TOLERANCE_MODES", "DEFAULT_TOLERANCE", "CATEGORIES",
           "TRAINING_CATEGORIES", "VERDICTS", "FAILING", "PASSING", "SEVERITY", "worst_verdict"]

#: Array dtypes a case can be drawn in. A case's arrays are drawn from the generator seeded with
#: ``[case.seed, DTYPES.index(dtype)]``, so this order is part of every corpus: never reorder it.
DTYPES = ("float64", "float32", "float16", "bfloat16")
#: The dtype every implementation must support; the others are optional features.
CORE_DTYPE = "float32"
#: Case sets, smallest first (oracle.cases).
PROFILES = ("smoke", "standard", "exhaustive", "networks")
#: How the allowed error of each element is derived (oracle.tolerance; docs/tolerance.md).
TOLERANCE_MODES = ("rigorous", "probabilistic")
DEFAULT_TOLERANCE = "rigorous"

#: The categories the training-time arguments are scored in (conformance.training).
TRAINING_CATEGORIES = ("initializer", "regularizer", "constraint")
#: Every category a case can be scored in, in report order.
CATEGORIES = ("shape", "output", "gradient", "error_behaviour", "determinism", *TRAINING_CATEGORIES)

#: Verdicts from best to worst; a case's overall verdict is the worst of its categories.
#: ``quality_warning``: within the rigorous bound, outside the strict one (allowed, reported).
#: ``waived``: a failing category a valid waiver covers (allowed, listed).
#: ``mutation``: the call wrote into an array the caller passed or returned a view of one; it
#: outranks fail whatever the values were.
#: ``nondeterministic``: identical calls gave different results, at least one of them wrong.
VERDICTS = ("pass", "unsupported", "quality_warning", "waived", "fail", "mutation", "nondeterministic",
            "error", "timeout", "crash")
#: Verdicts that make an implementation non-conformant.
FAILING = frozenset({"fail", "mutation", "nondeterministic", "error", "timeout", "crash"})
#: Verdicts a conformant run may hold (``unsupported`` only where no declaration forbids it).
PASSING = frozenset(VERDICTS) - FAILING
#: Each verdict's rank in :data:`VERDICTS`.
SEVERITY = {v: i for i, v in enumerate(VERDICTS)}


def worst_verdict(verdicts: Mapping[str, str] | Iterable[str] | Any) -> str:
    """The most severe of some verdicts (crash > timeout > error > nondeterministic > mutation >
    fail > waived > quality_warning > unsupported > pass); ``pass`` for none."""
    values = list(verdicts.values() if isinstance(verdicts, Mapping) else verdicts)
    return max(values, key=SEVERITY.__getitem__) if values else "pass"

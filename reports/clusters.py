"""Failure clustering: group a run's failures by signature.

A failure is a (case, category) whose verdict is fail, error, timeout or crash.
Two kinds of signature:

* **exception**: the adapter raised (verdict error, timeout or crash with an
  exception recorded). Signature = verdict + exception type + the message
  with numbers, shapes, quoted names and addresses replaced by placeholders,
  so ``shape (2, 5, 5, 3)`` and ``shape (1, 7, 7, 4)`` cluster together.
  One entry per case, whatever the number of categories it took down.
* **mismatch**: a wrong result (fail), or an error/timeout/crash with no
  exception. Signature = verdict + category + layer + an argument pattern:
  a conjunction of at most two ``argument=value`` conditions that every
  member satisfies and no case of that layer scored pass in that category
  satisfies ("Conv2D output fails when padding='same' and strides=[2, 2]").
  Patterns are chosen greedily: largest cover first, then fewest conditions,
  then the condition rarest among the layer's cases. Failures no pure pattern
  explains form one cluster with the empty pattern.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import CATEGORIES, FAILING, real

__all__ = ["Cluster", "Member", "arguments", "signature_message", "clusters"]

# Config keys that never explain a failure pattern (they do not change the math).
_NOT_ARGUMENTS = frozenset({"name", "trainable", "dtype"})
_MAX_CONDITIONS = 2


@dataclass(frozen=True)
class Member:
    """One failing case in a cluster and the categories it fails in."""
    case: dict
    categories: tuple[str, ...]

    @property
    def worst_ratio(self) -> float | None:
        """Largest worst error ratio over this member's categories (None if none computed)."""
        ratios = [real((self.case.get("worst_ratio") or {}).get(c)) for c in self.categories]
        ratios = [r for r in ratios if r is not None]
        return max(ratios, key=_ratio_key) if ratios else None


@dataclass
class Cluster:
    """Failures sharing one signature."""
    kind: str                      # "exception" | "mismatch"
    verdict: str                   # fail | error | timeout | crash
    title: str                     # one line a person reads
    categories: tuple[str, ...]
    pattern: dict[str, str] = field(default_factory=dict)   # argument -> value (mismatch)
    exception_type: str | None = None
    members: list[Member] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Stable short id of the signature (same failures -> same key across runs)."""
        sig = [self.kind, self.verdict, self.title]
        return hashlib.sha1(json.dumps(sig).encode()).hexdigest()[:10]

    @property
    def layers(self) -> list[str]:
        return sorted({m.case["layer"] for m in self.members})

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def worst_ratio(self) -> float | None:
        ratios = [m.worst_ratio for m in self.members if m.worst_ratio is not None]
        return max(ratios, key=_ratio_key) if ratios else None


def _ratio_key(x: float) -> float:
    return math.inf if math.isnan(x) else x


def _value_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)


def arguments(case: dict) -> dict[str, str]:
    """A case's layer arguments as ``{name: display value}`` (``'same'``, ``[2, 2]``,
    ``true``), from its spec config; only arguments that can change the result."""
    config = case.get("spec", {}).get("config", {}) or {}
    return {k: _value_text(v) for k, v in sorted(config.items()) if k not in _NOT_ARGUMENTS}


_NORMALIZERS = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"(['\"`])[^'\"`\n]{0,80}\1"), r"\1…\1"),
    (re.compile(r"(?<![\w.])[-+]?\d+(\.\d+)?([eE][-+]?\d+)?(?!\w)"), "N"),
    (re.compile(r"\s+"), " "),
]


def signature_message(message: str, limit: int = 160) -> str:
    """An exception message with the parts that vary between cases removed:
    hex addresses, quoted strings and numbers become placeholders, whitespace is
    collapsed, the first line of at most ``limit`` characters is kept."""
    text = (message or "").strip().split("\n", 1)[0]
    for pattern, repl in _NORMALIZERS:
        text = pattern.sub(repl, text)
    return text[:limit] + ("…" if len(text) > limit else "")


def _failures(case: dict) -> list[str]:
    return [c for c in CATEGORIES if case["verdicts"].get(c) in FAILING]


def clusters(report: dict) -> list[Cluster]:
    """Every failure of ``report`` in exactly one cluster, largest cluster first."""
    by_exception: dict[tuple, Cluster] = {}
    mismatches: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for case in report["cases"]:
        failing = _failures(case)
        if not failing:
            continue
        exc = case.get("exception")
        raised = [c for c in failing if case["verdicts"][c] in ("error", "timeout", "crash")]
        if exc and raised:
            verdict = max((case["verdicts"][c] for c in raised), key=("error", "timeout", "crash").index)
            msg = signature_message(exc.get("message", ""))
            key = (verdict, exc.get("type", "?"), msg)
            if key not in by_exception:
                title = f"{exc.get('type', '?')}: {msg}" if msg else exc.get("type", "?")
                by_exception[key] = Cluster("exception", verdict, title, (), exception_type=exc.get("type"))
            by_exception[key].members.append(Member(case, tuple(raised)))
            failing = [c for c in failing if c not in raised]
        for cat in failing:
            mismatches[(case["verdicts"][cat], cat, case["layer"])].append(case)

    out = list(by_exception.values())
    for cl in out:
        cl.categories = tuple(c for c in CATEGORIES if any(c in m.categories for m in cl.members))
    for (verdict, cat, layer), failed in sorted(mismatches.items()):
        same_layer = [c for c in report["cases"] if c["layer"] == layer]
        out.extend(_mismatch_clusters(verdict, cat, layer, failed, same_layer))
    out.sort(key=lambda c: (-c.size, c.title))
    return out


def _conditions(args: set) -> set[tuple]:
    items = sorted(args)
    return {c for n in range(1, _MAX_CONDITIONS + 1) for c in itertools.combinations(items, n)}


def _mismatch_clusters(verdict: str, category: str, layer: str,
                       failed: list[dict], same_layer: list[dict]) -> Iterable[Cluster]:
    """Split ``failed`` (same verdict, category, layer) by pure argument patterns;
    ``same_layer`` is every case of the layer."""
    passed = [c for c in same_layer if c["verdicts"].get(category) == "pass"]
    if not passed:
        yield Cluster("mismatch", verdict, _mismatch_title(verdict, category, layer, {}, False),
                      (category,), members=[Member(c, (category,)) for c in failed])
        return
    impure = set().union(*(_conditions(set(arguments(c).items())) for c in passed))
    # how common a condition is in the layer: among patterns of equal cover,
    # the rarest says most (strides=[0, 0] rather than padding='valid')
    frequency = Counter(cond for c in same_layer for cond in _conditions(set(arguments(c).items())))
    remaining = [(c, _conditions(set(arguments(c).items())) - impure) for c in failed]
    while remaining:
        cover = Counter(cond for _, conds in remaining for cond in conds)
        if not cover:
            # nothing separates these failures from the passes
            yield Cluster("mismatch", verdict, _mismatch_title(verdict, category, layer, {}, True),
                          (category,), members=[Member(c, (category,)) for c, _ in remaining])
            return
        # most cases covered, then fewest conditions, then a stable order
        best = min(cover, key=lambda cond: (-cover[cond], len(cond), frequency[cond], cond))
        pattern = dict(best)
        yield Cluster("mismatch", verdict, _mismatch_title(verdict, category, layer, pattern, True),
                      (category,), pattern=pattern,
                      members=[Member(c, (category,)) for c, conds in remaining if best in conds])
        remaining = [(c, conds) for c, conds in remaining if best not in conds]


def _mismatch_title(verdict: str, category: str, layer: str, pattern: dict, any_pass: bool) -> str:
    what = {"fail": "fails", "mutation": "writes into the caller's arrays",
            "nondeterministic": "is nondeterministic", "error": "errors",
            "timeout": "times out", "crash": "crashes"}[verdict]
    if pattern:
        where = "when " + " and ".join(f"{k}={v}" for k, v in pattern.items())
    else:
        where = "(no argument pattern)" if any_pass else "in every case"
    return f"{layer} {category.replace('_', ' ')} {what} {where}"

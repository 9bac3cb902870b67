"""Failure clustering: group a run's failures by root cause.

A failure is a (case, category) whose verdict is fail, mutation, nondeterministic,
error, timeout or crash. Two kinds of cluster:

* **exception**: the adapter raised (verdict error, timeout or crash with an
  exception recorded). Signature = verdict + exception type + the message
  with numbers, shapes, quoted names and addresses replaced by placeholders,
  so ``shape (2, 5, 5, 3)`` and ``shape (1, 7, 7, 4)`` cluster together, in
  whatever layer they were raised. One entry per case, whatever the number of
  categories it took down.
* **mismatch**: a wrong result, or an error/timeout/crash with no exception.
  A cluster is named by a *condition*: a conjunction of at most two
  ``feature=value`` terms over the case's layer arguments, its layer class and
  its batch size. A condition may name a cluster in a category when at least
  one failure of that category satisfies it and no case that passed that
  category does; the cluster then holds every such failure, across layers,
  categories and verdicts ("output, gradient fail when activation='selu'").
  Conditions are chosen greedily: largest cover first, then fewest terms, then
  the condition fewest of the run's cases satisfy, then a fixed order, so the
  same report always gives the same clusters. The empty condition names the
  failures of a category no case passed ("in every case").
  Real failures are often not that clean (a wrong activation can still land
  within tolerance on some inputs), so what no exact condition explains is
  covered the same way by conditions that more of the cases satisfying them
  fail than pass, titled "mostly when ... (N passing cases match too)"; an
  exact cluster whose condition refines such a condition (``activation='sparsemax'
  and strides=[2, 2]`` under ``activation='sparsemax'``) joins it.
  Failures still left form one cluster per category and verdict with the
  empty pattern ("no argument pattern").

A pass on an empty input (batch 0) clears nothing in the categories that compare
values: whatever an implementation computes, an empty array matches.

Arguments that cannot change what a category measures never name a cluster in
it: names and dtype nowhere; initializers, regularizers and constraints only in
their own training category and in error behaviour (an invalid configuration
may be invalid because of one of them).
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from . import CATEGORIES, FAILING, VERDICTS, real

__all__ = ["Cluster", "Member", "arguments", "features", "signature_message", "clusters"]

# Config keys that never explain a failure (they do not change the math).
_NOT_ARGUMENTS = frozenset({"name", "trainable", "dtype"})
# Argument families that matter only to their own training category (and to error behaviour).
_FAMILIES = ("initializer", "regularizer", "constraint")
_MAX_CONDITIONS = 2
# Features that are not layer arguments: the layer class and the batch size of the input.
LAYER, BATCH = "layer", "batch"
_RAISED = ("error", "timeout", "crash")
# Categories that compare computed values (an empty input gives nothing to compare).
_VALUES = frozenset({"output", "gradient", "determinism"})


@dataclass(frozen=True)
class Member:
    """One failing case in a cluster and the categories it fails in there."""
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
    """Failures sharing one cause: one exception signature, or one condition."""
    kind: str                      # "exception" | "mismatch"
    verdict: str                   # the worst verdict among the members
    title: str                     # one line a person reads
    categories: tuple[str, ...]
    pattern: dict[str, str] = field(default_factory=dict)   # feature -> display value (mismatch)
    exception_type: str | None = None
    members: list[Member] = field(default_factory=list)
    verdicts: tuple[str, ...] = ()  # every verdict among the members, best first
    exact: bool = False            # mismatch: no passing case satisfies the pattern

    @property
    def key(self) -> str:
        """Stable short id of the signature (same failures -> same key across runs)."""
        sig = [self.kind, self.verdict, self.title]
        return hashlib.sha1(json.dumps(sig).encode()).hexdigest()[:10]

    @property
    def condition(self) -> str:
        """The pattern as one line: ``activation='selu'``, ``layer=Conv2D and padding='same'``."""
        return " and ".join(f"{k}={v}" for k, v in self.pattern.items())

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


def _family(argument: str) -> str | None:
    return next((f for f in _FAMILIES if argument.endswith("_" + f)), None)


def features(case: dict, category: str) -> dict[str, str]:
    """What may explain a failure of ``case`` in ``category``: its arguments that can
    change what the category measures, its layer class and its batch size."""
    out = {k: v for k, v in arguments(case).items()
           if category == "error_behaviour" or _family(k) in (None, category)}
    out[LAYER] = case["layer"]
    shape = case.get("input_shape")
    if shape:
        out[BATCH] = str(shape[0])
    return out


_NORMALIZERS = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),
    (re.compile(r"(['\"`])[^'\"`\n]{0,80}\1"), r"\1…\1"),
    (re.compile(r"(?<![\w.])[-+]?\d+(\.\d+)?([eE][-+]?\d+)?(?!\w)"), "N"),
    (re.compile(r"\s+"), " "),
]


# Keras wraps what a layer raised in a first line naming the layer ("Exception encountered
# when calling Conv1D.call().", Keras 2: "... calling layer 'conv1d_3' (type Conv1D).") or
# echoing its whole config (Keras 2's "Error when deserializing class ..."); the cause is the
# line after it. TensorFlow adds the device an op ran on and the op's name in the graph.
_KERAS_WRAPPER = re.compile(r"^(Exception encountered when calling .*"
                            r"|Error when deserializing class .* using config=.*)$")
_KERAS_CAUSE = re.compile(r"^Exception encountered: ")
_TF_DEVICE = re.compile(r"_device_/job:[^}]*")
_TF_OP_NAME = re.compile(r"(\[Op:\w+\]) name:.*$")


def signature_message(message: str, limit: int = 160) -> str:
    """An exception message with the parts that vary between cases removed:
    hex addresses, quoted strings and numbers become placeholders, whitespace is
    collapsed, the first line of at most ``limit`` characters is kept (the line
    after a Keras wrapper such as "Exception encountered when calling X.call().")."""
    lines = [line.strip() for line in (message or "").strip().split("\n") if line.strip()]
    if len(lines) > 1 and _KERAS_WRAPPER.match(lines[0]):
        lines = [_KERAS_CAUSE.sub("", lines[1])]
    text = _TF_OP_NAME.sub(r"\1", _TF_DEVICE.sub("", lines[0])) if lines else ""
    for pattern, repl in _NORMALIZERS:
        text = pattern.sub(repl, text)
    return text[:limit] + ("…" if len(text) > limit else "")


def _failures(case: dict) -> list[str]:
    return [c for c in CATEGORIES if case["verdicts"].get(c) in FAILING]


def clusters(report: dict) -> list[Cluster]:
    """Every failure of ``report`` in exactly one cluster, largest cluster first."""
    by_exception: dict[tuple, Cluster] = {}
    units: list[tuple[int, str]] = []          # mismatch failures as (case index, category)
    for i, case in enumerate(report["cases"]):
        failing = _failures(case)
        if not failing:
            continue
        exc = case.get("exception")
        raised = [c for c in failing if case["verdicts"][c] in _RAISED]
        if exc and raised:
            verdict = max((case["verdicts"][c] for c in raised), key=_RAISED.index)
            msg = signature_message(exc.get("message", ""))
            key = (verdict, exc.get("type", "?"), msg)
            if key not in by_exception:
                title = f"{exc.get('type', '?')}: {msg}" if msg else exc.get("type", "?")
                by_exception[key] = Cluster("exception", verdict, title, (), exception_type=exc.get("type"),
                                            verdicts=(verdict,))
            by_exception[key].members.append(Member(case, tuple(raised)))
            failing = [c for c in failing if c not in raised]
        units.extend((i, cat) for cat in failing)

    out = list(by_exception.values())
    for cl in out:
        cl.categories = tuple(c for c in CATEGORIES if any(c in m.categories for m in cl.members))
    out.extend(_mismatch_clusters(report["cases"], units))
    out.sort(key=lambda c: (-c.size, c.title))
    return out


class _Index:
    """Which cases have which feature, per category, as bit sets over case indices, so
    that "how many cases that passed this category satisfy this condition" is an AND
    of a few integers and a bit count."""

    def __init__(self, cases: list[dict], units: Iterable[tuple[int, str]]):
        self.cases = cases
        self._units = set(units)
        self._features: dict[tuple[int, str], dict[str, str]] = {}
        self._bits: dict[tuple[str, bool], tuple[int, dict[tuple[str, str], int]]] = {}
        self._all: dict[tuple[str, str], int] = defaultdict(int)
        for i, case in enumerate(cases):
            for term in arguments(case).items():
                self._all[term] |= 1 << i
            self._all[(LAYER, case["layer"])] |= 1 << i
            if case.get("input_shape"):
                self._all[(BATCH, str(case["input_shape"][0]))] |= 1 << i

    def features(self, i: int, category: str) -> dict[str, str]:
        key = (i, category)
        if key not in self._features:
            self._features[key] = features(self.cases[i], category)
        return self._features[key]

    def _scored(self, category: str, failed: bool) -> tuple[int, dict[tuple[str, str], int]]:
        """The cases that passed ``category`` (``failed`` False) or hold one of the units
        failing it, and per feature term the subset that has it."""
        key = (category, failed)
        if key not in self._bits:
            bits: dict[tuple[str, str], int] = defaultdict(int)
            every = 0
            for i, case in enumerate(self.cases):
                if ((i, category) in self._units) if failed else _witness(case, category):
                    every |= 1 << i
                    for term in self.features(i, category).items():
                        bits[term] |= 1 << i
            self._bits[key] = (every, bits)
        return self._bits[key]

    def count(self, condition: tuple, category: str, failed: bool) -> int:
        """How many cases that passed ``category`` (or hold a unit failing it) satisfy ``condition``."""
        mask, bits = self._scored(category, failed)
        for term in condition:
            mask &= bits.get(term, 0)
        return mask.bit_count()

    def passing(self, condition: tuple, categories: Iterable[str]) -> int:
        """How many cases satisfy ``condition`` and passed one of ``categories``."""
        mask = 0
        for category in categories:
            every, bits = self._scored(category, False)
            for term in condition:
                every &= bits.get(term, 0)
            mask |= every
        return mask.bit_count()

    def frequency(self, condition: tuple) -> int:
        """How many of the run's cases satisfy ``condition`` (all cases for the empty one)."""
        mask = (1 << len(self.cases)) - 1
        for term in condition:
            mask &= self._all.get(term, 0)
        return mask.bit_count()


def _witness(case: dict, category: str) -> bool:
    """Whether ``case`` passing ``category`` says a condition it satisfies is harmless: a
    value compared on an empty input (batch 0) is right whatever the implementation
    computes, so such a pass does not clear a wrong activation or a wrong formula."""
    if case["verdicts"].get(category) != "pass":
        return False
    return category not in _VALUES or 0 not in (case.get("input_shape") or [1])


def _conditions(terms: dict[str, str]) -> list[tuple]:
    items = sorted(terms.items())
    return [c for n in range(0, _MAX_CONDITIONS + 1) for c in itertools.combinations(items, n)]


def _cover(index: _Index, units: Iterable[tuple[int, str]],
           admits: Callable[[tuple, str], bool]) -> tuple[list[tuple[tuple, list]], set]:
    """Greedy set cover of ``units`` by the conditions ``admits`` allows in a unit's category:
    ``[(condition, units covered)]`` in the order chosen, and the units left over."""
    holders: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    for unit in units:
        for cond in _conditions(index.features(*unit)):
            if admits(cond, unit[1]):
                holders[cond].append(unit)

    def rank(cond: tuple, cover: int) -> tuple:
        # most failures covered, then fewest terms, then the rarest condition
        # (strides=[0, 0] says more than padding='valid'), then a fixed order
        return (-cover, len(cond), index.frequency(cond), cond)

    heap = [rank(c, len(us)) for c, us in holders.items()]
    heapq.heapify(heap)
    left = set(units)
    chosen = []
    while heap:
        entry = heapq.heappop(heap)
        cond = entry[-1]
        covered = [u for u in holders[cond] if u in left]
        if not covered:
            continue
        if len(covered) != -entry[0]:     # stale cover: put it back with the current one
            heapq.heappush(heap, rank(cond, len(covered)))
            continue
        left.difference_update(covered)
        chosen.append((cond, covered))
    return chosen, left


def _mismatch_clusters(cases: list[dict], units: list[tuple[int, str]]) -> list[Cluster]:
    """Exact conditions first (no passing case satisfies them); what they leave, by
    conditions most cases of which fail; what is still left, by category and verdict."""
    index = _Index(cases, units)
    cache: dict[tuple, bool] = {}

    def exact(cond: tuple, category: str) -> bool:
        return index.count(cond, category, failed=False) == 0

    def mostly(cond: tuple, category: str) -> bool:
        if (cond, category) not in cache:
            passed = index.count(cond, category, failed=False)
            cache[cond, category] = passed < index.count(cond, category, failed=True)
        return cache[cond, category]

    out = []
    exact_chosen, left = _cover(index, units, exact)
    chosen, left = _cover(index, sorted(left), mostly)
    for cond, us in exact_chosen:
        # an exact refinement of a cause that is only mostly exact ("selu and strides=[2, 2]"
        # beside "mostly when selu") is a part of that cause, not a cause of its own
        broader = next((us2 for cond2, us2 in chosen if cond2 and set(cond2) < set(cond)
                        and all(mostly(cond2, cat) for _, cat in us)), None)
        if broader is None:
            out.append(_cluster(cases, us, dict(cond), None))
        else:
            broader.extend(us)
    for cond, us in chosen:
        passing = index.passing(cond, {cat for _, cat in us})
        out.append(_cluster(cases, sorted(us), dict(cond), passing))
    by_symptom: dict[tuple[str, str], list] = defaultdict(list)
    for unit in sorted(left):
        by_symptom[(cases[unit[0]]["verdicts"][unit[1]], unit[1])].append(unit)
    out.extend(_cluster(cases, us, None, None) for _, us in sorted(by_symptom.items()))
    return out


def _cluster(cases: list[dict], units: list[tuple[int, str]], pattern: dict | None,
             passing: int | None) -> Cluster:
    """A mismatch cluster of ``units``: ``pattern`` None when no condition explains
    them, ``passing`` the number of passing cases the (inexact) condition also holds for."""
    per_case: dict[int, list[str]] = defaultdict(list)
    for i, cat in units:
        per_case[i].append(cat)
    members = [Member(cases[i], tuple(c for c in CATEGORIES if c in cats)) for i, cats in sorted(per_case.items())]
    categories = tuple(c for c in CATEGORIES if any(c in m.categories for m in members))
    verdicts = tuple(v for v in VERDICTS if any(cases[i]["verdicts"][c] == v for i, c in units))
    layers = sorted({m.case["layer"] for m in members})
    title = _mismatch_title(layers, categories, verdicts, pattern, passing)
    return Cluster("mismatch", verdicts[-1], title, categories, pattern=pattern or {}, members=members,
                   verdicts=verdicts, exact=pattern is not None and passing is None)


# verdict: (verb after one category, verb after several)
_VERBS = {"fail": ("fails", "fail"),
          "mutation": ("writes into the caller's arrays", "write into the caller's arrays"),
          "nondeterministic": ("is nondeterministic", "are nondeterministic"),
          "error": ("errors", "error"), "timeout": ("times out", "time out"), "crash": ("crashes", "crash")}


def _mismatch_title(layers: list[str], categories: tuple, verdicts: tuple, pattern: dict | None,
                    passing: int | None) -> str:
    plural = len(categories) > 1
    what = " or ".join(_VERBS[v][plural] for v in verdicts)
    subject = ", ".join(c.replace("_", " ") for c in categories)
    if len(layers) == 1:
        subject = f"{layers[0]} {subject}"
    if pattern is None:
        return f"{subject} {what} (no argument pattern)"
    shown = {k: v for k, v in pattern.items() if k != LAYER}
    # a pattern of the layer alone: every case of that layer that was scored
    where = ("when " + " and ".join(f"{k}={v}" for k, v in shown.items())) if shown else "in every case"
    if passing is None:
        return f"{subject} {what} {where}"
    where = f"mostly {where}" if shown else "in most cases"
    return f"{subject} {what} {where} ({passing} passing case{' matches' if passing == 1 else 's match'} too)"

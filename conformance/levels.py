"""Conformance levels: what an implementation of each layer must support and what it may decline.

Every case uses a set of *optional features* (:func:`case_features`), read off its spec;
a case that uses none is a **core** case of its layer. The optional features
(``docs/certification.md`` lists them with their rationale):

=====================  ===================================================================
``channels_first``     ``data_format="channels_first"`` (every layer that has the argument)
``groups``             ``groups > 1`` (Conv1D/2D/3D)
``causal``             ``padding="causal"`` (Conv1D)
``output_padding``     an explicit ``output_padding`` (Conv*Transpose)
``activation:FAMILY``  any activation but ``linear``, by family (:data:`ACTIVATION_FAMILIES`)
``interpolation:NAME`` UpSampling2D's interpolations other than ``nearest``
``gradients``          the gradient category (``vjp``) of every valid case
``initializer``        the training-time categories (conformance.training) of the
``regularizer``        convolution layers: ``initialize``, ``regularization`` and
``constraint``         ``constrain``
=====================  ===================================================================

plus the dtype: ``float32`` is the core dtype, the others are optional.

An adapter declares what it implements (:func:`declaration_of` reads its optional
``declaration`` attribute or method, see :func:`declare`). A case whose layer, features
and dtype are all declared is **mandatory**: declining it (``Unsupported``) is scored
``fail`` (:func:`enforce`); so claiming a feature and declining its cases fails.
Without a declaration nothing is re-scored, and the per-layer levels
(:class:`LevelTally`) say which cases were declined.

Levels of a layer: ``full`` (no case declined, none failing), ``core`` (every optional
feature that occurs was declined, the core was not), ``partial`` (some optional features
declined: listed), ``not_conformant`` (a failing case, or a declined core case),
``not_implemented`` (every valid case declined: rejecting an invalid configuration is no sign of
an implementation). Levels are those of the run's dtype: at a dtype other than the core's,
declining every valid case of a layer is "not implemented at float64", and a declined case
that uses no optional feature is a declined core case *at that dtype*.

A run is conformant (:func:`conformant`) only when it is complete, no case fails and no layer
is ``not_conformant``; every front end, report and bundle uses this one rule.

Imports only the standard library and :mod:`reference`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from conv_conformance import reference
from conv_conformance.vocabulary import CORE_DTYPE, FAILING, TRAINING_CATEGORIES
from conv_conformance.vocabulary import DTYPES as _ALL_DTYPES

__all__ = ["ACTIVATION_FAMILIES", "DTYPES", "CORE_DTYPE", "LEVELS", "Declaration", "DeclarationError",
           "optional_features", "case_features", "declare", "parse_declaration", "declaration_of",
           "mandatory_categories", "enforce", "LevelTally", "coverage_line", "category_line", "report_levels",
           "level_text", "conformant"]

#: Activation families; an adapter that claims a family must compute every activation in it.
ACTIVATION_FAMILIES: dict[str, tuple[str, ...]] = {
    "relu": ("relu", "relu6", "leaky_relu"),
    "exponential": ("elu", "selu", "celu", "exponential"),
    "sigmoid": ("sigmoid", "log_sigmoid", "tanh", "tanh_shrink", "softsign"),
    "gated": ("silu", "swish", "gelu", "mish", "hard_silu", "hard_swish"),
    "softplus": ("softplus", "squareplus", "sparse_plus"),
    "hard": ("hard_sigmoid", "hard_tanh", "sparse_sigmoid", "soft_shrink", "hard_shrink"),
    "axis": ("softmax", "log_softmax", "sparsemax", "glu"),
}
_FAMILY_OF = {a: f for f, acts in ACTIVATION_FAMILIES.items() for a in acts}
#: The dtypes a declaration can name, the core dtype first.
DTYPES = (CORE_DTYPE, *(d for d in _ALL_DTYPES if d != CORE_DTYPE))
#: Per-layer levels, best first.
LEVELS = ("full", "partial", "core", "not_implemented", "not_conformant")
_DECLINED = "unsupported"
_TRAINING = TRAINING_CATEGORIES
#: Categories that an optional feature of the same (or this) name makes mandatory.
_CATEGORY_FEATURE = {"gradient": "gradients", **{c: c for c in _TRAINING}}


class DeclarationError(ValueError):
    """An adapter's declaration names something that does not exist or has the wrong form."""


def optional_features(layer: str) -> tuple[str, ...]:
    """The optional features that cases of ``layer`` can use (``gradients`` included where it has any)."""
    lay = reference.LAYERS[layer]
    args, fam = lay.arguments, lay.family  # every valid case has a gradient category
    out: list[str] = []
    if "data_format" in args:
        out.append("channels_first")
    if "groups" in args:
        out.append("groups")
    if fam == "conv" and lay.rank == 1:
        out.append("causal")
    if "output_padding" in args:
        out.append("output_padding")
    if "activation" in args:
        out += [f"activation:{f}" for f in ACTIVATION_FAMILIES]
    if "interpolation" in args:
        out += [f"interpolation:{m}" for m in reference.INTERPOLATIONS if m != "nearest"]
    out.append("gradients")
    if fam in ("conv", "conv_transpose", "depthwise", "separable"):
        out += list(_TRAINING)
    return tuple(out)


def case_features(spec: Mapping[str, Any]) -> frozenset[str]:
    """The optional features (not ``gradients``) a layer spec uses; empty for a core case."""
    config = spec.get("config") or {}
    out = set()
    if config.get("data_format") == "channels_first":
        out.add("channels_first")
    groups = config.get("groups")
    if isinstance(groups, int) and groups > 1:
        out.add("groups")
    if config.get("padding") == "causal":
        out.add("causal")
    if config.get("output_padding") is not None:
        out.add("output_padding")
    activation = config.get("activation")
    if activation in _FAMILY_OF:  # an unknown name (an invalid case) uses no feature: rejecting it is core
        out.add(f"activation:{_FAMILY_OF[activation]}")
    interpolation = config.get("interpolation")
    if isinstance(interpolation, str) and interpolation != "nearest":
        out.add(f"interpolation:{interpolation}")
    return frozenset(out)


@dataclass(frozen=True)
class Declaration:
    """What an adapter implements: per layer its optional features; dtypes; gradients."""

    layers: Mapping[str, frozenset[str]]
    dtypes: frozenset[str]
    gradients: bool

    def to_json(self) -> dict:
        """{"layers": {layer: [features]}, "dtypes": [...], "gradients": bool} (sorted)."""
        return {"layers": {k: sorted(v) for k, v in sorted(self.layers.items())},
                "dtypes": [d for d in DTYPES if d in self.dtypes], "gradients": self.gradients}

    def declares(self, layer: str, features: Iterable[str], dtype: str) -> bool:
        """Whether a case of ``layer`` using ``features`` at ``dtype`` is within the declaration."""
        return layer in self.layers and dtype in self.dtypes and set(features) <= self.layers[layer]


def _names(value: Any, what: str, allowed: Iterable[str]) -> list[str]:
    allowed = list(allowed)
    if value == "all":
        return allowed
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise DeclarationError(f"declaration `{what}` must be \"all\" or a list of names among "
                               f"{', '.join(allowed)}. Received: {value!r}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise DeclarationError(f"declaration `{what}` names unknown entries {unknown}; allowed: "
                               f"{', '.join(allowed)}")
    return list(value)


_ALL_FEATURES = sorted({f for name in reference.LAYERS for f in optional_features(name)} - {"gradients"})


def declare(layers: Any = "all", features: Any = "all", *, dtypes: Any = (CORE_DTYPE,),
            gradients: bool = True, exclude: Iterable[str] = ()) -> dict:
    """A declaration in its JSON form: ``layers`` (names or "all") each with ``features``
    (names or "all", minus ``exclude``; features a layer cannot use are dropped for it),
    ``dtypes`` and ``gradients``. For the ``declaration`` attribute of an adapter."""
    names = _names(layers, "layers", sorted(reference.LAYERS))
    chosen = set(_names(features, "features", _ALL_FEATURES)) - set(exclude)
    return {"layers": {n: sorted(chosen & set(optional_features(n))) for n in names},
            "dtypes": list(dtypes), "gradients": bool(gradients)}


def parse_declaration(obj: Any) -> Declaration:
    """Validate a declaration's JSON form (see :func:`declare`) into a :class:`Declaration`.

    ``layers`` maps layer names to lists of features (or "all"); a list of layer names
    means core only. Raises DeclarationError naming the field, the rule and the value.
    """
    if not isinstance(obj, Mapping) or "layers" not in obj:
        raise DeclarationError(f"a declaration must be a dict with keys layers, dtypes, gradients "
                               f"(conformance.levels.declare builds one). Received: {obj!r}"[:400])
    unknown = set(obj) - {"layers", "dtypes", "gradients"}
    if unknown:
        raise DeclarationError(f"declaration has unknown keys {sorted(unknown)}; allowed: layers, dtypes, gradients")
    raw = obj["layers"]
    if raw == "all":
        raw = sorted(reference.LAYERS)
    if isinstance(raw, (list, tuple)):
        raw = {n: [] for n in _names(raw, "layers", sorted(reference.LAYERS))}
    if not isinstance(raw, Mapping):
        raise DeclarationError(f"declaration `layers` must map layer names to feature lists. Received: {raw!r}"[:400])
    layers = {}
    for name, feats in raw.items():
        _names([name], "layers", sorted(reference.LAYERS))
        layers[name] = frozenset(_names(feats, f"layers[{name!r}]", optional_features(name)))
    dtypes = obj.get("dtypes", [CORE_DTYPE])
    gradients = obj.get("gradients", False)
    if not isinstance(gradients, bool):
        raise DeclarationError(f"declaration `gradients` must be true or false. Received: {gradients!r}")
    layers = {n: (f | {"gradients"}) if gradients else (f - {"gradients"}) for n, f in layers.items()}
    return Declaration(layers, frozenset(_names(dtypes, "dtypes", DTYPES)), gradients)


def declaration_of(adapter: Any) -> Declaration | None:
    """The adapter's validated declaration (its ``declaration`` attribute, or the method's
    result), or None when it has none. Raises DeclarationError when it is malformed."""
    value = getattr(adapter, "declaration", None)
    if value is None:
        return None
    if callable(value):
        value = value()
    return parse_declaration(value)


def mandatory_categories(declaration: Declaration | None, layer: str, spec: Mapping, kind: str,
                         dtype: str) -> frozenset[str]:
    """The categories of a case the adapter may not decline under ``declaration``."""
    if declaration is None or not declaration.declares(layer, case_features(spec), dtype):
        return frozenset()
    if kind == "invalid":
        return frozenset({"error_behaviour"})
    declared = declaration.layers[layer]
    return frozenset({"shape", "output"} | {c for c, f in _CATEGORY_FEATURE.items() if f in declared})


def enforce(declaration: Declaration | None, result: Any) -> None:
    """Re-score, in place, every declined category of ``result`` (a CaseResult) that the
    declaration makes mandatory as ``fail``, with a message saying what was claimed."""
    cats = mandatory_categories(declaration, result.layer, result.spec, result.kind, result.dtype)
    declined = sorted(c for c in cats if result.verdicts.get(c) == _DECLINED)
    if not declined:
        return
    for c in declined:
        result.verdicts[c] = "fail"
    feats = sorted(case_features(result.spec)) or ["core"]
    note = (f"declined a mandatory case: the adapter declares {result.layer} with "
            f"{', '.join(feats)} at {result.dtype}"
            + "".join(f" and {_CATEGORY_FEATURE[c]}" for c in declined if c in _CATEGORY_FEATURE)
            + f", so declining {', '.join(declined)} is a failure")
    result.message = f"{note}\n{result.message}" if result.message else note


def _declined(verdicts: Mapping[str, str]) -> list[str]:
    return [c for c, v in verdicts.items() if v == _DECLINED]


class LevelTally:
    """Per-layer levels and coverage from case records (report.json ``cases`` entries or
    CaseResult.to_json()), added one at a time; constant memory per layer."""

    def __init__(self, declaration: Declaration | dict | None = None, dtype: str | None = None) -> None:
        if isinstance(declaration, Mapping):
            declaration = parse_declaration(declaration)
        self.declaration = declaration
        self.dtype = dtype  # None: the first record's
        self.layers: dict[str, dict[str, Any]] = {}
        self.cases = 0
        self.declined_cases = 0
        self.categories: dict[str, list[int]] = {}  # category -> [cases, declined]

    def add(self, record: Mapping[str, Any]) -> None:
        """Count one case record (needs layer, spec, verdicts)."""
        layer = record["layer"]
        t = self.layers.setdefault(layer, {"cases": 0, "failing": 0, "declined": 0, "all_declined": 0,
                                           "core_declined": 0, "valid": 0, "valid_declined": 0,
                                           "seen": set(), "supported": set(), "blamed": set(), "ambiguous": []})
        verdicts = record.get("verdicts") or {}
        feats = case_features(record.get("spec") or {})
        if self.dtype is None:
            self.dtype = record.get("dtype")
        t["cases"] += 1
        self.cases += 1
        for c, v in verdicts.items():
            n = self.categories.setdefault(c, [0, 0])
            n[0] += 1
            n[1] += v == _DECLINED
        valid = record.get("kind", "valid") == "valid"
        t["valid"] += valid
        categories = {_CATEGORY_FEATURE[c] for c in verdicts if c in _CATEGORY_FEATURE}
        t["seen"] |= feats | categories
        declined = _declined(verdicts)
        if any(v in FAILING for v in verdicts.values()):
            t["failing"] += 1
        if not declined:
            t["supported"] |= feats | categories
            return
        self.declined_cases += 1
        t["declined"] += 1
        if len(declined) == len(verdicts):
            t["all_declined"] += 1
            t["valid_declined"] += valid
        if all(c in _CATEGORY_FEATURE for c in declined):
            t["blamed"] |= {_CATEGORY_FEATURE[c] for c in declined}
            t["supported"] |= feats | (categories - t["blamed"])
        elif not feats:
            t["core_declined"] += 1
        elif self.declaration is not None and layer in self.declaration.layers:
            t["blamed"] |= feats - self.declaration.layers[layer]
        else:
            t["ambiguous"].append(feats)

    def levels(self) -> dict[str, dict[str, Any]]:
        """{layer: {"level", "declined_features", "cases", "declined", "failing"}} in layer order, with
        ``dtype`` when the run's dtype is not the core dtype (the levels are those at that dtype)."""
        out = {}
        for layer in sorted(self.layers):
            t = self.layers[layer]
            blamed = set(t["blamed"])
            for feats in t["ambiguous"]:
                blamed |= (feats - t["supported"]) or feats
            optional = t["seen"]
            if t["failing"]:
                level = "not_conformant"
            elif t["all_declined"] == t["cases"] or (t["valid"] and t["valid_declined"] == t["valid"]):
                level = "not_implemented"
            elif t["core_declined"]:
                level = "not_conformant"
            elif not blamed:
                level = "full"
            elif optional <= blamed:
                level = "core"
            else:
                level = "partial"
            out[layer] = {"level": level, "declined_features": sorted(blamed), "cases": t["cases"],
                          "declined": t["declined"], "failing": t["failing"]}
            if self.dtype not in (None, CORE_DTYPE):  # a level at another dtype says so
                out[layer]["dtype"] = self.dtype
        return out

    def coverage(self) -> dict[str, Any]:
        """{"cases", "declined" (cases with a declined category), "scored" (fully scored), "fraction",
        "by_category": {category: {"cases" (that have it), "declined", "scored", "fraction"}}}: an
        optional category left out shows as that category's coverage, not as every case's."""
        scored = self.cases - self.declined_cases
        by_category = {c: {"cases": n, "declined": d, "scored": n - d, "fraction": (n - d) / n if n else 1.0}
                       for c, (n, d) in sorted(self.categories.items())}
        return {"cases": self.cases, "declined": self.declined_cases, "scored": scored,
                "fraction": (scored / self.cases) if self.cases else 1.0, "by_category": by_category}


def conformant(levels: Mapping[str, Mapping[str, Any]], *, failing: int = 0, interrupted: bool = False) -> bool:
    """The one meaning of CONFORMANT: a complete run with no failing case and no layer
    ``not_conformant`` (so a declined core case is non-conformance with or without a declaration)."""
    return not interrupted and failing == 0 and all(v["level"] != "not_conformant" for v in levels.values())


def coverage_line(coverage: Mapping[str, Any], levels: Mapping[str, Mapping[str, Any]]) -> str:
    """``coverage 151/1570 cases fully scored (9.6%), 1419 declined; levels: 3 full, 2 partial, ...``."""
    text = (f"coverage {coverage['scored']}/{coverage['cases']} cases fully scored "
            f"({100 * coverage['fraction']:.1f}%), {coverage['declined']} declined")
    counts = {lv: sum(1 for v in levels.values() if v["level"] == lv) for lv in LEVELS}
    parts = [f"{n} {lv.replace('_', ' ')}" for lv, n in counts.items() if n]
    dtypes = {v.get("dtype") for v in levels.values()} - {None, CORE_DTYPE}
    at = f" at {dtypes.pop()}" if len(dtypes) == 1 else ""
    return text + (f"; layers{at}: {', '.join(parts)}" if parts else "")


def category_line(by_category: Mapping[str, Mapping[str, int]]) -> str:
    """Each category's verdict counts apart (from report.json ``summary.by_category``), e.g.
    ``output 348 pass; gradient 340 pass, 8 fail; initializer 348 unsupported``; categories no
    case has are left out."""
    parts = []
    for category, counts in by_category.items():
        shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        if shown:
            parts.append(f"{category} {shown}")
    return "; ".join(parts)


def report_levels(report: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(coverage, levels) of a report.json dict: its summary's, or recomputed from its cases
    (reports written before levels existed) under its adapter's declaration."""
    summary = report.get("summary") or {}
    if summary.get("levels") is not None and summary.get("coverage") is not None:
        return dict(summary["coverage"]), dict(summary["levels"])
    try:
        tally = LevelTally((report.get("adapter") or {}).get("declaration"))
    except DeclarationError:
        tally = LevelTally(None)
    for case in report.get("cases") or []:
        tally.add(case)
    return tally.coverage(), tally.levels()


def level_text(entry: Mapping[str, Any]) -> str:
    """``partial (declined: channels_first, activation:hard)``, ``full``, ``not conformant``..."""
    text = {"full": "conformant with every feature", "core": "conformant at the core",
            "partial": "partial", "not_implemented": "not implemented",
            "not_conformant": "not conformant"}[entry["level"]]
    declined = entry.get("declined_features") or []
    dtype = entry.get("dtype")
    if dtype not in (None, CORE_DTYPE):
        text += f" at {dtype}"
    if declined and entry["level"] in ("partial", "core", "not_conformant"):
        text += f" (declined: {', '.join(declined)})"
    return text

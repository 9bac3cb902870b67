"""The catalogue of known findings: every divergence this suite has found, as data.

``catalogue.json`` (next to this module) holds one entry per finding: its id and title, the
framework and the adapters it shows through, the version range it was measured on, the
**condition** as data (a predicate over the normalized spec, the input shape, the dtype and the
report's environment), the categories and verdicts it produces, its cause in one line, its
status, an upstream link slot and its reproducer. The format is JSON so that it is read with
the standard library on every supported Python (``tomllib`` needs 3.11) and by tools in any
language; ``docs/contracts.md`` describes it.

A condition is a JSON object whose keys are *fields* and whose values are *tests*; all must hold:

* a scalar tests equality, a list membership (for a field whose value is a list: that they
  share an element), an object one of the operators ``eq``, ``ne``, ``in``, ``not_in``, ``gt``,
  ``ge``, ``lt``, ``le``, ``contains`` (an element of a list, or of a comma-separated string such
  as ``env.cpu.isa``); several operators: all must hold;
* ``"any": [conditions]`` holds when one of them does, ``"all": [...]`` when each does,
  ``"not": condition`` when it does not; ``"ref": "name"`` holds when the catalogue's named
  condition ``definitions[name]`` does (shared conditions such as TensorFlow's native kernels).

The fields (:data:`FIELDS`) are computed from the case by :func:`facts` and from the run
(``dtype``, ``env.<dotted path>`` of report.json's ``environment``, whose values are strings);
a field the case or run does not have (TensorFlow not imported: no ``env.tensorflow.onednn``)
makes its test false.

:func:`load` reads the catalogue; :class:`Matcher` binds it to one run (adapter, versions,
environment, dtype) and annotates each case record: a failing record whose every failing
category a matching finding explains carries ``findings`` (the ids); a record a finding's
condition covers that no longer fails is counted as "fixed?". A record that fails nowhere but is
``quality_warning`` (outside the strict low-precision class) carries the ids of the findings
whose verdicts include ``quality_warning`` and explain those categories; such findings are never
"fixed?" (whether one case's rounding leaves the strict class depends on its values), nor are
findings whose ``values`` say what the case's values must also meet. Known
findings are not waivers: they never change a verdict nor make a run conformant.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Iterable, Mapping, Sequence

from conv_conformance import reference
from conv_conformance.vocabulary import CATEGORIES, FAILING

__all__ = ["Finding", "Catalogue", "CatalogueError", "Matcher", "load", "facts", "holds", "FIELDS",
           "EXPECTED_VERDICTS", "STATUSES", "DOC_PAGE", "annotate_report", "summary_text", "anchor",
           "version_in_range"]

#: What a finding makes the suite report, among the run's verdicts (``unsupported``: the adapter
#: declines the case; ``quality_warning``: a miss of the strict low-precision class, which is not
#: failing: such a case is labelled with the finding but never counted as known or new; ``note``:
#: no verdict, documented behaviour only).
EXPECTED_VERDICTS = ("fail", "error", "nondeterministic", "unsupported", "quality_warning", "note")
#: ``open``, ``fixed in <package> <version>``, or ``withdrawn: <why>`` (the behaviour is within
#: what the contract allows after all: the entry stays as a record and never labels a case).
STATUSES = ("open", "fixed in", "withdrawn")
#: Where each finding is written up (the anchor is the lower-case id).
DOC_PAGE = "https://github.com/conv-conformance/conv-conformance/blob/main/docs/divergences.md"

_ENTRY_KEYS = {"id", "section", "title", "framework", "adapters", "versions", "condition", "categories",
               "verdicts", "cause", "status", "upstream", "reproducer", "doc", "values"}
_OPS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "in": lambda a, b: a in b,
        "not_in": lambda a, b: a not in b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
        "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
        "contains": lambda a, b: b in a.split(",") if isinstance(a, str) else b in a}

#: The fields a condition may test, besides ``config.<argument>`` and ``env.<dotted path>``.
FIELDS = {
    "adapter": "the run's adapter name (a finding that shows differently through two adapters)",
    "layer": "the layer's class name (Conv2D, ...)",
    "family": "conv, conv_transpose, depthwise, separable, cropping, padding, upsampling",
    "rank": "the number of spatial axes (1, 2, 3)",
    "kind": "valid or invalid",
    "dtype": "the run's dtype",
    "batch": "the input's batch size",
    "in_channels": "the input's channel count",
    "in_last": "the input's extent along the last spatial axis",
    "out_channels": "the output's channel count (valid cases)",
    "out_last": "the output's extent along the last spatial axis (valid cases)",
    "activation": "the activation's name (None for layers without one)",
    "stride_last_gt_min": "the last stride exceeds the smallest of the others (rank >= 2)",
    "strides_unequal": "not every stride is the same",
    "max_dilation": "the largest dilation rate (1 without one)",
    "max_stride": "the largest stride (1 without one)",
    "max_kernel": "the largest kernel extent (0 for layers without a kernel)",
    "kernel_exceeds_input": "padding 'valid' and some spatial axis shorter than its dilated kernel d*(k-1)+1 (not transposed)",
    "size_not_pow2_axis": "UpSampling: some spatial axis of extent >= 2 is upsampled by a size that is not a power of two",
    "max_output_padding": "the largest output_padding (0 when None)",
    "output_padding_given": "output_padding is not None",
    "same_padding_min_total": "the smallest total 'same' padding (out-1)*s + d*(k-1) + 1 - n over the axes",
    "transpose_same_even": "a transposed 'same' axis with (d*(k-1)+1) % 2 + output_padding == 0",
    "pre_activation_channels": "the channel count the bias is added to (before an activation such as glu)",
    "pre_activation_last": "the last spatial extent the bias is added to (before an activation such as glu)",
    "bias_on_last_axis": "use_bias and channels_first and, before the activation, the last spatial extent equals the channels (> 1)",
    "non_float32_factor": "an L1/L2 regularizer factor that float32 cannot hold exactly",
    "has_regularizer": "some *_regularizer argument is set",
    "constraint": "the class names of the *_constraint arguments",
    "initializers": "the kernel, depthwise, pointwise and bias initializers' class names",
}


class CatalogueError(ValueError):
    """A catalogue entry that is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Finding:
    """One catalogue entry (see the module docstring and docs/contracts.md)."""

    id: str
    section: str
    title: str
    framework: str
    adapters: tuple[str, ...]
    versions: Mapping[str, str]
    condition: Mapping[str, Any] | None
    categories: tuple[str, ...]
    verdicts: tuple[str, ...]
    cause: str
    status: str
    upstream: str | None
    reproducer: Mapping[str, Any] | None
    doc: Mapping[str, str] = field(default_factory=dict)
    #: what the case's values must also meet, where the condition (over the spec, dtype and
    #: environment) is necessary but not sufficient: such a finding is never reported "fixed?"
    values: str | None = None

    @property
    def open(self) -> bool:
        return self.status == "open"

    @property
    def withdrawn(self) -> bool:
        return self.status.startswith("withdrawn")

    @property
    def link(self) -> str:
        """The finding's write-up in docs/divergences.md."""
        return f"{DOC_PAGE}#{anchor(self.id)}"

    def to_json(self) -> dict:
        return {"id": self.id, "section": self.section, "title": self.title, "framework": self.framework,
                "adapters": list(self.adapters), "versions": dict(self.versions), "condition": self.condition,
                "categories": list(self.categories), "verdicts": list(self.verdicts), "cause": self.cause,
                "status": self.status, "upstream": self.upstream, "reproducer": self.reproducer,
                "doc": dict(self.doc)}


def anchor(finding_id: str) -> str:
    """The HTML anchor of a finding in docs/divergences.md."""
    return f"finding-{finding_id.lower()}"


class Catalogue:
    """The findings and the named conditions they share."""

    def __init__(self, findings: Sequence[Finding], definitions: Mapping[str, Any], sections: Sequence[dict]) -> None:
        self.findings = list(findings)
        self.by_id = {f.id: f for f in self.findings}
        self.definitions = dict(definitions)
        self.sections = list(sections)

    def __getitem__(self, finding_id: str) -> Finding:
        try:
            return self.by_id[finding_id]
        except KeyError:
            raise KeyError(f"no finding {finding_id!r} in the catalogue; ids: {', '.join(self.by_id)}") from None

    def __iter__(self):
        return iter(self.findings)

    def select(self, *, framework: str | None = None, status: str | None = None,
               adapter: str | None = None) -> list[Finding]:
        """The findings of a framework (or shown through an adapter) with a status (``open``, ``fixed``)."""
        out = []
        for f in self.findings:
            if framework is not None and f.framework != framework:
                continue
            if adapter is not None and adapter not in f.adapters:
                continue
            if status is not None and not f.status.startswith(status):
                continue
            out.append(f)
        return out

    def holds(self, finding_id: str, spec: dict, input_shape: Sequence[int], dtype: str,
              environment: Mapping[str, Any] | None = None, kind: str = "valid", adapter: str | None = None) -> bool:
        """Whether the condition of ``finding_id`` (or of a named definition) holds for one case
        (``adapter``: the ``adapter`` field, for conditions that name one)."""
        condition = self.definitions[finding_id] if finding_id in self.definitions else self[finding_id].condition
        if condition is None:
            return False
        case = facts(spec, input_shape, kind)
        if adapter is not None:
            case["adapter"] = adapter
        return holds(condition, case, dtype, environment or {}, self.definitions)


def _check(entry: Any, n: int, definitions: Mapping[str, Any]) -> Finding:
    where = f"catalogue entry {n}"
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"{where} must be an object. Received: {entry!r}")
    where = f"catalogue entry {entry.get('id', n)!r}"
    unknown = set(entry) - _ENTRY_KEYS
    missing = {"id", "section", "title", "framework", "adapters", "condition", "categories", "verdicts", "cause",
               "status"} - set(entry)
    if unknown or missing:
        raise CatalogueError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}; "
                             f"allowed: {', '.join(sorted(_ENTRY_KEYS))}")
    bad = [c for c in entry["categories"] if c not in CATEGORIES]
    if bad:
        raise CatalogueError(f"{where}: `categories` must name categories among {', '.join(CATEGORIES)}. Received: {bad}")
    bad = [v for v in entry["verdicts"] if v not in EXPECTED_VERDICTS]
    if bad or not entry["verdicts"]:
        raise CatalogueError(f"{where}: `verdicts` must be a non-empty list among {', '.join(EXPECTED_VERDICTS)}. "
                             f"Received: {entry['verdicts']}")
    status = str(entry["status"])
    if not (status == "open" or status.startswith("fixed in ") or re.fullmatch(r"withdrawn: \S.*", status)):
        raise CatalogueError(f"{where}: `status` must be 'open', 'fixed in <package> <version>' or "
                             f"'withdrawn: <why>'. Received: {entry['status']!r}")
    if entry["condition"] is not None:
        _check_condition(entry["condition"], where, definitions)
    if "values" in entry and not (isinstance(entry["values"], str) and entry["values"].strip()):
        raise CatalogueError(f"{where}: `values` must be a sentence saying what the case's values must meet. "
                             f"Received: {entry['values']!r}")
    return Finding(entry["id"], entry["section"], entry["title"], entry["framework"], tuple(entry["adapters"]),
                   dict(entry.get("versions") or {}), entry["condition"], tuple(entry["categories"]),
                   tuple(entry["verdicts"]), entry["cause"], entry["status"], entry.get("upstream"),
                   entry.get("reproducer"), dict(entry.get("doc") or {}), entry.get("values"))


def _check_condition(condition: Any, where: str, definitions: Mapping[str, Any]) -> None:
    if not isinstance(condition, Mapping):
        raise CatalogueError(f"{where}: a condition must be an object. Received: {condition!r}")
    for key, test in condition.items():
        if key in ("any", "all"):
            if not isinstance(test, list) or not test:
                raise CatalogueError(f"{where}: `{key}` must be a non-empty list of conditions. Received: {test!r}")
            for sub in test:
                _check_condition(sub, where, definitions)
        elif key == "not":
            _check_condition(test, where, definitions)
        elif key == "ref":
            if test not in definitions:
                raise CatalogueError(f"{where}: `ref` names no definition; defined: {', '.join(definitions)}. "
                                     f"Received: {test!r}")
        elif not (key in FIELDS or key.startswith(("config.", "env."))):
            raise CatalogueError(f"{where}: unknown field {key!r}; fields: {', '.join(FIELDS)}, config.<argument>, "
                                 f"env.<dotted path>")
        elif isinstance(test, Mapping):
            bad = set(test) - set(_OPS)
            if bad or not test:
                raise CatalogueError(f"{where}: field {key!r}: operators must be among {', '.join(_OPS)}. "
                                     f"Received: {sorted(bad) or '(none)'}")


def parse(data: Any) -> Catalogue:
    """Validate a catalogue document (``{"definitions", "sections", "findings"}``)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("findings"), list):
        raise CatalogueError("a catalogue is an object with a `findings` list")
    definitions = dict(data.get("definitions") or {})
    for name, condition in definitions.items():
        _check_condition(condition, f"definition {name!r}", definitions)
    findings = [_check(e, n, definitions) for n, e in enumerate(data["findings"], 1)]
    seen: set[str] = set()
    for f in findings:
        if f.id in seen:
            raise CatalogueError(f"catalogue entry {f.id!r} appears twice; ids must be unique")
        seen.add(f.id)
    return Catalogue(findings, definitions, data.get("sections") or [])


@functools.cache
def load() -> Catalogue:
    """The shipped catalogue (``catalogue.json`` of this package)."""
    text = resources.files(__name__).joinpath("catalogue.json").read_text("utf-8")
    return parse(json.loads(text))


# ------------------------------------------------------------------ the facts of a case

def _float32_exact(value: float) -> bool:
    import numpy as np

    return float(np.float32(value)) == float(value)


def facts(spec: dict, input_shape: Sequence[int], kind: str = "valid") -> dict[str, Any]:
    """The :data:`FIELDS` of one case (and ``config.<argument>`` of its normalized spec)."""
    out: dict[str, Any] = {"kind": kind, "batch": input_shape[0] if input_shape else None}
    try:
        spec = reference.normalize(spec)
    except Exception:  # noqa: BLE001 - an invalid case still has a layer name and raw arguments
        out["layer"] = spec.get("class_name")
        out.update({f"config.{k}": v for k, v in (spec.get("config") or {}).items()})
        return out
    layer, cfg = reference.LAYERS[spec["class_name"]], spec["config"]
    out.update({"layer": spec["class_name"], "family": layer.family, "rank": layer.rank,
                "activation": cfg.get("activation")})
    out.update({f"config.{k}": v for k, v in cfg.items()})
    first = cfg.get("data_format") == "channels_first"
    if len(input_shape) >= 3:
        out["in_channels"] = input_shape[1] if first else input_shape[-1]
        out["in_last"] = input_shape[-1] if first else input_shape[-2]
    if kind == "valid" and len(input_shape) >= 3:
        try:
            shape = reference.output_shape(spec, input_shape)
        except Exception:  # noqa: BLE001 - a shape the reference rejects has no output facts
            shape = None
        if shape is not None:
            out["out_channels"] = shape[1] if first else shape[-1]
            out["out_last"] = shape[-1] if first else shape[-2]
            if cfg.get("activation") == "glu":  # glu halves the last axis after the bias is added
                linear = {"class_name": spec["class_name"], "config": {**cfg, "activation": "linear"}}
                pre = reference.output_shape(linear, input_shape)
                out["pre_activation_channels"] = pre[1] if first else pre[-1]
                out["pre_activation_last"] = pre[-1] if first else pre[-2]
            else:
                out["pre_activation_channels"], out["pre_activation_last"] = out["out_channels"], out["out_last"]
    strides = list(cfg.get("strides") or [])
    if strides:
        out["strides_unequal"] = len(set(strides)) > 1
        out["stride_last_gt_min"] = len(strides) > 1 and strides[-1] > min(strides[:-1])
    dilation = list(cfg.get("dilation_rate") or [1])
    out["max_dilation"] = max(dilation)
    out["max_stride"] = max(strides or [1])
    out["max_kernel"] = max(list(cfg.get("kernel_size") or [0]))
    if "output_padding" in cfg:
        out["output_padding_given"] = cfg["output_padding"] is not None
        out["max_output_padding"] = max(cfg["output_padding"] or [0])
    if layer.family == "upsampling" and len(input_shape) >= 3:
        extents = input_shape[2:] if first else input_shape[1:-1]
        sizes = cfg.get("size") or []
        sizes = [sizes] * len(extents) if isinstance(sizes, int) else list(sizes)
        out["size_not_pow2_axis"] = any(n >= 2 and s & (s - 1) != 0 for n, s in zip(extents, sizes))
    kernel = list(cfg.get("kernel_size") or [])
    if kernel and len(input_shape) >= 3:
        spatial = input_shape[2:] if first else input_shape[1:-1]
        if cfg.get("padding") == "same" and layer.family != "conv_transpose":
            out["same_padding_min_total"] = min((-(-n // s) - 1) * s + d * (k - 1) + 1 - n for n, k, s, d in
                                                zip(spatial, kernel, strides, dilation))
        if cfg.get("padding") == "valid" and layer.family != "conv_transpose":
            ks = kernel * len(spatial) if len(kernel) == 1 else kernel
            ds = dilation * len(spatial) if len(dilation) == 1 else dilation
            out["kernel_exceeds_input"] = any(isinstance(k, int) and isinstance(d, int) and d * (k - 1) + 1 > n
                                              for n, k, d in zip(spatial, ks, ds))
        if layer.family == "conv_transpose":
            ops = cfg.get("output_padding")
            out["transpose_same_even"] = cfg.get("padding") == "same" and ops is not None and any(
                (d * (k - 1) + 1) % 2 + op == 0 for k, d, op in zip(kernel, dilation, ops))
    if "use_bias" in cfg:
        last = out.get("pre_activation_last")
        out["bias_on_last_axis"] = bool(cfg["use_bias"] and first and last is not None
                                        and last == out.get("pre_activation_channels") and last > 1)
    regs = [cfg[k] for k in cfg if k.endswith("_regularizer") and isinstance(cfg.get(k), dict)]
    out["has_regularizer"] = bool(regs)
    factors = [v for r in regs for k, v in (r.get("config") or {}).items() if k in ("l1", "l2") and v]
    out["non_float32_factor"] = any(not _float32_exact(v) for v in factors)
    out["initializers"] = sorted({(cfg.get(k) or {}).get("class_name") for k in cfg
                                  if k.endswith("_initializer") and isinstance(cfg.get(k), dict)})
    out["constraint"] = sorted({cfg[k].get("class_name") for k in cfg
                                if k.endswith("_constraint") and isinstance(cfg.get(k), dict)})
    return out


def _value(name: str, case: Mapping[str, Any], dtype: str, environment: Mapping[str, Any]) -> tuple[bool, Any]:
    if name == "dtype":
        return True, dtype
    if name.startswith("env."):
        node: Any = environment
        for part in name[4:].split("."):
            if not isinstance(node, Mapping) or part not in node:
                return False, None
            node = node[part]
        return True, str(node)
    if name in case:
        return True, case[name]
    return False, None


def _test(value: Any, test: Any) -> bool:
    if isinstance(test, Mapping):
        try:
            return all(_OPS[op](value, operand) for op, operand in test.items())
        except TypeError:  # comparing None with a number: the field does not apply
            return False
    if isinstance(test, list):
        return bool(set(value) & set(test)) if isinstance(value, list) else value in test
    if isinstance(value, list) and not isinstance(test, list):
        return test in value
    return value == test


def holds(condition: Mapping[str, Any], case: Mapping[str, Any], dtype: str, environment: Mapping[str, Any],
          definitions: Mapping[str, Any]) -> bool:
    """Whether ``condition`` holds for a case's :func:`facts`, a dtype and an environment."""
    for key, test in condition.items():
        if key == "any":
            ok = any(holds(c, case, dtype, environment, definitions) for c in test)
        elif key == "all":
            ok = all(holds(c, case, dtype, environment, definitions) for c in test)
        elif key == "not":
            ok = not holds(test, case, dtype, environment, definitions)
        elif key == "ref":
            ok = holds(definitions[test], case, dtype, environment, definitions)
        else:
            present, value = _value(key, case, dtype, environment)
            ok = present and _test(value, test)
        if not ok:
            return False
    return True


# ------------------------------------------------------------------ matching a run

def version_in_range(version: Any, spec: str) -> bool:
    """Whether an installed version (``"4.22.0"``, ``"2.13.0+cpu"``) is in a catalogue range (``">=4.22"``)."""
    return _version_ok(version, spec)


def _version_ok(have: Any, spec: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    import re

    found = re.match(r"\d+(\.\d+)*", str(have)) if have is not None else None
    try:
        return found is not None and Version(found.group(0)) in SpecifierSet(spec)
    except (InvalidVersion, InvalidSpecifier):
        return False


class Matcher:
    """The catalogue bound to one run: which findings apply to its adapter, versions,
    environment and dtype; :meth:`annotate` marks each record; :meth:`summary` counts."""

    def __init__(self, catalogue: Catalogue, adapter: Mapping[str, Any], environment: Mapping[str, Any],
                 dtype: str) -> None:
        self.catalogue = catalogue
        self.adapter = dict(adapter)
        self.environment = dict(environment or {})
        self.dtype = dtype
        versions = self.adapter.get("versions") or {}
        self.versions = versions
        self.active = [f for f in catalogue if f.condition is not None and not f.withdrawn
                       and self.adapter.get("name") in f.adapters
                       and all(_version_ok(versions.get(p), s) for p, s in f.versions.items())]
        self.known: dict[str, int] = {}
        self.known_cases = 0
        self.explaining: set[str] = set()
        self.new: list[str] = []
        self.fixed: dict[str, list[str]] = {}
        self.quality: dict[str, int] = {}
        self.quality_cases = 0
        self.quality_unexplained = 0

    def match(self, record: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """``(explaining, stale)``: the ids of the findings that explain the record's failing
        categories, and of those whose condition covers the record but whose categories pass."""
        failing = {c: v for c, v in record["verdicts"].items() if v in FAILING}
        case = facts(record["spec"], record["input_shape"], record.get("kind", "valid"))
        case["adapter"] = self.adapter.get("name")
        covering = [f for f in self.active
                    if holds(f.condition, case, self.dtype, self.environment, self.catalogue.definitions)]
        explaining = [f.id for f in covering
                      if any(c in f.categories and v in f.verdicts for c, v in failing.items())]
        stale = [f.id for f in covering
                 if not {"note", "unsupported", "quality_warning"} & set(f.verdicts) and f.values is None
                 and f.id not in explaining and not any(c in f.categories for c in failing)
                 and any(record["verdicts"].get(c) == "pass" for c in f.categories)]
        return explaining, stale

    def annotate(self, record: dict, *, count: bool = True) -> dict:
        """Add ``findings`` to a failing record (the ids explaining it) and ``new: true`` when some
        failing category is explained by none; count it for :meth:`summary` unless ``count`` is False."""
        record.pop("findings", None)
        record.pop("new", None)
        failing = {c: v for c, v in record["verdicts"].items() if v in FAILING}
        explaining, stale = self.match(record)
        if count:
            self.explaining.update(explaining)
        for fid in stale if count else ():
            self.fixed.setdefault(fid, []).append(record["id"])
        if not failing:
            return self._label_quality(record, covering_ids=self.match_quality(record), count=count)
        explained = {c for c, v in failing.items()
                     if any(c in self.catalogue[fid].categories and v in self.catalogue[fid].verdicts
                            for fid in explaining)}
        if explaining:
            record["findings"] = explaining
        if explained != set(failing):
            record["new"] = True
            if count:
                self.new.append(record["id"])
        elif count:
            self.known_cases += 1
            for fid in explaining:
                self.known[fid] = self.known.get(fid, 0) + 1
        return record

    def match_quality(self, record: Mapping[str, Any]) -> list[str]:
        """The ids of the ``quality_warning`` findings that explain the record's quality_warning categories."""
        warned = {c for c, v in record["verdicts"].items() if v == "quality_warning"}
        if not warned:
            return []
        case = facts(record["spec"], record["input_shape"], record.get("kind", "valid"))
        case["adapter"] = self.adapter.get("name")
        return [f.id for f in self.active if "quality_warning" in f.verdicts and warned & set(f.categories)
                and holds(f.condition, case, self.dtype, self.environment, self.catalogue.definitions)]

    def _label_quality(self, record: dict, covering_ids: list[str], count: bool) -> dict:
        warned = {c for c, v in record["verdicts"].items() if v == "quality_warning"}
        if not warned:
            return record
        if covering_ids:
            record["findings"] = covering_ids
        if count:
            explained = {c for c in warned for fid in covering_ids if c in self.catalogue[fid].categories}
            if explained == warned:
                self.quality_cases += 1
                for fid in covering_ids:
                    self.quality[fid] = self.quality.get(fid, 0) + 1
            else:
                self.quality_unexplained += 1
        return record

    def summary(self) -> dict[str, Any]:
        """report.json's ``summary.findings``: known failing cases per finding, the new failing
        cases, and the findings some covered case of which passes ("fixed?", with the versions)."""
        return {"known": self.known_cases,
                "by_finding": dict(sorted(self.known.items(), key=lambda kv: (-kv[1], kv[0]))),
                "new": len(self.new), "new_cases": list(self.new),
                "fixed": [{"id": fid, "cases": cases,
                           "versions": {p: str(v) for p, v in self.versions.items()
                                        if p in self.catalogue[fid].versions or not self.catalogue[fid].versions}}
                          for fid, cases in sorted(self.fixed.items()) if fid not in self.explaining],
                "quality_warning": {"known": self.quality_cases,
                                    "by_finding": dict(sorted(self.quality.items(), key=lambda kv: (-kv[1], kv[0]))),
                                    "unexplained": self.quality_unexplained},
                "catalogue": len(self.catalogue.findings)}


def annotate_report(report: dict, catalogue: Catalogue | None = None) -> dict:
    """Annotate a loaded report.json in place (its cases and ``summary.findings``), as a run
    does; for reports written before the catalogue existed."""
    matcher = Matcher(catalogue or load(), report.get("adapter") or {}, report.get("environment") or {},
                      report.get("dtype", "float32"))
    for case in report["cases"]:
        matcher.annotate(case)
    report.setdefault("summary", {})["findings"] = matcher.summary()
    return report


def _listed(by_finding: Mapping[str, int], limit: int) -> str:
    parts = [f"{fid} x{n}" for fid, n in list(by_finding.items())[:limit]]
    more = len(by_finding) - limit
    return f" [{', '.join(parts)}{', ...' if more > 0 else ''}]" if parts else ""


def summary_text(findings: Mapping[str, Any] | None, *, limit: int = 8) -> str:
    """``36 failing: 35 known [K1 x20, K4 x3, ...], 1 new``: the failing cases split by the catalogue;
    then, when some cases are quality_warning, ``102 quality_warning: 102 known [LT1 x61, ...]``
    (not failing: labelled, never counted as new)."""
    if not findings:
        return ""
    out = []
    known, new = findings.get("known", 0), findings.get("new", 0)
    if known or new:
        out.append(f"{known + new} failing: {known} known{_listed(findings.get('by_finding', {}), limit)}, {new} new")
    quality = findings.get("quality_warning") or {}
    q_known, q_other = quality.get("known", 0), quality.get("unexplained", 0)
    if q_known or q_other:
        out.append(f"{q_known + q_other} quality_warning: {q_known} known{_listed(quality.get('by_finding', {}), limit)}, "
                   f"{q_other} not catalogued")
    return "; ".join(out)


def fixed_lines(findings: Mapping[str, Any] | None) -> list[str]:
    """One line per finding reported as "fixed?" (a covered case passes)."""
    out = []
    for item in (findings or {}).get("fixed", []):
        versions = ", ".join(f"{p} {v}" for p, v in item["versions"].items()) or "these versions"
        out.append(f"fixed? {item['id']}: {len(item['cases'])} case(s) its condition covers pass with {versions} "
                   f"(the catalogue entry is stale, or the framework fixed it)")
    return out


def ids(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """The finding ids carried by some records."""
    return {fid for r in records for fid in r.get("findings") or ()}

"""Waivers: failing results that a documented suite fault or platform limit excuses.

A waiver file (TOML, or JSON with the same structure) holds ``[[waiver]]`` entries::

    [[waiver]]
    id = "CC-42"                                  # names the tracked issue
    cases = ["UpSampling2D-7be85da4cd9d"]         # fnmatch patterns over case ids
    categories = ["gradient"]                     # optional: only these categories (default: all)
    reason = "TensorFlow registers no gradient for ResizeArea"
    link = "https://github.com/tensorflow/tensorflow/issues/..."
    expires = "0.2.0"                             # the first suite version it no longer applies to
    [waiver.match]
    adapter = "keras"                             # the adapter's reported name (required)
    versions = {tensorflow = ">=2.21,<2.22"}      # PEP 440 specifiers over report versions
    environment = {onednn_isa = "AVX512*", "knobs.TF_ENABLE_ONEDNN_OPTS" = "1"}  # fnmatch, dotted paths
    dtype = ["float32", "float64"]

A failing category (fail, nondeterministic, error, timeout, crash, ...) of a case that a
waiver covers becomes ``waived``: allowed for conformance, listed in every report with the
waiver's id and link, its original verdict kept in the record's ``waiver``. Waivers are for
faults in the suite or documented platform limits, never for ordinary failures
(docs/certification.md). A waiver that matches nothing is warned about; an expired or
malformed one is an error.
"""
from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from conv_conformance.vocabulary import CATEGORIES, FAILING

__all__ = ["Waiver", "WaiverError", "WaiverSet", "load", "parse", "environment_value"]

_ALLOWED_KEYS = {"id", "cases", "categories", "reason", "link", "expires", "match"}
_MATCH_KEYS = {"adapter", "versions", "environment", "dtype"}


class WaiverError(ValueError):
    """A waiver file or entry that is malformed, expired or unreadable."""


@dataclass(frozen=True)
class Waiver:
    """One validated waiver entry (see the module docstring)."""

    id: str
    cases: tuple[str, ...]
    reason: str
    link: str
    expires: str
    adapter: str
    versions: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    dtypes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The entry in the file's own form."""
        match: dict[str, Any] = {"adapter": self.adapter}
        if self.versions:
            match["versions"] = dict(self.versions)
        if self.environment:
            match["environment"] = dict(self.environment)
        if self.dtypes:
            match["dtype"] = list(self.dtypes)
        out = {"id": self.id, "cases": list(self.cases), "reason": self.reason, "link": self.link,
               "expires": self.expires, "match": match}
        if self.categories:
            out["categories"] = list(self.categories)
        return out

    def conditions(self, adapter: Mapping[str, Any], environment: Mapping[str, Any], dtype: str) -> list[str]:
        """Why this waiver does not apply to a run (empty list: it applies)."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version

        why = []
        if adapter.get("name") != self.adapter:
            why.append(f"adapter is {adapter.get('name')!r}, the waiver is for {self.adapter!r}")
        versions = adapter.get("versions") or {}
        for package, spec in self.versions.items():
            have = versions.get(package)
            try:
                ok = have is not None and Version(str(have)) in SpecifierSet(spec)
            except (InvalidVersion, InvalidSpecifier):
                ok = False
            if not ok:
                why.append(f"{package} {have} is not {spec}")
        for path, pattern in self.environment.items():
            value = environment_value(environment, path)
            if value is None or not fnmatch.fnmatchcase(str(value), str(pattern)):
                why.append(f"environment {path}={value!r} does not match {pattern!r}")
        if self.dtypes and dtype not in self.dtypes:
            why.append(f"dtype {dtype} is not one of {', '.join(self.dtypes)}")
        return why

    def covers(self, case_id: str) -> bool:
        """Whether one of the case patterns matches ``case_id``."""
        return any(fnmatch.fnmatchcase(case_id, p) for p in self.cases)


def environment_value(environment: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``knobs.TF_ENABLE_ONEDNN_OPTS``) of a report's environment, or None."""
    node: Any = environment
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise WaiverError(f"{where} must be a non-empty string or list of strings. Received: {value!r}")
    return tuple(value)


def parse(data: Any, suite_version: str, *, source: str = "waivers") -> list[Waiver]:
    """Validate a waiver document (``{"waiver": [entries]}``) for ``suite_version``.

    Raises WaiverError naming the entry, the field, the rule and the value: unknown keys,
    a missing field, a link that is not http(s), an unparsable or reached ``expires``.
    """
    from packaging.version import InvalidVersion, Version

    if not isinstance(data, Mapping) or set(data) - {"waiver"}:
        raise WaiverError(f"{source}: a waiver file holds only `waiver` entries ([[waiver]] in TOML, "
                          f"{{\"waiver\": [...]}} in JSON). Received keys: {sorted(data) if isinstance(data, Mapping) else type(data).__name__}")
    entries = data.get("waiver", [])
    if not isinstance(entries, list):
        raise WaiverError(f"{source}: `waiver` must be a list of entries. Received: {type(entries).__name__}")
    out, seen = [], set()
    for n, e in enumerate(entries, 1):
        where = f"{source}: waiver {n}"
        if not isinstance(e, Mapping):
            raise WaiverError(f"{where} must be a table. Received: {e!r}")
        unknown = set(e) - _ALLOWED_KEYS
        if unknown:
            raise WaiverError(f"{where} has unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(_ALLOWED_KEYS))}")
        for key in ("id", "cases", "reason", "link", "expires", "match"):
            if key not in e:
                raise WaiverError(f"{where} has no `{key}` (required: id, cases, reason, link, expires, match)")
        wid = e["id"]
        if not isinstance(wid, str) or not wid or wid in seen:
            raise WaiverError(f"{where}: `id` must be a non-empty string unique in the file. Received: {wid!r}")
        seen.add(wid)
        where = f"{source}: waiver {wid!r}"
        if not isinstance(e["reason"], str) or not e["reason"].strip():
            raise WaiverError(f"{where}: `reason` must say which suite fault or platform limit this is. Received: {e['reason']!r}")
        link = e["link"]
        if not isinstance(link, str) or not link.startswith(("https://", "http://")):
            raise WaiverError(f"{where}: `link` must be an http(s) URL of the issue or document. Received: {link!r}")
        try:
            expires = Version(str(e["expires"]))
            current = Version(suite_version)
        except InvalidVersion as exc:
            raise WaiverError(f"{where}: `expires` must be a suite version such as 0.2.0. Received: {e['expires']!r} ({exc})") from None
        if current >= expires:
            raise WaiverError(f"{where} expired: it applies to suite versions before {e['expires']}, this suite is {suite_version}")
        match = e["match"]
        if not isinstance(match, Mapping) or not isinstance(match.get("adapter"), str) or set(match) - _MATCH_KEYS:
            raise WaiverError(f"{where}: `match` must be a table with `adapter` (a name) and optionally "
                              f"versions, environment, dtype. Received: {match!r}")
        for key in ("versions", "environment"):
            value = match.get(key, {})
            if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
                raise WaiverError(f"{where}: `match.{key}` must map names to strings. Received: {value!r}")
        if "versions" in match:
            from packaging.specifiers import InvalidSpecifier, SpecifierSet

            for package, spec in match["versions"].items():
                try:
                    SpecifierSet(spec)
                except InvalidSpecifier:
                    raise WaiverError(f"{where}: `match.versions.{package}` must be a version range such as "
                                      f"'>=2.21,<2.22'. Received: {spec!r}") from None
        categories = _strings(e["categories"], f"{where}: `categories`") if "categories" in e else ()
        bad = [c for c in categories if c not in CATEGORIES]
        if bad:
            raise WaiverError(f"{where}: `categories` must name categories among {', '.join(CATEGORIES)}. Received: {bad}")
        dtypes = _strings(match["dtype"], f"{where}: `match.dtype`") if "dtype" in match else ()
        out.append(Waiver(wid, _strings(e["cases"], f"{where}: `cases`"), e["reason"].strip(), link,
                          str(e["expires"]), match["adapter"], dict(match.get("versions", {})),
                          dict(match.get("environment", {})), dtypes, categories))
    return out


def load(path: str | Path, suite_version: str) -> list[Waiver]:
    """Read and validate a waiver file (``.toml``, else JSON)."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise WaiverError(f"cannot read waiver file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise WaiverError(f"waiver file {str(path)!r} is not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
    return parse(data, suite_version, source=str(path))


class WaiverSet:
    """The waivers of one run: :meth:`bind` them to the run (adapter, environment, dtype),
    then :meth:`apply` each result; :meth:`summary` lists what was waived and warns."""

    def __init__(self, waivers: Sequence[Waiver]) -> None:
        self.waivers = list(waivers)
        self.active: list[Waiver] = []
        self.inactive: dict[str, list[str]] = {}
        self.matched: dict[str, int] = {w.id: 0 for w in self.waivers}
        self.waived: dict[str, list[str]] = {w.id: [] for w in self.waivers}

    def bind(self, adapter: Mapping[str, Any], environment: Mapping[str, Any], dtype: str) -> None:
        """Decide which waivers apply to this run."""
        self.active, self.inactive = [], {}
        for w in self.waivers:
            why = w.conditions(adapter, environment, dtype)
            if why:
                self.inactive[w.id] = why
            else:
                self.active.append(w)

    def apply(self, result: Any) -> None:
        """Turn the failing categories of ``result`` (a CaseResult) that an active waiver
        covers into ``waived``, recording the waiver and the original verdicts."""
        for w in self.active:
            if not w.covers(result.id):
                continue
            self.matched[w.id] += 1
            cats = {c: v for c, v in result.verdicts.items()
                    if v in FAILING and (not w.categories or c in w.categories)}
            if not cats:
                continue
            for c in cats:
                result.verdicts[c] = "waived"
            result.waiver = {"id": w.id, "link": w.link, "waived": cats}
            note = f"waived by {w.id} ({w.link}): {', '.join(f'{c} was {v}' for c, v in cats.items())}"
            result.message = f"{note}\n{result.message}" if result.message else note
            self.waived[w.id].append(result.id)
            return

    def tally(self, result: Any) -> None:
        """Count a result whose waivers were applied in another process (a pytest-xdist worker:
        the pytest plugin's controller builds the summary from the records it receives)."""
        for w in self.active:
            if w.covers(result.id):
                self.matched[w.id] += 1
        waiver = getattr(result, "waiver", None)
        if waiver and waiver.get("id") in self.waived:
            self.waived[waiver["id"]].append(result.id)

    def warnings(self) -> list[str]:
        """One line per waiver that did not apply to the run, matched no case, or waived nothing."""
        out = []
        for w in self.waivers:
            if w.id in self.inactive:
                out.append(f"waiver {w.id} matches nothing: it does not apply to this run "
                           f"({'; '.join(self.inactive[w.id])})")
            elif not self.matched[w.id]:
                out.append(f"waiver {w.id} matches nothing: no case id matches {', '.join(w.cases)}")
            elif not self.waived[w.id]:
                out.append(f"waiver {w.id} waived nothing: its {self.matched[w.id]} matching case(s) did not fail")
        return out

    def summary(self) -> dict[str, Any]:
        """``{"applied": [{"id", "link", "reason", "cases"}], "warnings": [...]}`` for report.json."""
        return {"applied": [{"id": w.id, "link": w.link, "reason": w.reason, "cases": list(self.waived[w.id])}
                            for w in self.waivers if self.waived[w.id]],
                "warnings": self.warnings()}

"""Finding and loading adapters.

An adapter is named either by its entry point in the group
``conv_conformance.adapters`` (``reference``, ``keras``, ...) or as
``"module:attr"`` (``attr`` may be dotted). The object found may be an
adapter instance, a class, or a factory called with no arguments.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .adapters import exec_process as _exec_process
from .adapters.exec_process import PREFIX as EXEC_PREFIX
from .adapters.exec_process import exec_adapter
from .contract import ContractError, check_adapter
from .environment import detect
from .levels import declaration_of

__all__ = ["GROUP", "AdapterError", "AdapterNotFound", "AdapterInfo", "RegisteredAdapter", "resolve",
           "load_adapter", "describe", "list_adapters", "adapter_name", "adapter_versions", "adapter_environment"]

GROUP = "conv_conformance.adapters"
_EXEC_MODULE = _exec_process.__name__
# Modules whose version a report records when an adapter has imported them.
_FRAMEWORKS = ("numpy", "tensorflow", "keras", "tf_keras", "torch", "jax", "jaxlib", "ml_dtypes")


class AdapterError(Exception):
    """An adapter could not be found, imported or built."""


class AdapterNotFound(AdapterError, LookupError):
    """No adapter of that name; the message lists the available ones."""


@dataclass(frozen=True)
class RegisteredAdapter:
    """A registered adapter: its name, its ``module:attr`` target, and why it
    does not import (None when it does)."""

    name: str
    target: str
    error: str | None = None


@dataclass
class AdapterInfo:
    """What a report records about a loaded adapter (:func:`describe`)."""

    name: str
    target: str
    versions: dict[str, str] = field(default_factory=dict)
    #: the adapter's own `cases_per_worker` attribute, if it is a positive integer (runner.run)
    cases_per_worker: int | None = None
    #: the environment of the process the adapter loaded in (conformance.environment.detect)
    environment: dict[str, Any] = field(default_factory=dict)
    #: the adapter's declaration (conformance.levels), JSON form; None when it declares nothing
    declaration: dict | None = None
    #: what the process printed while loading the adapter (absl, CUDA stubs, ...), bounded
    output: str = ""

    def adapter_record(self) -> dict[str, Any]:
        """The report's ``adapter`` field."""
        return {"name": self.name, "target": self.target, "versions": self.versions,
                "declaration": self.declaration}


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in metadata.entry_points(group=GROUP)}


def _available() -> str:
    names = sorted(_entry_points())
    return ", ".join(names) if names else "(none registered)"


def resolve(name: str) -> str:
    """The ``module:attr`` target of an adapter name (a target is returned as is).

    Raises AdapterNotFound, listing the registered adapters, for an unknown name.
    ``exec:COMMAND`` (an implementation speaking docs/exec-protocol.md) is its own target.
    """
    if name.startswith(EXEC_PREFIX):
        if not name[len(EXEC_PREFIX):].strip():
            raise AdapterNotFound(f"Adapter {name!r} names no command: write exec:COMMAND, "
                                  "e.g. exec:./my-implementation")
        return name
    if ":" in name:
        module, _, attr = name.partition(":")
        if not module or not attr:
            raise AdapterNotFound(f"Adapter {name!r} is not of the form 'module:attr'. "
                                  f"Registered adapters: {_available()}")
        return name
    points = _entry_points()
    if name not in points:
        raise AdapterNotFound(f"Unknown adapter {name!r}. Registered adapters (entry-point group "
                              f"{GROUP!r}): {_available()}; or give 'module:attr'.")
    return points[name]


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(f"Cannot import module {module_name!r} of adapter {target!r}: "
                           f"{type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            public = sorted(n for n in dir(obj) if not n.startswith("_"))
            raise AdapterNotFound(f"Module {module_name!r} has no attribute {attr!r} "
                                  f"(adapter {target!r}); it defines: {', '.join(public)}") from None
    return obj


def out_of_process(name: str) -> bool:
    """Whether the adapter ``name`` computes in a process of its own (``exec:`` and the named
    adapters built on it): a worker is then only a client, and preloading it would start an
    implementation process that no case uses."""
    target = resolve(name)
    return target.startswith(EXEC_PREFIX) or target.partition(":")[0] == _EXEC_MODULE


def load_adapter(name: str) -> Any:
    """The adapter named ``name`` (entry-point name or ``module:attr``), ready to call.

    A class or a factory is called with no arguments; the result must have a
    callable ``forward``.
    """
    target = resolve(name)
    if target.startswith(EXEC_PREFIX):
        try:
            return exec_adapter(target)
        except Exception as exc:  # cannot start, no hello, a malformed hello
            raise AdapterError(f"Starting adapter {target!r} failed: {exc}") from exc
    obj = _import_target(target)
    if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "forward")):
        try:
            obj = obj()
        except Exception as exc:
            raise AdapterError(f"Building adapter {target!r} with no arguments raised "
                               f"{type(exc).__name__}: {exc}") from exc
    try:
        check_adapter(obj, target)
    except ContractError as exc:
        raise AdapterError(str(exc)) from None
    return obj


def describe(adapter: Any, target: str) -> AdapterInfo:
    """The name, versions, declaration and environment of an adapter loaded in this process
    (a malformed declaration raises conformance.levels.DeclarationError)."""
    preferred = getattr(adapter, "cases_per_worker", None)
    declared = declaration_of(adapter)
    return AdapterInfo(adapter_name(adapter, target), resolve(target), adapter_versions(adapter),
                       preferred if isinstance(preferred, int) and preferred > 0 else None,
                       detect(adapter_environment(adapter)),
                       declared.to_json() if declared is not None else None)


def adapter_name(adapter: Any, default: str) -> str:
    """The adapter's ``name`` attribute, else ``default``."""
    name = getattr(adapter, "name", None)
    return name if isinstance(name, str) and name else default


def adapter_versions(adapter: Any) -> dict[str, str]:
    """Versions for the report: the adapter's own ``versions`` (attribute or
    method) over those of the frameworks it has imported."""
    found = {}
    for module in _FRAMEWORKS:
        mod = sys.modules.get(module)
        version = getattr(mod, "__version__", None) if mod is not None else None
        if isinstance(version, str):
            found[module] = version
    own = getattr(adapter, "versions", None)
    try:
        own = own() if callable(own) else own
    except Exception:
        own = None
    if isinstance(own, dict):
        found.update({str(k): str(v) for k, v in own.items()})
    return found


def adapter_environment(adapter: Any) -> dict[str, str]:
    """The adapter's own environment facts (its optional ``environment()`` method);
    a method that raises is recorded as such rather than losing the run."""
    method = getattr(adapter, "environment", None)
    if not callable(method):
        return {}
    try:
        facts = method()
    except Exception as exc:  # noqa: BLE001
        return {"environment_error": f"{type(exc).__name__}: {exc}"}
    return {str(k): str(v) for k, v in facts.items()} if isinstance(facts, dict) else {}


def list_adapters() -> list[RegisteredAdapter]:
    """Every registered adapter, sorted by name, with the error that stops it
    importing (None when it imports)."""
    infos = []
    for name, target in sorted(_entry_points().items()):
        try:
            _import_target(target)
            error = None
        except Exception as exc:
            error = str(exc)
        infos.append(RegisteredAdapter(name, target, error))
    return infos

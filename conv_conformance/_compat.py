"""Old import paths, kept working for one release with a DeprecationWarning.

Two kinds of old path exist:

* **Top-level names in a source checkout.** Run from the repository's top level, ``import
  conformance`` finds the folder ``conformance/`` as a top-level package, a second copy of
  ``conv_conformance.conformance`` with its own classes: an adapter that raised that copy's
  ``Unsupported`` had every decline scored as ``error``. :func:`alias_top_level` makes the old
  name the same module objects as the new one (``conformance.X is conv_conformance.conformance.X``).
* **Modules that moved.** A module left at its old path forwards its names to the new home
  (:func:`forward`).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Any, Callable

__all__ = ["alias_top_level", "forward", "PACKAGES"]

#: The four packages, importable in a source checkout under their folder names too.
PACKAGES = ("reference", "oracle", "conformance", "reports")


class _AliasLoader(importlib.abc.Loader):
    """Loads ``old.X`` as the already imported ``conv_conformance.old.X``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module is the new one, already executed."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``conformance.X`` (any of :data:`PACKAGES`) as ``conv_conformance.conformance.X``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top not in PACKAGES or sys.modules.get(top) is not sys.modules.get(f"conv_conformance.{top}"):
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(f"conv_conformance.{fullname}"))


_FINDER = _AliasFinder()


def alias_top_level(name: str) -> None:
    """Called by each package's ``__init__`` with its ``__name__``: under an old top-level name,
    make that name (and every submodule under it) the ``conv_conformance`` package itself."""
    if name not in PACKAGES:
        return  # imported as conv_conformance.<name>: nothing to do
    warnings.warn(f"`import {name}` is deprecated: import conv_conformance.{name} (the old name goes in the "
                  "next release)", DeprecationWarning, stacklevel=3)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    sys.modules[name] = importlib.import_module(f"conv_conformance.{name}")


def forward(old: str, new: str | dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that moved out of ``old``: to the module ``new``, or, with
    a dict, each listed name to its own module. Each name read from the old module warns once
    per access and returns the new module's object."""

    def __getattr__(attr: str) -> Any:
        home = new.get(attr) if isinstance(new, dict) else new
        if attr.startswith("__") or home is None:
            raise AttributeError(f"module {old!r} has no attribute {attr!r}")
        module = importlib.import_module(home)
        if not hasattr(module, attr):
            raise AttributeError(f"module {old!r} has no attribute {attr!r} (it moved to {home})")
        warnings.warn(f"{old}.{attr} moved to {home}.{attr}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return getattr(module, attr)

    return __getattr__

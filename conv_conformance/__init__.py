"""conv-conformance: a conformance suite and float64 oracle for convolutional layers with Keras semantics.

The one import name the distribution installs. Its four packages are the repository's
top-level folders, in pipeline order (each imports only those to its left)::

    conv_conformance.reference    the float64 NumPy reference (NumPy and the standard library only)
    conv_conformance.oracle       cross-checks against TensorFlow, case sets, tolerances
    conv_conformance.conformance  the harness: adapters, scoring, workers, CLI, pytest plugin
    conv_conformance.reports      JSON, JUnit, Markdown, HTML, scoreboards, baseline comparison

The short form in docs: ``import conv_conformance.reference as reference``.
"""
from __future__ import annotations

import os as _os

# Installed (a wheel, or an editable install's finder), the four packages are subpackages of this
# one. In a source checkout used without installing, they are this folder's siblings: add the
# repository's top level to this package's search path so `conv_conformance.reference` is
# `<checkout>/reference` there too.
_here = _os.path.dirname(_os.path.abspath(__file__))
_top = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "reference")) and _os.path.isfile(
        _os.path.join(_top, "reference", "__init__.py")):
    __path__.append(_top)  # type: ignore[name-defined]  # noqa: F821


def __getattr__(name: str):
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("conv-conformance")
        except metadata.PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'conv_conformance' has no attribute {name!r}")

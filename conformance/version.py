"""What ``conv-conformance --version`` prints: the suite version, the corpus id of each
profile, and the versions of the frameworks installed beside it.

Framework versions come from the installed distributions' metadata
(:mod:`importlib.metadata`), so nothing heavy is imported: ``--version`` answers
in the time it takes to generate the case sets.
"""
from __future__ import annotations

from importlib import metadata
from typing import Callable, Iterable, Iterator

from conv_conformance.oracle.case import corpus_id
from conv_conformance.oracle.cases import case_set

from .report import suite_version

__all__ = ["FRAMEWORKS", "framework_versions", "version_lines"]

#: (label, distributions that provide it, first installed wins) for the frameworks the adapters wrap.
FRAMEWORKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("numpy", ("numpy",)),
    ("tensorflow", ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu")),
    ("keras", ("keras",)),
    ("tf-keras", ("tf-keras",)),
    ("torch", ("torch",)),
    ("jax", ("jax",)),
    ("jaxlib", ("jaxlib",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("openvino", ("openvino",)),
    ("litert", ("ai-edge-litert", "tflite-runtime")),
)


def framework_versions(frameworks: Iterable[tuple[str, tuple[str, ...]]] = FRAMEWORKS) -> dict[str, str]:
    """``{label: "version (distribution)"}`` for every framework with an installed distribution,
    read from package metadata without importing the framework."""
    found: dict[str, str] = {}
    for label, distributions in frameworks:
        for dist in distributions:
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
            found[label] = version if dist == label else f"{version} ({dist})"
            break
    return found


def version_lines(profiles: Iterable[str], corpus: Callable[[str], str] | None = None) -> Iterator[str]:
    """The lines of ``--version``, one at a time (a large profile takes seconds to generate).

    ``corpus(profile)`` gives a profile's corpus id (default: hash of its case set); a profile
    that cannot be generated is shown with the reason instead of stopping the listing."""
    if corpus is None:
        def corpus(profile: str) -> str:
            return corpus_id(case_set(profile))

    yield f"conv-conformance {suite_version()}"
    yield "corpus ids:"
    for profile in profiles:
        try:
            ident = corpus(profile)
        except Exception as exc:  # noqa: BLE001 - one broken profile must not hide the others
            ident = f"unavailable ({type(exc).__name__}: {exc})"
        yield f"  {profile:<11} {ident}"
    found = framework_versions()
    yield "frameworks found:" + ("" if found else " none")
    for label, version in found.items():
        yield f"  {label:<11} {version}"

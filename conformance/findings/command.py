"""``conv-conformance findings``: list the catalogue, write one finding's reproducer and bug report.

The reproducer is the standalone script generated from the entry (only the framework and NumPy;
``reproducer_script``); the bug report is the text a user pastes into the upstream tracker: the
title, the environment of this machine, expected against actual, and the minimal code.
"""
from __future__ import annotations

import json
import platform
from importlib import metadata
from typing import Sequence

from ..environment import cpu_info, onednn_isa
from . import Catalogue, Finding
from .reproducers import language, reproducer_script

__all__ = ["listing", "bug_report", "PACKAGES"]

#: The distributions whose versions a bug report names, per framework of the catalogue.
PACKAGES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "keras"), "keras": ("keras", "tensorflow", "tensorflow-cpu"),
            "tf_keras": ("tf-keras", "tensorflow", "tensorflow-cpu"), "torch": ("torch",),
            "onednn": ("tensorflow", "tensorflow-cpu", "torch"), "jax": ("jax", "jaxlib"),
            "onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx"),
            "litert": ("ai-edge-litert", "tensorflow", "tensorflow-cpu")}
#: Frameworks that are not Python distributions: what the bug report names instead.
NON_PYTHON = {"tfjs": "@tensorflow/tfjs (npm; run the reproducer with node)"}


def listing(findings: Sequence[Finding]) -> str:
    """One line per finding: id, status, framework, adapters, expected verdicts, title."""
    if not findings:
        return "no finding matches"
    width = max(len(f.id) for f in findings)
    return "\n".join(f"{f.id:<{width}}  {f.status:<6}  {f.framework:<11}  {','.join(f.adapters):<24}  "
                     f"{'/'.join(f.verdicts):<18}  {f.title}" for f in findings)


def _installed(names: Sequence[str]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _machine() -> str:
    cpu = cpu_info()
    return (f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"{cpu['model']} ({cpu['vendor']}), ISA {cpu['isa']}, oneDNN ISA {onednn_isa(cpu)}")


def bug_report(finding: Finding, catalogue: Catalogue) -> str:
    """Markdown for an upstream issue: title, environment, expected vs actual, minimal code."""
    doc = finding.doc
    versions = _installed(PACKAGES.get(finding.framework, ()))
    lines = [f"# {finding.title}", "",
             f"**Environment**: {', '.join(f'{k} {v}' for k, v in versions.items()) or NON_PYTHON.get(finding.framework, 'the framework is not installed here')}; "
             f"{_machine()}. Measured on: {', '.join(f'{k} {v}' for k, v in finding.versions.items()) or 'see below'}.",
             "", f"**Expected vs actual**: {doc.get('what', finding.title)}", "",
             f"**When**: {doc.get('condition', '')}", "",
             f"**Cause (as far as known)**: {finding.cause}", ""]
    if doc.get("evidence"):
        lines += [f"**Evidence**: {doc['evidence']}", ""]
    script = reproducer_script(finding)
    if script:
        needs = "the framework" if language(finding) == "javascript" else "the framework and NumPy"
        lines += [f"**Minimal reproducer** (needs only {needs}; prints expected, actual, the error "
                  "and the environment; exits 1 while the bug is present):", "", f"```{language(finding)}", script.rstrip(),
                  "```", ""]
    else:
        lines += ["(No standalone reproducer is catalogued for this finding yet.)", ""]
    lines += [f"Condition as data (conv-conformance catalogue entry {finding.id}): "
              f"`{json.dumps(finding.condition)}`", ""]
    return "\n".join(lines)


def run(catalogue: Catalogue, *, finding_id: str | None, framework: str | None, status: str | None,
        reproducer: bool, report: bool) -> tuple[int, str]:
    """The command's exit status and text."""
    if finding_id is None:
        return 0, listing(catalogue.select(framework=framework, status=status))
    finding = catalogue[finding_id]
    if reproducer:
        script = reproducer_script(finding)
        if not script:
            return 1, f"finding {finding.id} has no standalone reproducer in the catalogue yet"
        return 0, script
    if report:
        return 0, bug_report(finding, catalogue)
    return 0, json.dumps(finding.to_json(), indent=1)

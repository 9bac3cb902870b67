"""Standalone reproducers, generated from the catalogue entries.

An entry's ``reproducer`` holds the smallest failing case as data and the few lines that build it:

* ``framework``: the module the script needs besides NumPy (``tensorflow``, ``torch``, ``jax``);
* ``env``: environment variables set before the framework is imported (e.g. oneDNN off);
* ``case``: ``{"spec", "input_shape", "dtype"}``, the case the lines build, so that the catalogue's
  condition can be evaluated for it (the CI test runs the script only where the condition holds);
* ``code``: Python that defines ``expected`` (a NumPy float64 array computed in a few lines of
  NumPy), ``actual()`` (the framework's result, or an exception), ``ALLOWED`` (the largest
  absolute error that is not the bug), ``environment()`` (a dict of the facts that decide it) and,
  for a divergence that raises, ``RAISES`` (the exception names; any other exception means the
  script itself broke: exit 2, never taken for the bug);
* ``repeat``: how many times ``actual()`` is called (more than one for a nondeterministic finding:
  the bug is present when any call is wrong).

:func:`reproducer_script` wraps the code in a fixed frame that prints expected, actual, the error
and the environment (one ``environment:`` line of JSON) and exits 1 while the bug is present, 0
once it is fixed. The scripts import nothing of this suite. ``scripts/findings_docs.py`` writes
them to ``docs/findings/reproducers/<id>.py``.
"""
from __future__ import annotations

import json
from typing import Any

from . import Finding

__all__ = ["reproducer_script", "FRAME"]

FRAME = '''#!/usr/bin/env python3
"""{id}: {title}.

Cause: {cause}
Framework: {framework}; measured on {versions}.
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only {module} and NumPy.
Generated from the conv-conformance findings catalogue (entry {id}); regenerate, do not edit.
"""
import os

{env}import json
import platform
import sys

import numpy as np

RAISES = ()  # the names of the exceptions the divergence raises; any other means this script broke

{code}

REPEAT = {repeat}


def main():
    print("environment:", json.dumps(dict(environment(), python=platform.python_version(),
                                          machine=platform.machine())))
    print("expected:", np.array2string(np.asarray(expected), precision=6, threshold=20))
    present = False
    for call in range(REPEAT):
        try:
            got = np.asarray(actual(), dtype=np.float64)
        except Exception as exc:  # the divergence may be an exception
            print(f"actual (call {{call + 1}}): raised {{type(exc).__name__}}: {{str(exc).strip().splitlines()[0][:300]}}")
            if type(exc).__name__ not in RAISES:
                print(f"the reproducer itself failed: the divergence raises {{' or '.join(RAISES) or 'nothing'}}")
                return 2
            present = True
            continue
        if got.shape != np.shape(expected):
            print(f"actual (call {{call + 1}}): shape {{got.shape}}, expected shape {{np.shape(expected)}}")
            present = True
            continue
        error = float(np.max(np.abs(got - expected))) if got.size else 0.0
        print(f"actual (call {{call + 1}}):", np.array2string(got, precision=6, threshold=20))
        print(f"error (call {{call + 1}}): {{error:.3g}} (allowed {{ALLOWED:.3g}})")
        present = present or not error <= ALLOWED
    print("divergence present" if present else "divergence not reproduced: fixed, or not this environment")
    return 1 if present else 0  # 2: the script itself failed (an exception the divergence does not raise)


if __name__ == "__main__":
    sys.exit(main())
'''


def reproducer_script(finding: Finding) -> str | None:
    """The standalone script of ``finding``, or None when its entry has no reproducer."""
    repro: Any = finding.reproducer
    if not repro or not repro.get("code"):
        return None
    env = "".join(f"os.environ[{k!r}] = {v!r}\n" for k, v in (repro.get("env") or {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in finding.versions.items()) or "see the catalogue"
    return FRAME.format(id=finding.id, title=finding.title, cause=finding.cause, framework=finding.framework,
                        versions=versions, module=repro["framework"], env=env + ("\n" if env else ""),
                        code=repro["code"].rstrip("\n"), repeat=int(repro.get("repeat", 1)))


def case_of(finding: Finding) -> dict[str, Any]:
    """The case the reproducer builds: spec, input_shape, dtype."""
    return json.loads(json.dumps(finding.reproducer["case"]))

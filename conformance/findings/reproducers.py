"""Standalone reproducers, generated from the catalogue entries.

An entry's ``reproducer`` holds the smallest failing case as data and the few lines that build it:

* ``framework``: the module the script needs besides NumPy (``tensorflow``, ``torch``, ``jax``);
* ``env``: environment variables set before the framework is imported (e.g. oneDNN off);
* ``case``: ``{"spec", "input_shape", "dtype"}``, the case the lines build, so that the catalogue's
  condition can be evaluated for it (the CI test runs the script only where the condition holds);
* ``code``: Python that defines ``expected`` (a NumPy float64 array computed in a few lines of
  NumPy), ``actual()`` (the framework's result, or an exception), ``ALLOWED`` (the largest
  absolute error that is not the bug: a number, or an array of one per element; ``EXPECT_RAISE =
  True`` and ``expected = None`` where Keras 3 raises and a result is the divergence), ``environment()`` (a dict of the facts that decide it) and,
  for a divergence that raises, ``RAISES`` (the exception names; any other exception means the
  script itself broke: exit 2, never taken for the bug);
* ``repeat``: how many times ``actual()`` is called (more than one for a nondeterministic finding:
  the bug is present when any call is wrong).

A TensorFlow.js finding (``framework`` ``tfjs``) has a Node script instead (:data:`JS_FRAME`): its
``code`` is JavaScript that defines ``expected`` (``{shape, data}``, computed in plain JS),
``actual()`` (a tensor, possibly async), ``ALLOWED`` and, for a divergence that raises, ``RAISES``
(substrings of the error message); ``EXPECT_RAISE = true`` where Keras raises and TF.js returns a
result. ``backend`` names the TF.js backend (``cpu``, ``wasm``). The script needs only
``@tensorflow/tfjs`` (and ``@tensorflow/tfjs-backend-wasm``), found by Node's module resolution
(``NODE_PATH=clients/tfjs/node_modules`` in this repository).

:func:`reproducer_script` wraps the code in a fixed frame that prints expected, actual, the error
and the environment (one ``environment:`` line of JSON) and exits 1 while the bug is present, 0
once it is fixed. The scripts import nothing of this suite. ``scripts/findings_docs.py`` writes
them to ``docs/findings/reproducers/<id>.py``.
"""
from __future__ import annotations

import json
from typing import Any

from . import Finding

__all__ = ["reproducer_script", "FRAME", "JS_FRAME", "filename", "language"]

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
EXPECT_RAISE = False  # True: Keras 3 raises here, and returning a result is the divergence

{code}

REPEAT = {repeat}


def main():
    print("environment:", json.dumps(dict(environment(), python=platform.python_version(),
                                          machine=platform.machine())))
    print("expected:", "an exception (Keras 3 rejects this)" if EXPECT_RAISE else
          np.array2string(np.asarray(expected), precision=6, threshold=20))
    present = False
    for call in range(REPEAT):
        try:
            got = np.asarray(actual(), dtype=np.float64)
        except Exception as exc:  # the divergence may be an exception
            print(f"actual (call {{call + 1}}): raised {{type(exc).__name__}}: {{(str(exc).strip().splitlines() or [''])[0][:300]}}")
            if EXPECT_RAISE:
                continue
            if type(exc).__name__ not in RAISES:
                print(f"the reproducer itself failed: the divergence raises {{' or '.join(RAISES) or 'nothing'}}")
                return 2
            present = True
            continue
        if EXPECT_RAISE:
            print(f"actual (call {{call + 1}}): a result of shape {{got.shape}}")
            present = True
            continue
        if got.shape != np.shape(expected):
            print(f"actual (call {{call + 1}}): shape {{got.shape}}, expected shape {{np.shape(expected)}}")
            present = True
            continue
        diff = np.abs(got - expected)
        error = float(np.max(diff)) if got.size else 0.0
        print(f"actual (call {{call + 1}}):", np.array2string(got, precision=6, threshold=20))
        if np.ndim(ALLOWED) == 0:
            print(f"error (call {{call + 1}}): {{error:.3g}} (allowed {{ALLOWED:.3g}})")
            present = present or not error <= ALLOWED
        else:  # an allowed error per element
            ratio = float(np.max(diff / ALLOWED)) if got.size else 0.0
            print(f"error (call {{call + 1}}): {{error:.3g}}; worst error / allowed {{ratio:.3g}} (over 1: outside)")
            present = present or not np.all(diff <= ALLOWED)
    print("divergence present" if present else "divergence not reproduced: fixed, or not this environment")
    return 1 if present else 0  # 2: the script itself failed (an exception the divergence does not raise)


if __name__ == "__main__":
    sys.exit(main())
'''


JS_FRAME = """#!/usr/bin/env node
/* @ID@: @TITLE@.

Cause: @CAUSE@
Framework: @FRAMEWORK@; measured on @VERSIONS@ (backend @BACKEND@).
Exits 1 while the divergence is present, 0 once it is fixed (2 if the script itself fails).
Needs only @tensorflow/tfjs@WASM@ (npm install, or NODE_PATH pointing at a node_modules that has it).
Generated from the conv-conformance findings catalogue (entry @ID@); regenerate, do not edit.
*/
"use strict";
const tf = require("@tensorflow/tfjs");

const BACKEND = "@BACKEND@";
let RAISES = [];  // substrings of the messages the divergence raises; any other error means this script broke
let EXPECT_RAISE = false;  // true: Keras raises here, and TF.js returning a result is the divergence

@CODE@

const REPEAT = @REPEAT@;

function show(values) {
  const shown = Array.from(values).slice(0, 20).map((v) => Number(v).toPrecision(7));
  return `[${shown.join(", ")}${values.length > 20 ? ", ..." : ""}]`;
}

async function main() {
  if (BACKEND === "wasm") {
    const path = require("path");
    const wasm = require("@tensorflow/tfjs-backend-wasm");
    wasm.setWasmPaths(path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm")), path.sep));
  }
  if (!(await tf.setBackend(BACKEND))) {
    console.log(`the reproducer itself failed: backend ${BACKEND} did not initialize`);
    return 2;
  }
  tf.enableProdMode();
  console.log("environment:", JSON.stringify({"@tensorflow/tfjs": tf.version.tfjs, backend: tf.getBackend(),
                                              node: process.version, platform: process.platform, arch: process.arch}));
  console.log("expected:", EXPECT_RAISE ? "an error (Keras rejects this configuration)"
                                        : `shape [${expected.shape}] ${show(expected.data)}`);
  let present = false;
  for (let call = 1; call <= REPEAT; call++) {
    let got;
    try {
      got = await actual();
    } catch (exc) {
      const message = String((exc && exc.message) || exc).split("\\n")[0].slice(0, 300);
      console.log(`actual (call ${call}): raised ${(exc && exc.name) || "error"}: ${message}`);
      if (EXPECT_RAISE) continue;
      if (!RAISES.some((r) => message.includes(r))) {
        console.log(`the reproducer itself failed: the divergence raises ${RAISES.join(" or ") || "nothing"}`);
        return 2;
      }
      present = true;
      continue;
    }
    const shape = Array.from(got.shape), data = Array.from(got.dataSync());
    if (EXPECT_RAISE) {
      console.log(`actual (call ${call}): a result of shape [${shape}] ${show(data)}`);
      present = true;
      continue;
    }
    if (shape.join(",") !== expected.shape.join(",")) {
      console.log(`actual (call ${call}): shape [${shape}], expected shape [${expected.shape}]`);
      present = true;
      continue;
    }
    let error = 0;
    data.forEach((v, i) => { const e = Math.abs(v - expected.data[i]); error = Number.isNaN(e) ? Infinity : Math.max(error, e); });
    console.log(`actual (call ${call}): ${show(data)}`);
    console.log(`error (call ${call}): ${error.toPrecision(3)} (allowed ${ALLOWED.toPrecision(3)})`);
    present = present || !(error <= ALLOWED);
  }
  console.log(present ? "divergence present" : "divergence not reproduced: fixed, or not this environment");
  return present ? 1 : 0;
}

main().then((status) => process.exit(status),
            (exc) => { console.log(`the reproducer itself failed: ${(exc && exc.stack) || exc}`); process.exit(2); });
"""


def language(finding: Finding) -> str:
    """``javascript`` for a TensorFlow.js reproducer, ``python`` otherwise."""
    return "javascript" if (finding.reproducer or {}).get("framework") == "tfjs" else "python"


def filename(finding: Finding) -> str:
    """The reproducer's file name under docs/findings/reproducers/."""
    return f"{finding.id}.{'js' if language(finding) == 'javascript' else 'py'}"


def _js_script(finding: Finding, repro: Any) -> str:
    backend = repro.get("backend", "cpu")
    versions = ", ".join(f"{k} {v}" for k, v in finding.versions.items()) or "see the catalogue"
    fields = {"@ID@": finding.id, "@TITLE@": finding.title, "@CAUSE@": finding.cause, "@FRAMEWORK@": finding.framework,
              "@VERSIONS@": versions, "@BACKEND@": backend,
              "@WASM@": " and @tensorflow/tfjs-backend-wasm" if backend == "wasm" else "",
              "@CODE@": repro["code"].rstrip("\n"), "@REPEAT@": str(int(repro.get("repeat", 1)))}
    text = JS_FRAME
    for key, value in fields.items():
        text = text.replace(key, value)
    return text


def reproducer_script(finding: Finding) -> str | None:
    """The standalone script of ``finding``, or None when its entry has no reproducer."""
    repro: Any = finding.reproducer
    if not repro or not repro.get("code"):
        return None
    if language(finding) == "javascript":
        return _js_script(finding, repro)
    env = "".join(f"os.environ[{k!r}] = {v!r}\n" for k, v in (repro.get("env") or {}).items())
    versions = ", ".join(f"{k} {v}" for k, v in finding.versions.items()) or "see the catalogue"
    return FRAME.format(id=finding.id, title=finding.title, cause=finding.cause, framework=finding.framework,
                        versions=versions, module=repro["framework"], env=env + ("\n" if env else ""),
                        code=repro["code"].rstrip("\n"), repeat=int(repro.get("repeat", 1)))


def case_of(finding: Finding) -> dict[str, Any]:
    """The case the reproducer builds: spec, input_shape, dtype."""
    return json.loads(json.dumps(finding.reproducer["case"]))

"""docs/divergences.md and the reproducers are what the catalogue generates, and every reproducer
whose framework is installed still reproduces its finding wherever the finding's condition holds.

The reproducers run in one subprocess per framework and environment (importing TensorFlow takes
most of a reproducer's time: the TensorFlow family, tf.keras, tf-keras and LiteRT, shares one); a
reproducer whose condition cannot hold on this CPU whichever way the frameworks' oneDNN switches
are set (AVX-512 only, say) is skipped without running; a driver runs each script's ``main()`` and reports its exit status
with the environment the frameworks report afterwards (conformance.environment), over which the
catalogue's condition is evaluated for the reproducer's case. A reproducer that exits 0 where
its condition holds fails like a strict xfail that passes, naming the finding; a nondeterministic
finding is checked as the nondeterministic verdict is: one of its ``repeat`` calls is wrong.
TensorFlow.js reproducers are Node scripts, each run with ``node`` against clients/tfjs/node_modules
(skipped, saying so, without Node or ``npm ci`` there); their conditions read no environment.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from conv_conformance.conformance import environment, findings
from conv_conformance.conformance.findings.reproducers import filename, language, reproducer_script

ROOT = Path(__file__).resolve().parents[2]
REPRODUCERS = ROOT / "docs" / "findings" / "reproducers"
WITH_REPRODUCER = [f for f in findings.load() if reproducer_script(f)]
TFJS_MODULES = ROOT / "clients" / "tfjs" / "node_modules"

_DRIVER = r"""
import json, runpy, sys
from conv_conformance.conformance import environment
for path in sys.argv[1:]:
    try:
        status = runpy.run_path(path, run_name="reproducer")["main"]()
    except BaseException as exc:  # a reproducer that breaks is reported, not taken for the bug
        status = f"broke: {type(exc).__name__}: {exc}"
    env = {"onednn_isa": environment.onednn_isa(), "cpu": environment.cpu_info()}
    if environment.tensorflow_onednn() is not None:
        env["tensorflow"] = {"onednn": str(environment.tensorflow_onednn())}
    if environment.torch_mkldnn() is not None:
        env["torch"] = {"mkldnn": str(environment.torch_mkldnn())}
    print("REPRODUCER " + json.dumps({"path": path, "status": status, "env": env}), flush=True)
"""


def _docs_script():
    spec = importlib.util.spec_from_file_location("findings_docs", ROOT / "scripts" / "findings_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_page_and_reproducers_are_generated_from_the_catalogue():
    docs = _docs_script()
    stale = docs.stale(docs.expected_files())
    assert not stale, f"regenerate with `python scripts/findings_docs.py`: {[str(p.relative_to(ROOT)) for p in stale]}"


def test_every_reproducer_is_standalone():
    for f in WITH_REPRODUCER:
        text = (REPRODUCERS / filename(f)).read_text("utf-8")
        uses = ('require("@tensorflow/tfjs")' if language(f) == "javascript" else "import " + f.reproducer["framework"])
        assert "conv_conformance" not in text and "clients/tfjs" not in text and uses in text, f.id


#: Frameworks whose reproducers import TensorFlow: one process runs them all (per environment).
_TENSORFLOW_FAMILY = {"tensorflow", "tf_keras", "ai_edge_litert"}


def _group(f: findings.Finding) -> tuple:
    env = dict(f.reproducer.get("env") or {})
    framework = f.reproducer["framework"]
    if framework in _TENSORFLOW_FAMILY or (framework == "keras" and env.get("KERAS_BACKEND", "tensorflow") == "tensorflow"):
        framework, env["KERAS_BACKEND"] = "tensorflow", "tensorflow"
    return framework, tuple(sorted(env.items()))


def _could_hold_here(f: findings.Finding) -> bool:
    """Whether the condition can hold for the reproducer's case on this CPU (its flags, and the ISA
    oneDNN dispatches to under the reproducer's ONEDNN_MAX_CPU_ISA), TensorFlow's oneDNN and
    PyTorch's mkldnn each tried on and off."""
    case = f.reproducer["case"]
    with mock.patch.dict(os.environ, f.reproducer.get("env") or {}):
        cpu = environment.cpu_info()
        base = {"cpu": cpu, "onednn_isa": environment.onednn_isa(cpu)}
    return any(findings.load().holds(f.id, case["spec"], case["input_shape"], case["dtype"],
                                     {**base, "tensorflow": {"onednn": tf}, "torch": {"mkldnn": pt}},
                                     kind=case.get("kind", "valid"), adapter=case.get("adapter"))
               for tf, pt in itertools.product(("True", "False"), repeat=2))


@functools.cache
def _run_group(group: tuple) -> dict[str, dict]:
    framework, env = group
    paths = [str(REPRODUCERS / filename(f)) for f in WITH_REPRODUCER if _group(f) == group and _could_hold_here(f)]
    proc = subprocess.run([sys.executable, "-c", _DRIVER, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **dict(env)})
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("REPRODUCER "):
            record = json.loads(line[len("REPRODUCER "):])
            out[Path(record["path"]).stem] = record
    assert out, f"the driver reported nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return out


def _run_node(finding: findings.Finding) -> dict:
    proc = subprocess.run(["node", str(REPRODUCERS / filename(finding))], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "NODE_PATH": str(TFJS_MODULES)})
    status = proc.returncode if proc.returncode in (0, 1) else f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[-1500:]}"
    return {"status": status, "env": {"onednn_isa": "n/a"}}


@pytest.mark.slow
@pytest.mark.kernels
@pytest.mark.parametrize("finding", WITH_REPRODUCER, ids=lambda f: f.id)
def test_reproducer_still_reproduces_where_its_condition_holds(finding):
    framework = finding.reproducer["framework"]
    if not _could_hold_here(finding):
        pytest.skip(f"{finding.id}'s condition cannot hold on this CPU (oneDNN ISA {environment.onednn_isa()}, "
                    f"{environment.cpu_info()['model']}): {finding.doc.get('condition', '')[:200]}")
    if language(finding) == "javascript":
        if shutil.which("node") is None or not TFJS_MODULES.is_dir():
            pytest.skip("TensorFlow.js is not installed: needs `node` and `npm ci` in clients/tfjs")
        record = _run_node(finding)
    elif importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    else:
        record = _run_group(_group(finding))[finding.id]
    case = finding.reproducer["case"]
    holds = findings.load().holds(finding.id, case["spec"], case["input_shape"], case["dtype"], record["env"],
                                  kind=case.get("kind", "valid"), adapter=case.get("adapter"))
    if not holds:  # what it did here says nothing of the finding (another one may even stop it: O2)
        pytest.skip(f"{finding.id}'s condition does not hold here (environment {record['env']['onednn_isa']}, "
                    f"{ {k: v for k, v in record['env'].items() if k in ('tensorflow', 'torch')} }; "
                    f"the reproducer's status {record['status']})")
    assert record["status"] in (0, 1), (f"{finding.id}: the reproducer itself failed (exit 2: an exception the "
                                        f"divergence does not raise, or it broke): {record['status']}")
    assert record["status"] == 1, (f"{finding.id} no longer reproduces under its condition: the framework "
                                   f"fixed it, or the catalogue entry is stale ({finding.title})")

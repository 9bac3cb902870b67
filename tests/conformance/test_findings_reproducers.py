"""docs/divergences.md and the reproducers are what the catalogue generates, and every reproducer
whose framework is installed still reproduces its finding wherever the finding's condition holds.

The reproducers run in one subprocess per framework and environment (importing TensorFlow takes
most of a reproducer's time); a driver runs each script's ``main()`` and reports its exit status
with the environment the frameworks report afterwards (conformance.environment), over which the
catalogue's condition is evaluated for the reproducer's case. A reproducer that exits 0 where
its condition holds fails like a strict xfail that passes, naming the finding; a nondeterministic
finding is checked as the nondeterministic verdict is: one of its ``repeat`` calls is wrong.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conv_conformance.conformance import findings
from conv_conformance.conformance.findings.reproducers import reproducer_script

ROOT = Path(__file__).resolve().parents[2]
REPRODUCERS = ROOT / "docs" / "findings" / "reproducers"
WITH_REPRODUCER = [f for f in findings.load() if reproducer_script(f)]

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
        text = (REPRODUCERS / f"{f.id}.py").read_text("utf-8")
        assert "conv_conformance" not in text and "import " + f.reproducer["framework"] in text, f.id


def _group(f: findings.Finding) -> tuple:
    return f.reproducer["framework"], tuple(sorted((f.reproducer.get("env") or {}).items()))


@functools.cache
def _run_group(group: tuple) -> dict[str, dict]:
    framework, env = group
    paths = [str(REPRODUCERS / f"{f.id}.py") for f in WITH_REPRODUCER if _group(f) == group]
    proc = subprocess.run([sys.executable, "-c", _DRIVER, *paths], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **dict(env)})
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("REPRODUCER "):
            record = json.loads(line[len("REPRODUCER "):])
            out[Path(record["path"]).stem] = record
    assert out, f"the driver reported nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return out


@pytest.mark.slow
@pytest.mark.kernels
@pytest.mark.parametrize("finding", WITH_REPRODUCER, ids=lambda f: f.id)
def test_reproducer_still_reproduces_where_its_condition_holds(finding):
    framework = finding.reproducer["framework"]
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    record = _run_group(_group(finding))[finding.id]
    assert record["status"] in (0, 1), (f"{finding.id}: the reproducer itself failed (exit 2: an exception the "
                                        f"divergence does not raise, or it broke): {record['status']}")
    case = finding.reproducer["case"]
    holds = findings.load().holds(finding.id, case["spec"], case["input_shape"], case["dtype"], record["env"],
                                  adapter=case.get("adapter"))
    if not holds:
        pytest.skip(f"{finding.id}'s condition does not hold here (environment {record['env']['onednn_isa']}, "
                    f"{ {k: v for k, v in record['env'].items() if k in ('tensorflow', 'torch')} })")
    assert record["status"] == 1, (f"{finding.id} no longer reproduces under its condition: the framework "
                                   f"fixed it, or the catalogue entry is stale ({finding.title})")

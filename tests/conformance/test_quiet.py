"""A quiet terminal: what TensorFlow prints when a worker imports it (absl's pre-init warning, the
CUDA stub, oneDNN's notice) goes into the run's captured output, not to the terminal; a default
run shows the progress, failures and summary only, and --verbose shows the captured lines."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("conv-conformance"))
# TensorFlow's start-up lines on this machine (absl, the CUDA stub, oneDNN), whatever their level.
NOISE = ("absl::InitializeLog", "cudart_stub", "Could not find cuda drivers", "oneDNN custom operations",
         "TF_ENABLE_ONEDNN_OPTS", "E0000 ", "W0000 ", "I0000 ")



def _run(tmp_path, adapter, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # TensorFlow at its chattiest: level 0
    return subprocess.run([EXE, "run", "--adapter", adapter, "--layers", "Cropping1D", "--out",
                           str(tmp_path / "out"), *extra], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


@pytest.mark.tensorflow
def test_default_run_of_keras_prints_no_framework_noise(tmp_path):
    pytest.importorskip("tensorflow")
    proc = _run(tmp_path, "keras")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    noise = [line for line in (proc.stderr + proc.stdout).splitlines() if any(n in line for n in NOISE)]
    assert not noise, noise
    assert "cases in" in proc.stdout and "report:" in proc.stdout


@pytest.mark.tensorflow  # its adapter imports TensorFlow, whose start-up output is what it shows
def test_verbose_shows_what_the_worker_printed(tmp_path):
    """tests/conformance/fixtures/faults.py ImportNoise prints TensorFlow's lines while it loads
    (from Python and from C) and one line per Cropping1D case."""
    quiet = _run(tmp_path, "tests.conformance.fixtures.faults:ImportNoise")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert not any(n in quiet.stderr for n in NOISE) and "forward of" not in quiet.stderr
    loud = _run(tmp_path, "tests.conformance.fixtures.faults:ImportNoise", "--verbose")
    assert "--- output of the worker while loading" in loud.stderr
    assert "absl::InitializeLog" in loud.stderr and "cudart_stub.cc" in loud.stderr
    assert "--- output of Cropping1D-" in loud.stderr and "forward of Cropping1D on (" in loud.stderr

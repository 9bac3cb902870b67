"""Nothing lost: a run killed with SIGKILL at any moment leaves its records on disk, and
`run --resume DIR` finishes it into the report an uninterrupted run writes (apart from
timestamps and timings). The kills are real: the CLI runs in a subprocess and gets SIGKILL
after some records, or kills itself inside the final write of report.json."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXE = str(Path(sys.executable).with_name("conv-conformance"))
ARGS = ["run", "--adapter", "tests.conformance.fixtures.broken:WrongValues", "--layers",
        "Conv1D,Cropping1D,ZeroPadding1D", "--jobs", "2"]
_ENV = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
_TIMING = {"seconds"}
_TOP_TIMING = {"started", "finished"}

# Runs the CLI in this process after arranging a SIGKILL of itself at a point of the final write.
_KILL_IN_FINISH = """
import os, signal, sys
import conv_conformance.conformance.report as report
where = sys.argv[1]
real_finish, real_fsync, real_replace = report.ReportWriter.finish, os.fsync, os.replace

def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)

def finish(self, **kwargs):  # the patches hold from the final write on
    if where == "before-rename":   # report.json.tmp complete, report.json not yet replaced
        os.fsync = lambda fd: (real_fsync(fd), die())
    else:                          # report.json in place, the partial file not yet removed
        os.replace = lambda a, b: (real_replace(a, b), die())
    return real_finish(self, **kwargs)

report.ReportWriter.finish = finish
from conv_conformance.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _cli(*args, **kwargs):
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=_ENV, cwd=ROOT, timeout=600, **kwargs)


def _comparable(report: dict) -> dict:
    out = {k: v for k, v in report.items() if k not in _TOP_TIMING}
    out["cases"] = [{k: v for k, v in c.items() if k not in _TIMING} for c in report["cases"]]
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = _cli(*ARGS, "--out", str(out))
    assert proc.returncode == 1, proc.stderr[-2000:]
    return json.loads((out / "report.json").read_text())


def _partial_records(path: Path) -> list[dict]:
    """The complete lines of a partial file, each a JSON case record (a cut last line is allowed)."""
    lines = path.read_bytes().split(b"\n") if path.exists() else []
    complete = [json.loads(line) for line in lines[:-1]]
    assert all("id" in r and "verdicts" in r for r in complete)
    return complete


def _resume_and_compare(out: Path, uninterrupted: dict) -> None:
    done = len({r["id"] for r in _partial_records(out / "report.partial.jsonl")})
    proc = _cli("run", "--resume", str(out))
    assert proc.returncode == 1, proc.stderr[-2000:]
    total = len(uninterrupted["cases"])
    assert f"{done} of {total} cases already done, {total - done} to run" in proc.stderr
    final = json.loads((out / "report.json").read_text())
    assert _comparable(final) == _comparable(uninterrupted)
    assert not (out / "report.partial.jsonl").exists()


@pytest.mark.parametrize("after", [3])
def test_sigkill_during_the_run_then_resume(tmp_path, uninterrupted, after):
    out = tmp_path / "run"
    proc = subprocess.Popen([EXE, *ARGS, "--out", str(out)], env=_ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = out / "report.partial.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if partial.exists() and partial.read_bytes().count(b"\n") >= after:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    records = _partial_records(partial)
    # the kill came mid-run: at least `after` records kept, and cases left for the resume to score
    assert after <= len(records) < len(uninterrupted["cases"])
    _resume_and_compare(out, uninterrupted)


@pytest.mark.parametrize("where", ["before-rename", "after-rename"])
def test_sigkill_during_the_final_write_then_resume(tmp_path, uninterrupted, where):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", _KILL_IN_FINISH, where, *ARGS, "--out", str(out)],
                          capture_output=True, text=True, env=_ENV, cwd=ROOT, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(_partial_records(out / "report.partial.jsonl")) == len(uninterrupted["cases"])
    if where == "before-rename":
        assert not (out / "report.json").exists()
    else:  # the rename is atomic: the report in place is whole
        assert _comparable(json.loads((out / "report.json").read_text())) == _comparable(uninterrupted)
    _resume_and_compare(out, uninterrupted)


def test_resume_of_a_directory_without_a_run_is_a_usage_error(tmp_path):
    proc = _cli("run", "--resume", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "holds no run to resume" in proc.stderr

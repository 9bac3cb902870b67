"""The command line: run (report.json, exit codes 0/1/2/130), list-adapters, export, explore."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conv_conformance import reference
from conv_conformance.conformance import registry
from conv_conformance.cli import build_parser, main
from conv_conformance.oracle.cases import case_set, corpus_id
from tests.conformance.conftest import BROKEN

ROOT = Path(__file__).resolve().parents[2]
LAYERS = "Cropping1D,ZeroPadding1D,Conv1D"


def _report(directory: Path) -> dict:
    text = (directory / "report.json").read_text()
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} in report"))


def test_reference_smoke_is_conformant_and_the_report_is_valid(tmp_path, validate_report, capsys):
    assert main(["run", "--adapter", "reference", "--out", str(tmp_path), "--jobs", "2"]) == 0
    report = _report(tmp_path)
    validate_report(report)
    cases = case_set("smoke")
    assert report["corpus_id"] == corpus_id(cases)
    assert [c["id"] for c in report["cases"]] == [c.id for c in cases]
    summary = report["summary"]
    assert summary["conformant"] is True and summary["cases"] == len(cases)
    assert summary["counts"]["pass"] == len(cases)
    valid = sum(c.kind == "valid" for c in cases)
    assert summary["by_category"]["output"]["pass"] == valid
    assert summary["by_category"]["error_behaviour"]["pass"] == len(cases) - valid
    assert report["adapter"] == {"name": "reference",
                                 "target": "conv_conformance.conformance.adapters.reference:ReferenceAdapter",
                                 "versions": report["adapter"]["versions"],
                                 "declaration": report["adapter"]["declaration"]}
    assert set(report["adapter"]["declaration"]["layers"]) == set(reference.LAYERS)
    assert summary["levels"]["Conv2D"] == {"level": "full", "declined_features": [], "failing": 0, "declined": 0,
                                           "cases": sum(c.layer == "Conv2D" for c in cases)}
    assert report["jobs"] == 2 and report["profile"] == "smoke" and report["dtype"] == "float32"
    assert not (tmp_path / "report.partial.jsonl").exists()
    out, err = capsys.readouterr()
    assert out.startswith("CONFORMANT: ") and f"[{len(cases)}/{len(cases)}]" in err


def test_failing_adapter_exits_1_with_non_finite_ratios_as_strings(tmp_path, validate_report):
    code = main(["run", "--adapter", f"{BROKEN}:WrongValues", "--layers", LAYERS, "--dtype", "float64",
                 "--out", str(tmp_path)])
    assert code == 1
    report = _report(tmp_path)
    validate_report(report)
    assert report["summary"]["conformant"] is False and report["summary"]["counts"]["fail"] > 0
    # Cropping and ZeroPadding are exact (allowed 0): any difference is an infinite ratio
    exact = [c for c in report["cases"] if c["layer"] == "ZeroPadding1D" and c["kind"] == "valid"
             and c["input_shape"][0] > 0]  # an empty batch has no element to be wrong
    assert exact and all(c["worst_ratio"]["output"] == "inf" for c in exact)
    assert report["summary"]["worst_ratio"]["output"] == "inf"
    assert all(c["dtype"] == "float64" for c in report["cases"])


def test_crash_and_error_are_not_conformant(tmp_path, validate_report):
    assert main(["run", "--adapter", f"{BROKEN}:Exits", "--layers", LAYERS, "--out", str(tmp_path)]) == 1
    report = _report(tmp_path)
    validate_report(report)
    crashed = [c for c in report["cases"] if c["layer"] == "Cropping1D"]
    assert report["summary"]["counts"]["crash"] == len(crashed) > 0
    assert report["summary"]["counts"]["pass"] == len(report["cases"]) - len(crashed)


@pytest.mark.parametrize("argv, text", [
    (["run", "--adapter", "mylib"], "Unknown adapter 'mylib'. Registered adapters"),
    (["run", "--adapter", "reference", "--layers", "Conv2D,Conv4D"], "Received: Conv4D"),
    (["run", "--adapter", "reference", "--profile", "huge"], "invalid choice: 'huge'"),
    (["run", "--adapter", "reference", "--dtype", "int8"], "invalid choice: 'int8'"),
    (["run", "--adapter", "reference", "--jobs", "0"], "must be an integer >= 1"),
    (["run", "--adapter", "reference", "--timeout", "-1"], "must be a number of seconds > 0"),
    (["run", "--adapter", f"{BROKEN}:Nope", "--layers", "Conv1D"], "has no attribute 'Nope'"),
    (["run"], "Argument `--adapter` is required (or --resume DIR to finish a run)"),
    ([], "COMMAND"),
])
def test_usage_errors_exit_2_with_a_message(argv, text, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path)] if argv[:1] == ["run"] else argv) == 2
    assert text in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_unknown_layer_lists_the_valid_ones(capsys):
    assert main(["run", "--adapter", "reference", "--layers", "Conv4D"]) == 2
    assert "Conv1D, Conv1DTranspose, Conv2D" in capsys.readouterr().err


@pytest.fixture
def started():
    """Processes a test started; any still running at its end is killed with its workers."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _start(tmp_path, adapter: str, layers: str) -> subprocess.Popen:
    """The CLI in a process that inherits SIGINT ignored, as a shell without job control starts a
    background command; per-case and start-up timeouts far beyond what the tests wait for."""
    code = "import sys; from conv_conformance.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, "run", "--adapter", adapter, "--layers", layers,
                             "--timeout", "3600", "--out", str(tmp_path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignoring_sigint, start_new_session=True)


def _ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _records_at_least(path, count: int, proc: subprocess.Popen) -> None:
    """Wait, however long the machine takes, until ``path`` holds ``count`` records."""
    while not (path.exists() and len(path.read_text().splitlines()) >= count):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_hang_writes_a_partial_report_and_exits_130(tmp_path, validate_report, signum, started):
    """The hung case would run for an hour: an exit within the wait below can only be the signal's."""
    proc = _start(tmp_path, f"{BROKEN}:Hangs", "ZeroPadding1D,Cropping1D")
    started.append(proc)
    partial = tmp_path / "report.partial.jsonl"
    _records_at_least(partial, len(case_set("smoke", layers=["ZeroPadding1D"])), proc)  # ZeroPadding1D passes
    time.sleep(0.5)  # the next case, Cropping1D's first, hangs
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    report = _report(tmp_path)
    validate_report(report)
    assert report["interrupted"] is True and report["summary"]["conformant"] is False
    assert report["summary"]["counts"]["pass"] == report["summary"]["cases"] >= 5
    assert "INTERRUPTED" in out
    assert f"finish the run with: conv-conformance run --resume {tmp_path}" in err
    assert len(partial.read_text().splitlines()) == report["summary"]["cases"]  # kept for --resume


def test_a_signal_during_worker_start_up_exits_130(tmp_path, started):
    proc = _start(tmp_path, f"{BROKEN}:slow_to_load", "Cropping1D")
    started.append(proc)
    while not (tmp_path / "run.json").exists():  # written before the first worker starts
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    report = _report(tmp_path)
    assert report["interrupted"] is True and report["summary"]["cases"] == 0


def test_an_interrupt_while_the_cases_are_built_exits_130_and_stops_the_started_workers(tmp_path, monkeypatch,
                                                                                         capsys):
    """A new run's workers start loading before the case set is built; Ctrl-C in between ends the
    command with one line and status 130 (no traceback, no report: nothing was scored) and
    leaves no worker behind."""
    from conv_conformance import cli
    from conv_conformance.conformance import runner

    started = []
    real_start = runner.start

    def start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    def interrupted(profile, layers):
        assert started and len(started[0].slots) == 2, "the workers start before the cases are built"
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "start", start)
    monkeypatch.setattr("conv_conformance.conformance.session.start", start)
    monkeypatch.setattr(cli, "_case_set", interrupted)
    pids = []
    real_close = runner.Workers.close

    def close(self):
        pids.extend(slot.process.pid for slot in self.slots)
        real_close(self)

    monkeypatch.setattr(runner.Workers, "close", close)
    assert main(["run", "--adapter", "reference", "--jobs", "2", "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err == "conv-conformance run: interrupted\n"
    assert len(pids) == 2 and not started[0].slots
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (tmp_path / "out" / "report.json").exists()


def test_list_adapters(monkeypatch, capsys):
    monkeypatch.setattr(registry, "_entry_points",
                        lambda: {"reference": "conv_conformance.conformance.adapters.reference:ReferenceAdapter",
                                 "gone": "no_such_module_xyz:A"})
    assert main(["list-adapters"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("gone       no_such_module_xyz:A  [not importable: Cannot import module")
    assert lines[1] == "reference  conv_conformance.conformance.adapters.reference:ReferenceAdapter  [ok]"


def test_one_parser_holds_every_command():
    import argparse

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) == {"run", "list-adapters", "explore", "export", "score", "certify", "verify", "report",
                                "scoreboard", "compare", "findings"}
    for name, command in sub.choices.items():
        assert callable(command.get_default("func")), name


def test_export_writes_the_case_set(tmp_path):
    pytest.importorskip("conv_conformance.oracle.export")
    assert main(["export", "--profile", "smoke", str(tmp_path / "corpus")]) == 0
    index = [p for p in (tmp_path / "corpus").rglob("*.json")]
    assert index, "export wrote no JSON index"
    assert list((tmp_path / "corpus").rglob("*.npy"))


def test_explore_shrinks_a_failure_and_prints_a_runnable_reproducer(capsys):
    code = main(["explore", "--adapter", f"{BROKEN}:WrongValues", "--layers", "ZeroPadding1D",
                 "--max-examples", "20", "--seed", "0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "=== finding 1 of 1: ZeroPadding1D: shape=pass, output=fail, gradient=pass (shrunk)" in out
    script = out.split("--- reproducer (python) ---\n", 1)[1]
    exec(compile(script, "<reproducer>", "exec"), {})
    printed = capsys.readouterr().out
    diff = float(printed.split("max |actual - expected| =")[1].split()[0])
    assert diff > 1e-3  # WrongValues adds 1% + 1e-3 to every element


def test_explore_finds_nothing_wrong_with_the_reference(capsys):
    assert main(["explore", "--adapter", "reference", "--layers", "Conv2D", "--max-examples", "15",
                 "--seed", "0"]) == 0
    assert "no failure in 15 drawn examples (float32)" in capsys.readouterr().out


def test_explore_survives_an_adapter_that_kills_its_process(capsys):
    """The drawn cases run in a worker: os._exit in the adapter is a crash finding, not the end of explore."""
    code = main(["explore", "--adapter", f"{BROKEN}:Exits", "--layers", "Cropping1D",
                 "--max-examples", "5", "--seed", "0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "=== finding 1 of 1: Cropping1D: shape=crash, output=crash, gradient=crash (shrunk)" in out
    assert "the worker process died (exit code 3)" in out


def test_explore_stops_a_hanging_case_at_its_timeout(capsys):
    code = main(["explore", "--adapter", f"{BROKEN}:Hangs", "--layers", "Cropping1D",
                 "--max-examples", "2", "--seed", "0", "--timeout", "0.5"])
    out = capsys.readouterr().out
    assert code == 1
    assert "Cropping1D: shape=timeout, output=timeout, gradient=timeout (shrunk)" in out

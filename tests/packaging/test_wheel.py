"""The wheel, as a user installs it: built from a clean clone of this repository's HEAD, installed
into a fresh virtual environment beside a distribution that claims the top-level names ``reports``
and ``reference``, in a project directory that has its own ``reports/`` folder.

There the console script (``run``, ``report``, ``explore``, ``--version``), the pytest plugin
(``pytest --conv-adapter ... --conv-report``) and both printed reproducers (the HTML report's and
``explore``'s) must work, importing only ``conv_conformance``. The environment gets NumPy, the
harness extra and pytest from the package index (pip's cache makes a repeat fast), no framework.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["Conv1D", "ZeroPadding1D"]
pytestmark = [pytest.mark.packaging, pytest.mark.slow]

# An adapter of the user's own: right on Conv1D, 1% off on ZeroPadding1D (so reports and explore
# have a failure to reproduce). It imports the suite by its one import name only.
BROKEN_ADAPTER = '''
from conv_conformance.conformance.adapters.reference import ReferenceAdapter


class Wrong(ReferenceAdapter):
    name = "userlib-wrong"

    def forward(self, spec, inputs, weights):
        y = super().forward(spec, inputs, weights)
        return y * 1.01 + 1e-3 if spec["class_name"] == "ZeroPadding1D" else y
'''


def _run(args: list, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return proc


def _ok(proc: subprocess.CompletedProcess, code: int = 0) -> str:
    assert proc.returncode == code, (f"{proc.args} exited {proc.returncode} (expected {code})\n"
                                     f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _dummy_wheel(directory: Path) -> Path:
    """A wheel of a distribution 'dummy-toplevel' with top-level packages ``reports`` and ``reference``."""
    files = {"reports/__init__.py": 'DUMMY = "dummy-toplevel reports"\n',
             "reference/__init__.py": 'DUMMY = "dummy-toplevel reference"\n',
             "dummy_toplevel-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: dummy-toplevel\nVersion: 1.0\n",
             "dummy_toplevel-1.0.dist-info/WHEEL": ("Wheel-Version: 1.0\nGenerator: test_wheel\n"
                                                    "Root-Is-Purelib: true\nTag: py3-none-any\n"),
             "dummy_toplevel-1.0.dist-info/top_level.txt": "reference\nreports\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("dummy_toplevel-1.0.dist-info/RECORD,,")
    path = directory / "dummy_toplevel-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
        whl.writestr("dummy_toplevel-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def _source_case_sets(source: Path) -> dict:
    """Case ids and corpus ids computed from the clone's source tree (not the wheel), so the
    installed package can be checked against the source it was built from."""
    code = ("import json; from conv_conformance.oracle.cases import case_set, corpus_id; "
            f"few = case_set('smoke', layers={LAYERS!r}); "
            "print(json.dumps({'ids': [c.id for c in few], 'corpus': corpus_id(few), "
            "'smoke': corpus_id(case_set('smoke')), 'file': __import__('conv_conformance.oracle.cases').oracle.cases.__file__}))")
    out = _ok(_run([sys.executable, "-c", code], source.parent, {"PYTHONPATH": str(source)}))
    found = json.loads(out.splitlines()[-1])
    assert Path(found["file"]).is_relative_to(source), found["file"]  # the clone's source, not this checkout
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel path, venv bin directory, project directory, the clone's case sets) after building
    and installing."""
    if shutil.which("git") is None:
        pytest.fail("the wheel test needs git (it builds from a clean clone)")
    base = tmp_path_factory.mktemp("wheel")
    source = base / "clone"
    _ok(_run(["git", "clone", "--quiet", "--no-hardlinks", ROOT, source], base))
    dist = base / "dist"
    # Not --quiet: the build's own warnings are what a user installing from source reads.
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, source], base)
    _ok(build)
    (base / "build-output.txt").write_text(build.stdout + build.stderr)
    wheels = list(dist.glob("conv_conformance-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    _ok(_run([bin_dir / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              f"{wheels[0]}[harness]", _dummy_wheel(base), "pytest>=8"], base))
    project = base / "project"
    (project / "reports").mkdir(parents=True)
    (project / "reports" / "__init__.py").write_text('DUMMY = "the project\'s own reports folder"\n')
    (project / "userlib.py").write_text(BROKEN_ADAPTER)
    return wheels[0], bin_dir, project, _source_case_sets(source)


def test_the_wheel_adds_exactly_one_top_level_name(installed):
    wheel, *_ = installed
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        record = whl.read(f"{info}/RECORD").decode().splitlines()
    tops = {n.split("/")[0] for n in names} - {info}
    assert tops == {"conv_conformance"}
    assert {line.split(",")[0].split("/")[0] for line in record if line} - {info} == {"conv_conformance"}
    for package in ("reference", "oracle", "conformance", "reports"):
        assert f"conv_conformance/{package}/__init__.py" in names
    assert "conv_conformance/reports/schema.json" in names  # package data travels too
    entry_points = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "conv-conformance = conv_conformance.cli:main" in entry_points
    assert "conv_conformance = conv_conformance.conformance.pytest_plugin" in entry_points


def test_building_the_wheel_prints_no_setuptools_warning(installed):
    """A package folder missing from pyproject's list makes setuptools warn "Package would be
    ignored" (and install it anyway) to everyone who builds the suite."""
    wheel, *_ = installed
    output = (wheel.parents[1] / "build-output.txt").read_text()
    assert "conv_conformance" in output  # the build's output was captured
    for sign in ("would be ignored", "SetuptoolsDeprecationWarning", "BuildBackendWarning", "SetuptoolsWarning"):
        assert sign not in output, output[-4000:]


def test_the_other_distribution_keeps_its_top_level_names(installed):
    _, bin_dir, project, _ = installed
    code = ("import conv_conformance.reports, conv_conformance.reference, reports, reference; "
            "print(reports.DUMMY); print(reference.DUMMY); print(conv_conformance.reports.__name__)")
    out = _ok(_run([bin_dir / "python", "-c", code], project.parent))
    assert out.splitlines() == ["dummy-toplevel reports", "dummy-toplevel reference", "conv_conformance.reports"]


def test_cli_run_report_and_version(installed):
    _, bin_dir, project, source = installed
    cli = bin_dir / "conv-conformance"
    out = _ok(_run([cli, "run", "--adapter", "reference", "--layers", ",".join(LAYERS), "--out", "cli-report"],
                   project))
    assert out.startswith("CONFORMANT: ")
    report = json.loads((project / "cli-report" / "report.json").read_text())
    assert report["corpus_id"] == source["corpus"]
    assert [c["id"] for c in report["cases"]] == source["ids"]
    assert report["summary"]["conformant"] is True
    _ok(_run([cli, "report", "cli-report/report.json", "--format", "markdown", "--out", "cli-report/r.md"], project))
    assert "reference" in (project / "cli-report" / "r.md").read_text()
    version = _ok(_run([cli, "--version"], project))
    assert f"  smoke       {source['smoke']}" in version.splitlines()
    assert "tensorflow" not in version  # none installed here, and none claimed


def test_pytest_plugin_runs_the_cases_and_writes_the_report(installed):
    _, bin_dir, project, source = installed
    proc = _run([bin_dir / "python", "-m", "pytest", "-p", "no:cacheprovider", "--conv-adapter", "reference",
                 "--conv-layers", ",".join(LAYERS), "--conv-report", "plugin-report", "-q"], project)
    out = _ok(proc)
    assert f"{len(source['ids'])} passed" in out
    report = json.loads((project / "plugin-report" / "report.json").read_text())
    assert report["corpus_id"] == source["corpus"]
    assert [c["id"] for c in report["cases"]] == source["ids"]
    assert report["summary"]["conformant"] is True


def _python_block(text: str, start: str) -> str:
    return text.split(start, 1)[1].split("\n=== finding", 1)[0]


def test_the_printed_reproducers_run(installed):
    """A user adapter that is 1% off on ZeroPadding1D: the HTML report's reproducer and explore's
    reproducer, saved as scripts next to the adapter, run and show the failure."""
    _, bin_dir, project, _ = installed
    cli = bin_dir / "conv-conformance"
    pythonpath = {"PYTHONPATH": str(project)}
    out = _ok(_run([cli, "run", "--adapter", "userlib:Wrong", "--layers", ",".join(LAYERS), "--out", "wrong"],
                   project, pythonpath), code=1)
    assert out.startswith("NOT CONFORMANT")
    _ok(_run([cli, "report", "wrong/report.json", "--format", "html", "--out", "wrong/report.html"], project))
    page = (project / "wrong" / "report.html").read_text()
    scripts = re.findall(r'<pre class="reproducer"[^>]*>(.*?)</pre>', page, re.S)
    assert scripts, "the HTML report shows no reproducer"
    (project / "repro_html.py").write_text(html.unescape(scripts[0]))
    shown = _ok(_run([bin_dir / "python", "repro_html.py"], project))
    assert "'output': 'fail'" in shown and "ZeroPadding1D" in html.unescape(scripts[0])

    found = _ok(_run([cli, "explore", "--adapter", "userlib:Wrong", "--layers", "ZeroPadding1D", "--max-examples", "5",
                      "--seed", "1"], project, pythonpath), code=1)
    script = _python_block(found, "--- reproducer (python) ---\n")
    assert "from conv_conformance import reference" in script
    (project / "repro_explore.py").write_text(script)
    shown = _ok(_run([bin_dir / "python", "repro_explore.py"], project))
    diff = float(re.search(r"max \|actual - expected\| = (\S+)", shown).group(1))
    assert diff > 0

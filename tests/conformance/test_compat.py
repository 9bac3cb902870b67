"""Old import paths keep working for one release, with a DeprecationWarning, and give the same
objects as the new ones: printed reproducers, third-party adapters and a source checkout's
``from conformance import Unsupported`` keep running."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_checkout_names_are_the_package_itself():
    """Run from the repository's top level: the folder names are aliases, not second copies."""
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    from conformance import Unsupported\n"
        "    import conformance.scoring, oracle.cases, reports\n"
        "import conv_conformance.conformance as new\n"
        "import conv_conformance.conformance.scoring, conv_conformance.oracle.cases, conv_conformance.reports\n"
        "assert Unsupported is new.Unsupported\n"
        "assert conformance.scoring is conv_conformance.conformance.scoring\n"
        "assert oracle.cases is conv_conformance.oracle.cases\n"
        "assert reports is conv_conformance.reports\n"
        "assert any(issubclass(w.category, DeprecationWarning) and 'import conformance' in str(w.message)\n"
        "           for w in seen), [str(w.message) for w in seen]\n"
        "print('same')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "same", done.stderr


def test_a_decline_raised_with_the_old_name_is_unsupported(tmp_path):
    """An adapter written against the old documented import declines, not errors."""
    (tmp_path / "old_style.py").write_text(
        "from conformance import Unsupported\n"
        "class Adapter:\n"
        "    def forward(self, spec, inputs, weights):\n"
        "        raise Unsupported('not this one')\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from conv_conformance.cli import main\n"
            "sys.exit(main(['run', '--adapter', 'old_style:Adapter', '--layers', 'Cropping1D', '--out', sys.argv[2]]))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert "error" not in done.stdout.split("cases in")[1].split(";")[0], done.stdout
    assert "unsupported" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("old, name, new", [
    ("conv_conformance.conformance.scoring", "cast", "conv_conformance.conformance.calls"),
    ("conv_conformance.conformance.scoring", "CaseResult", "conv_conformance.conformance.record"),
    ("conv_conformance.conformance.scoring", "score", "conv_conformance.conformance.compare"),
    ("conv_conformance.conformance.scoring", "VERDICTS", "conv_conformance.vocabulary"),
    ("conv_conformance.conformance.cli", "main", "conv_conformance.cli"),
    ("conv_conformance.reports.cli", "main", "conv_conformance.cli"),
    ("conv_conformance.conformance.pytest_report", "decode", "conv_conformance.conformance.pytest_plugin.worker"),
])
def test_a_moved_name_warns_and_is_the_new_object(old, name, new):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"{name} moved to {new}"):
        got = getattr(importlib.import_module(old), name)
    assert got is getattr(importlib.import_module(new), name)


def test_an_unknown_old_name_still_raises_attribute_error():
    from conv_conformance.conformance import scoring

    with pytest.raises(AttributeError):
        scoring.no_such_thing  # noqa: B018

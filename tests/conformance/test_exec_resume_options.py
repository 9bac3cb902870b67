"""`run --resume DIR` finishes a run with the options DIR/run.json holds. An option given with it
that differs from those would not apply, so it is a usage error naming the stored value; the
same adapter given again, by its `exec:` command, is not a difference."""
from __future__ import annotations

import json

from conv_conformance.cli import main


def test_resume_refuses_an_option_it_would_not_apply(client, tmp_path, capsys):
    out = tmp_path / "run"
    adapter = f"exec:{client}"
    assert main(["run", "--adapter", adapter, "--layers", "Cropping1D", "--timeout", "30", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert "was started with --timeout 30.0" in err and "start a new run" in err, err
    assert json.loads((out / "run.json").read_text())["options"]["timeout"] == 30.0  # untouched
    assert main(["run", "--resume", str(out), "--adapter", "exec:/bin/true"]) == 2
    assert f"--adapter {adapter}" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--adapter", adapter, "--timeout", "30"]) == 0
    assert "already done" in capsys.readouterr().err

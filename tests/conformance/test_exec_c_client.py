"""The C client (clients/c/conv_client.c), the exec protocol's worked example, compiled by `cc`:
its results against the float64 reference, its certification at the layers it declares, and
the pytest plugin driving it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.adapters.exec_process import ExecAdapter
from conv_conformance.conformance.certify import CertifyOptions, audit, certify, verify
from conv_conformance.conformance.exec_protocol import ImplementationError
from conv_conformance.oracle.tolerance import allowed_errors

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
DECLARED = ("Conv1D", "Conv2D", "Cropping1D", "Cropping2D", "ZeroPadding1D", "ZeroPadding2D")


@pytest.fixture(scope="module")
def adapter(client):
    a = ExecAdapter([client])
    yield a
    a.close()


def _draw(shape, rng):
    return rng.choice([-1, 1], size=shape) * rng.uniform(0.5, 1, size=shape)


@pytest.mark.parametrize("spec, shape", [
    ({"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same"}},
     (2, 7, 5, 4)),
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "activation": "relu6",
                                         "data_format": "channels_first"}}, (1, 3, 9, 8)),
    ({"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 5, "padding": "same", "use_bias": False,
                                         "activation": "leaky_relu"}}, (3, 6, 2)),
    ({"class_name": "Cropping2D", "config": {"cropping": [[1, 0], [2, 1]], "data_format": "channels_first"}},
     (2, 3, 4, 5)),
    ({"class_name": "ZeroPadding1D", "config": {"padding": [2, 1]}}, (2, 3, 4)),
    ({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 1}}, (0, 3, 3, 2)),
])
def test_results_match_the_reference(adapter, spec, shape):
    rng = np.random.default_rng(0)
    spec = reference.normalize(spec)
    x = _draw(shape, rng).astype(np.float32)
    weights = {k: _draw(s, rng).astype(np.float32) for k, s in reference.weight_shapes(spec, shape).items()}
    out = adapter.forward(spec, x, weights)
    expected = reference.forward(spec, x.astype(np.float64), {k: w.astype(np.float64) for k, w in weights.items()})
    allowed, _ = allowed_errors(spec, x.astype(np.float64), {k: w.astype(np.float64) for k, w in weights.items()},
                                None, "float32")
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert np.all(np.abs(out - expected) <= allowed)


def test_it_rejects_what_keras_rejects_and_declines_what_it_does_not_declare(adapter):
    x, k = np.ones((1, 5, 5, 2), np.float32), {"kernel": np.ones((3, 3, 2, 2), np.float32)}
    conv = reference.normalize({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3}})
    for change in ({"strides": 0}, {"padding": "full"}, {"activation": "swishy"}, {"kernel_size": [2, 2, 2]},
                   {"strides": 2, "dilation_rate": 2}, {"filters": 3, "groups": 2}):
        spec = {"class_name": "Conv2D", "config": {**conv["config"], **change}}
        with pytest.raises(ImplementationError):
            adapter.forward(spec, x, k)
    with pytest.raises(Unsupported, match="groups"):
        adapter.forward({"class_name": "Conv2D", "config": {**conv["config"], "groups": 2}}, x,
                        {"kernel": np.ones((3, 3, 1, 2), np.float32)})
    with pytest.raises(Unsupported):
        adapter.forward(reference.normalize({"class_name": "UpSampling2D", "config": {}}), x, {})


def test_it_certifies_conformant_at_the_layers_it_declares(client, tmp_path):
    done = certify(CertifyOptions(adapter=f"exec:{client}", profile="smoke", out=str(tmp_path / "bundle"), jobs=2))
    report = json.loads((tmp_path / "bundle" / "report.json").read_text())
    assert done.conformant and report["summary"]["conformant"]
    assert report["adapter"]["name"] == "conv-client-c"
    assert sorted(report["adapter"]["declaration"]["layers"]) == sorted(DECLARED)
    levels = report["summary"]["levels"]
    assert {levels[name]["level"] for name in DECLARED} <= {"core", "partial"}
    assert all(levels[name]["level"] == "not_implemented" for name in levels if name not in DECLARED)
    assert report["summary"]["counts"]["pass"] > 0
    assert report["environment"]["adapter"]["exec_command"] == client
    assert all(check.ok for check in verify(tmp_path / "bundle")), [c for c in verify(tmp_path / "bundle") if not c.ok]
    rerun = audit(tmp_path / "bundle", f"exec:{client}", 6, jobs=2)  # verify --rerun
    assert rerun and all(check.ok for check in rerun), rerun


def test_the_pytest_plugin_drives_it(client, pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    result = pytester.runpytest_subprocess(f"--conv-adapter=exec:{client}", "--conv-layers=Cropping2D,Conv1D",
                                           "--conv-report=out", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] > 0
    assert report["adapter"]["name"] == "conv-client-c" and report["summary"]["cases"] > 0
    assert not [c for c in report["cases"] if set(c["verdicts"].values()) - {"pass", "unsupported"}]


def test_the_command_line_certifies_verifies_and_audits_it_by_a_relative_command(client, tmp_path, monkeypatch,
                                                                                    capsys):
    """`certify`, `verify` and `verify --rerun` as a user types them, with `exec:./conv_client`
    resolved against the working directory, as the README shows."""
    from conv_conformance.cli import main

    shutil.copy(client, tmp_path / "conv_client")
    monkeypatch.chdir(tmp_path)
    adapter = "exec:./conv_client"
    assert main(["certify", "--adapter", adapter, "--profile", "smoke", "--out", "bundle"]) == 0
    assert "is CONFORMANT" in capsys.readouterr().out
    assert main(["verify", "bundle"]) == 0
    assert "VERIFIED: the bundle is authentic and records CONFORMANT" in capsys.readouterr().out
    assert main(["verify", "bundle", "--rerun", "3", "--adapter", adapter]) == 0
    out = capsys.readouterr().out
    assert "[ok] audit: 3 case(s) re-executed with exec:./conv_client" in out, out

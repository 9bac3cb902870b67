"""The two engines agree: ``conv-conformance run`` (the harness's worker processes) and
``pytest --conv-adapter ... --conv-report`` (pytest-xdist workers) give the same verdicts, case for
case, on the smoke profile, for the reference adapter (every layer) and for tf.keras (a layer subset
with failures and errors of its own, to keep the run short)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conv_conformance.cli import main as cli_main
from conv_conformance.oracle.cases import case_set

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]

# tf.keras layers whose smoke cases include non-passing verdicts that do not depend on repeat calls
# (no nondeterministic verdicts under oneDNN on, off or capped at AVX2 on this machine).
KERAS_LAYERS = ["Conv1D", "Conv2DTranspose", "UpSampling2D"]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _both(pytester, monkeypatch, tmp_path, adapter: str, layers: list[str] | None) -> tuple[dict, dict]:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    select = ["--layers", ",".join(layers)] if layers else []
    code = cli_main(["run", "--adapter", adapter, "--jobs", "2", "--out", str(tmp_path / "cli"), *select])
    cli = _load(tmp_path / "cli" / "report.json")
    assert code == (0 if cli["summary"]["conformant"] else 1)
    plugin_select = [f"--conv-layers={','.join(layers)}"] if layers else []
    pytester.runpytest_subprocess(f"--conv-adapter={adapter}", "-n", "2", "--conv-report=out", "-p",
                                  "no:cacheprovider", *plugin_select)
    return cli, _load(pytester.path / "out" / "report.json")


def _assert_same(cli: dict, plugin: dict, cases: list) -> None:
    ids = [c.id for c in cases]
    assert [c["id"] for c in cli["cases"]] == ids
    assert [c["id"] for c in plugin["cases"]] == ids
    for a, b in zip(cli["cases"], plugin["cases"]):
        assert a["verdicts"] == b["verdicts"], f"{a['id']}: cli {a['verdicts']} plugin {b['verdicts']}"
    for key in ("corpus_id", "profile", "dtype", "interrupted"):
        assert cli[key] == plugin[key], key
    assert cli["summary"]["counts"] == plugin["summary"]["counts"]
    assert cli["summary"]["conformant"] == plugin["summary"]["conformant"]
    assert cli["adapter"]["name"] == plugin["adapter"]["name"]
    assert cli["adapter"]["versions"] == plugin["adapter"]["versions"]
    assert cli["adapter"].get("declaration") == plugin["adapter"].get("declaration")
    for key in ("levels", "coverage"):  # per-layer levels, from the declaration and the verdicts
        assert cli["summary"].get(key) == plugin["summary"].get(key), key


def test_reference_smoke_same_verdicts(pytester, monkeypatch, tmp_path):
    cli, plugin = _both(pytester, monkeypatch, tmp_path, "reference", None)
    _assert_same(cli, plugin, case_set("smoke"))
    assert plugin["summary"]["conformant"] is True


@pytest.mark.tensorflow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_keras_smoke_same_verdicts(pytester, monkeypatch, tmp_path):
    cli, plugin = _both(pytester, monkeypatch, tmp_path, "keras", KERAS_LAYERS)
    _assert_same(cli, plugin, case_set("smoke", layers=KERAS_LAYERS))
    assert cli["summary"]["conformant"] is False  # there are tf.keras failures to agree on
    assert cli["environment"]["tensorflow"]["onednn"] == plugin["environment"]["tensorflow"]["onednn"]

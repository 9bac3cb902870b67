"""The extras a user installs: scoring one adapter pulls the harness and that adapter's framework,
not the test tools, and no browser driver comes with anything but the browser extra."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
ADAPTERS = PYPROJECT["project"]["entry-points"]["conv_conformance.adapters"]
# Adapters that need no extra: the reference (NumPy) and those that run a Node.js client.
NO_EXTRA = {"reference", "tfjs", "tfjs-wasm"}


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def _conformance_sh_extras() -> dict[str, str]:
    """adapter -> extra, as scripts/conformance.sh's `case` chooses it."""
    text = (ROOT / "scripts" / "conformance.sh").read_text()
    block = text[text.index('case "$adapter" in'):text.index("esac")]
    out: dict[str, str] = {}
    for patterns, extra in re.findall(r"^\s*([a-z|*-]+)\) extra=(\S*) ;;", block, re.M):
        for name in patterns.split("|"):
            out[name] = extra
    return out


def test_only_the_browser_extra_brings_selenium():
    holders = {name for name, reqs in EXTRAS.items() if "selenium" in _names(reqs)}
    assert holders == {"browser"}, holders
    assert "browser" in EXTRAS["all"][0] and "test" in EXTRAS["all"][0]


def test_conformance_sh_installs_the_harness_and_the_adapters_own_extra():
    chosen = _conformance_sh_extras()
    assert chosen.pop("*") == ""  # an adapter of one's own: the harness only
    for adapter in ADAPTERS:
        extra = chosen.get(adapter, "")  # not named: the `*` branch
        extra = adapter if extra == "$adapter" else extra
        if adapter in NO_EXTRA:
            assert extra == "", (adapter, extra)
        else:
            assert extra in EXTRAS and extra not in ("test", "browser", "all"), (adapter, extra)
    assert set(chosen) <= set(ADAPTERS), set(chosen) - set(ADAPTERS)
    text = (ROOT / "scripts" / "conformance.sh").read_text()
    assert 'bash scripts/setup.sh "harness${extra:+,$extra}"' in text


def test_the_harness_extra_holds_what_scoring_imports():
    """conformance.waivers imports packaging; reports use jinja2; the runner threadpoolctl."""
    assert {"packaging", "jinja2", "threadpoolctl", "jsonschema", "ml_dtypes"} <= _names(EXTRAS["harness"])
    assert not {"pytest", "selenium", "import-linter"} & _names(EXTRAS["harness"])

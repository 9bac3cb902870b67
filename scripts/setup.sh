#!/usr/bin/env bash
# Create .venv and install the suite with every framework it cross-checks.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to 2.13.0 (a CPU build) in pyproject.toml; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q -e ".[all]"

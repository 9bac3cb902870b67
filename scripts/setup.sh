#!/usr/bin/env bash
# Create .venv and install the suite.
#   bash scripts/setup.sh            every framework it cross-checks and the test tools (.[all])
#   bash scripts/setup.sh EXTRAS     only those extras of pyproject.toml, e.g. "harness,torch"
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-all}
if [[ ! "$extras" =~ ^[a-z0-9,-]+$ ]]; then
  echo "usage: bash scripts/setup.sh [EXTRAS]: EXTRAS is a comma-separated list of the extras in pyproject.toml (e.g. harness,torch); got '$extras'" >&2
  exit 2
fi
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to 2.13.0 (a CPU build) in pyproject.toml; an unpinned torch pulls a multi-GB CUDA build.
.venv/bin/python -m pip install -q -e ".[$extras]"

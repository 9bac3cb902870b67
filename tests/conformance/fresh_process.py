"""Run a script in a fresh Python process of this checkout and read the JSON it prints last: what
the persistent compilation-cache tests compare between a first and a second process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_json(code: str, env: dict[str, str]) -> dict:
    """The last stdout line of ``python -c code`` (run in the checkout, with ``env``), parsed as JSON."""
    done = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])

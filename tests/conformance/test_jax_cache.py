"""JAX's persistent compilation cache: a second process loads what the first compiled, and gets
the same bits."""
from __future__ import annotations

import os

import pytest

from tests.conformance.fresh_process import run_json

pytestmark = pytest.mark.jax

_CASE = """
import json, sys
import numpy as np
from conv_conformance.conformance.adapters.jax import JaxAdapter
from conv_conformance.conformance.adapters import _jax_cache
a = JaxAdapter()
spec = {"class_name": "Conv2D", "config": {"filters": 3, "kernel_size": 3, "activation": "tanh"}}
rng = np.random.default_rng(0)
x = rng.standard_normal((1, 7, 6, 2)).astype("float32")
w = {"kernel": rng.standard_normal((3, 3, 2, 3)).astype("float32"), "bias": np.ones(3, "float32")}
y = a.forward(spec, x, w)
g = a.vjp(spec, x, w, np.ones_like(y))
print(json.dumps({"dir": _jax_cache.cache_directory(), "y": y.tobytes().hex(), "g": g["kernel"].tobytes().hex()}))
"""


def _run(cache: str) -> dict:
    pytest.importorskip("jax")
    return run_json(_CASE, {**os.environ, "CONV_CONFORMANCE_JAX_CACHE": cache})


def test_a_second_process_compiles_nothing_new_and_gets_the_same_bits(tmp_path):
    cache = tmp_path / "jax-cache"
    first = _run(str(cache))
    entries = sorted(p.name for p in cache.iterdir())
    assert first["dir"] == str(cache) and entries, "the first process cached nothing"
    second = _run(str(cache))
    assert sorted(p.name for p in cache.iterdir()) == entries  # every executable came from the cache
    assert (second["y"], second["g"]) == (first["y"], first["g"])


def test_off_means_no_cache(tmp_path):
    assert _run("off")["dir"] is None

"""JAX's persistent compilation cache for the adapters that run on JAX (jax, keras-jax).

Every case is a new shape for XLA to compile, and a regression run repeats the same corpus, so
the same compilations every time: kept on disk, a second run loads them instead of compiling.
The directory is ``$CONV_CONFORMANCE_JAX_CACHE`` (empty or ``off``: no cache), by default
``$XDG_CACHE_HOME/conv-conformance/jax`` (``~/.cache/conv-conformance/jax``). A cached executable
is the one XLA compiled, so results are bitwise those of a fresh compilation.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "cache_directory", "enable"]

CACHE_ENV = "CONV_CONFORMANCE_JAX_CACHE"


def cache_directory() -> str | None:
    """The cache directory this process uses (None: caching is off)."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off") else value
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "conv-conformance" / "jax")


def enable(jax: Any) -> str | None:
    """Point ``jax`` at the cache directory, caching every compilation however quick; the
    directory used (None: off)."""
    directory = cache_directory()
    if directory is None:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory

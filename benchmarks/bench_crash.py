"""What a crashing adapter costs (a script, not a test).

Runs a profile (default: smoke, float32, --jobs 2) through a Keras-based adapter three ways, in
this one process so that the ratios hold however loaded the machine is:

* ``clean``: the ``keras`` adapter itself (the baseline);
* ``crashing, forked``: the same adapter, except that one case in ``--every`` takes its worker
  down (a segfault, or ``os._exit(3)`` for every other one of them), with the runner's default:
  a replacement worker is forked from a server that has loaded TensorFlow once;
* ``crashing, spawned``: the same with ``preload=False``: every replacement is a fresh
  interpreter that imports TensorFlow again (the runner's behaviour before the fork server).

It prints each wall time and its ratio to the clean run (target: crashing, forked <= 2x), and the
start-up cost of one worker, from ``Process.start`` to the worker's ``ready`` message, spawned
and forked (median of ``--startups`` starts each).

    python benchmarks/bench_crash.py [--profile smoke] [--every 8] [--jobs 2] [--adapter keras]
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import time
import zlib

from conv_conformance.conformance import runner
from conv_conformance.conformance.registry import load_adapter, resolve
from conv_conformance.oracle.cases import case_set

EVERY_ENV = "BENCH_CRASH_EVERY"
BASE_ENV = "BENCH_CRASH_ADAPTER"


def _picked(spec: dict, shape: tuple) -> int:
    """0 for one case in EVERY (a fixed hash of the layer and the shape), else 1 or 2."""
    every = int(os.environ.get(EVERY_ENV, "8"))
    key = zlib.crc32(json.dumps(spec, sort_keys=True).encode() + repr(tuple(shape)).encode())
    return 0 if key % every else 1 + (key // every) % 2


class Crashing:
    """The adapter named by $BENCH_CRASH_ADAPTER, except that one case in $BENCH_CRASH_EVERY
    ends its worker: a segfault or os._exit(3)."""

    def __init__(self) -> None:
        self._inner = load_adapter(os.environ.get(BASE_ENV, "keras"))
        self.name = f"crashing-{getattr(self._inner, 'name', 'adapter')}"

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def forward(self, spec, inputs, weights):
        way = _picked(spec, inputs.shape)
        if way == 1:
            ctypes.string_at(0)
        elif way == 2:
            os._exit(3)
        return self._inner.forward(spec, inputs, weights)


def timed(target: str, cases: list, jobs: int, **kwargs) -> tuple[float, dict]:
    start = time.perf_counter()
    verdicts: dict[str, int] = {}
    for _, result in runner.run(target, cases, jobs=jobs, timeout=60.0, **kwargs):
        verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
    return time.perf_counter() - start, verdicts


def startup(target: str, forked: bool, count: int) -> float:
    """Median seconds from starting a worker to its `ready` message (adapter loaded)."""
    pool = runner._Pool(resolve(target), 1, 60.0, 1, capture=True, preload=forked)
    seconds = []
    try:
        if forked:
            pool.spawned = pool.jobs  # as at a first replacement: start the server
            pool._start_server()
            deadline = time.monotonic() + 600
            while pool.server.state() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if not pool.server.usable():
                raise SystemExit(f"the fork server is not usable for {target}: {pool.server.state()}")
        for _ in range(count):
            start = time.perf_counter()
            slot = pool.spawn()
            while not slot.ready:
                message = slot.conn.recv()
                slot.ready = message[0] == "ready"
                if message[0] == "load_error":
                    raise SystemExit(message[1])
            seconds.append(time.perf_counter() - start)
            slot.conn.send(None)
            slot.process.join(5)
            pool.retire(slot)
    finally:
        pool.close()
    assert pool.forked == (count if forked else 0), pool.forked
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--adapter", default="keras")
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--startups", type=int, default=5)
    args = parser.parse_args()
    os.environ[EVERY_ENV], os.environ[BASE_ENV] = str(args.every), args.adapter
    cases = case_set(args.profile)
    crashing = f"{Crashing.__module__}:Crashing" if Crashing.__module__ != "__main__" else "bench_crash:Crashing"
    print(f"profile {args.profile}: {len(cases)} cases, --jobs {args.jobs}, adapter {args.adapter}, "
          f"one case in {args.every} crashes; load average {os.getloadavg()[0]:.1f}", flush=True)
    clean, counts = timed(args.adapter, cases, args.jobs)
    print(f"clean:             {clean:6.1f} s  {counts}", flush=True)
    forked, counts = timed(crashing, cases, args.jobs)
    print(f"crashing, forked:  {forked:6.1f} s  {counts}  ratio to clean {forked / clean:.2f}", flush=True)
    spawned, counts = timed(crashing, cases, args.jobs, preload=False)
    print(f"crashing, spawned: {spawned:6.1f} s  {counts}  ratio to clean {spawned / clean:.2f}", flush=True)
    cold, warm = startup(args.adapter, False, args.startups), startup(args.adapter, True, args.startups)
    print(f"worker start-up ({args.adapter}, median of {args.startups}): spawned {cold:.2f} s, "
          f"forked from the loaded server {warm:.3f} s ({cold / warm:.0f}x less); "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

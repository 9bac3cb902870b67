"""Harness speed and memory (a script, not a test).

Prints, for each adapter (default: reference and keras) at --jobs 1 and 2 on
a profile (default: standard, float32):

* cases per second (wall time of the whole run, worker start included);
* harness overhead = (wall - adapter time) / adapter time, where adapter time
  is the sum of the time spent inside the adapter's forward/vjp calls (the
  ``seconds`` of each case); for --jobs 2 the wall time counts twice, once per
  worker: (2*wall - adapter time) / adapter time;
* the speed-up of --jobs 2 over --jobs 1, and what bounds it: the CPU time of the
  worker processes (all their threads) over the wall time is the number of cores a
  run keeps busy; at --jobs 1 a framework that compiles or computes on threads of its
  own keeps more than one busy, and on C cores the speed-up cannot exceed
  min(2, C / (cores busy at --jobs 1)) (the "ceiling" printed), whatever the harness does;

and the peak resident memory (parent process, and the largest worker) of a
reference run over the case set and over three times the case set; it must
not grow with the number of cases.

Targets: overhead <= 0.5 for keras at --jobs 1; --jobs 2 >= 1.6x --jobs 1.

    python benchmarks/bench_harness.py [--profile standard] [--adapters reference,keras]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from conv_conformance.conformance.report import ReportWriter, default_meta
from conv_conformance.conformance.runner import run
from conv_conformance.oracle.cases import case_set, corpus_id


def timed_run(target: str, cases: list, jobs: int, dtype: str) -> dict:
    """Run like ``conv-conformance run`` (results streamed to a report) and time it."""
    with tempfile.TemporaryDirectory() as out:
        meta = default_meta(corpus_id=corpus_id(cases), profile="bench", dtype=dtype,
                            adapter={"name": target, "versions": {}}, jobs=jobs, timeout=60.0)
        writer = ReportWriter(out, meta)
        inside, first = 0.0, None
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        for index, result in run(target, cases, dtype, jobs=jobs, timeout=60.0):
            if first is None:
                first = time.perf_counter() - start
            inside += result.seconds
            writer.add(index, result)
        summary = writer.finish()
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers, joined by run() on exit
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {"wall": wall, "inside": inside, "first": first, "counts": summary["counts"], "cpu": cpu}


def peak_rss(copies: int, profile: str, target: str = "reference") -> dict:
    """Peak RSS (MiB) of a run of `target` over ``copies`` times the case set, in a fresh process."""
    code = ("import json, resource, sys, tempfile\n"
            "from conv_conformance.conformance.report import ReportWriter, default_meta\n"
            "from conv_conformance.conformance.runner import run\n"
            "from conv_conformance.oracle.cases import case_set\n"
            f"cases = case_set({profile!r}) * {copies}\n"
            "with tempfile.TemporaryDirectory() as out:\n"
            "    w = ReportWriter(out, default_meta(corpus_id='x', profile='bench', dtype='float32',\n"
            f"                     adapter={{'name': {target!r}, 'versions': {{}}}}, jobs=1, timeout=60.0))\n"
            f"    for i, r in run({target!r}, cases, 'float32'):\n"
            "        w.add(i, r)\n"
            "    w.finish()\n"
            "print(json.dumps({'cases': len(cases),\n"
            "    'parent': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,\n"
            "    'worker': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(target: str, cases: list, dtype: str, cores: int) -> None:
    """--jobs 1 and --jobs 2 of one adapter."""
    runs = {}
    for jobs in (1, 2):
        r = runs[jobs] = timed_run(target, cases, jobs, dtype)
        overhead = (jobs * r["wall"] - r["inside"]) / r["inside"]
        print(f"{target} --jobs {jobs}: {len(cases) / r['wall']:7.1f} cases/s  wall {r['wall']:6.1f} s  "
              f"adapter {r['inside']:6.1f} s  overhead {overhead:5.2f}  first result after "
              f"{r['first']:.1f} s  workers' CPU {r['cpu']:6.1f} s = {r['cpu'] / r['wall']:.2f} cores busy  "
              f"{r['counts']}")
    speedup = runs[1]["wall"] / runs[2]["wall"]
    busy = runs[1]["cpu"] / runs[1]["wall"]
    ceiling = min(2.0, cores / busy)  # 2 workers, `cores` cores
    print(f"{target} speed-up --jobs 2 / --jobs 1: {speedup:.2f}x; ceiling on {cores} cores with "
          f"{busy:.2f} cores busy at --jobs 1: {ceiling:.2f}x ({speedup / ceiling:.0%} of it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--adapters", default="reference,keras")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--memory-adapters", default="reference",
                        help="adapters whose peak memory is measured at 1x and 3x the cases (--jobs 1)")
    args = parser.parse_args()
    cases = case_set(args.profile)
    cores = len(os.sched_getaffinity(0))
    print(f"profile {args.profile}: {len(cases)} cases, dtype {args.dtype}")
    for target in args.adapters.split(","):
        _measure(target, cases, args.dtype, cores)
    for target in args.memory_adapters.split(","):
        for copies in (1, 3):
            m = peak_rss(copies, args.profile, target)
            print(f"peak RSS, {target}, {m['cases']} cases ({copies}x): parent {m['parent']:.0f} MiB, "
                  f"worker {m['worker']:.0f} MiB")


if __name__ == "__main__":
    main()

"""Certification bundle size and verification time (a script, not a test).

Certifies an adapter (default: reference) on a profile (default: standard, float32) with
--jobs 2, then verifies the bundle with --jobs 2 (re-scoring every stored result), and
prints:

* the bundle's size, its results' size, and their ratio to the 50 MB budget;
* the wall time of ``verify`` and its ratio to the 2-minute budget and to the wall time
  of the certify run made just before in the same process (the baseline: verify
  materializes every case again, as the run did, but calls no adapter);
* the peak resident memory of the verifying process and its workers.

    python benchmarks/bench_bundle.py [--profile standard] [--adapter reference] [--jobs 2]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from conv_conformance.conformance.certify import CertifyOptions, certify, verify

SIZE_BUDGET = 50e6
TIME_BUDGET = 120.0


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--adapter", default="reference")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        out = Path(tmp) / "bundle"
        start = time.monotonic()
        certified = certify(CertifyOptions(args.adapter, args.profile, str(out), dtype=args.dtype, jobs=args.jobs))
        certify_wall = time.monotonic() - start
        size, results = _size(out), _size(out / "results")
        start = time.monotonic()
        checks = verify(out, jobs=args.jobs)
        verify_wall = time.monotonic() - start
        failed = [c.name for c in checks if not c.ok]
        peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        cases = certified.statement["counts"] if certified.statement else {}
        print(f"profile {args.profile}, dtype {args.dtype}, adapter {args.adapter}: "
              f"{sum(cases.values())} cases, --jobs {args.jobs}")
        print(f"bundle {size / 1e6:.1f} MB (results {results / 1e6:.1f} MB): {size / SIZE_BUDGET:.2f} of the 50 MB budget")
        print(f"certify {certify_wall:.1f} s wall; verify {verify_wall:.1f} s wall: {verify_wall / TIME_BUDGET:.2f} "
              f"of the 2 min budget, {verify_wall / certify_wall:.2f}x the certify run")
        print(f"peak resident memory {peak:.0f} MiB; checks failed: {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()

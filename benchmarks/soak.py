"""Soak: the same run three times in a row in one process tree; peak memory per pass must stay flat.

    python benchmarks/soak.py [--adapter keras] [--profile standard] [--layers A,B] [--passes 3]
                              [--jobs 1] [--dtype float32]

Each pass scores the case set with ``conformance.runner.run`` from this process (workers
replaced every ``cases_per_worker`` cases, as in a real run). A sampler thread reads the
resident set size of this process and of every descendant from /proc every 0.2 s. Per pass
it prints the peak RSS of the whole tree, the peak of any single worker and of this process,
and the ratio of each to pass 1 (the baseline in the same process): ratios near 1.0 mean
memory does not grow from pass to pass. Linux only (/proc).
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def _tree(root: int) -> list[int]:
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += _children(pid)
    return seen


class Sampler(threading.Thread):
    """Peak RSS of the process tree, of the largest descendant and of the root, since reset()."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.root = interval, os.getpid()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.tree = self.worker = self.parent = 0

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            pids = _tree(self.root)
            sizes = {pid: _rss(pid) for pid in pids}
            with self.lock:
                self.tree = max(self.tree, sum(sizes.values()))
                self.parent = max(self.parent, sizes.get(self.root, 0))
                self.worker = max([self.worker] + [v for p, v in sizes.items() if p != self.root])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", default="keras")
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--layers", default=None, help="comma-separated subset (default: all)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    from conv_conformance.conformance.runner import run
    from conv_conformance.oracle.cases import case_set

    layers = args.layers.split(",") if args.layers else None
    cases = case_set(args.profile, layers=layers)
    sampler = Sampler()
    sampler.start()
    first = None
    mib = 2 ** 20
    print(f"{args.adapter}, {args.profile} ({len(cases)} cases), {args.dtype}, --jobs {args.jobs}")
    for n in range(1, args.passes + 1):
        sampler.reset()
        start = time.monotonic()
        verdicts = Counter(r.verdict for _, r in run(args.adapter, cases, args.dtype, jobs=args.jobs))
        seconds = time.monotonic() - start
        time.sleep(2 * sampler.interval)
        with sampler.lock:
            peak = (sampler.tree, sampler.worker, sampler.parent)
        first = first or peak
        ratios = " ".join(f"{p / f:.3f}" if f else "n/a" for p, f in zip(peak, first))
        print(f"pass {n}: {seconds:7.1f} s  peak RSS tree {peak[0] / mib:8.1f} MiB, largest worker "
              f"{peak[1] / mib:8.1f} MiB, harness {peak[2] / mib:6.1f} MiB; ratio to pass 1 (tree worker "
              f"harness): {ratios}; {dict(verdicts)}", flush=True)
    sampler.stop.set()


if __name__ == "__main__":
    main()

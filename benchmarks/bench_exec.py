"""The per-call cost of the exec protocol (a script, not a test).

The same computation, the float64 reference, is called two ways in this one process, so the
ratios hold however loaded the machine is:

* ``in-process``: the ``reference`` adapter's ``forward`` (the baseline);
* ``exec``: the reference behind the protocol (tests/conformance/fixtures/exec_fake.py), through
  ``ExecAdapter``: a JSON header and the array buffers written to a pipe, read back, decoded.

Two cases: a 1x1 convolution on a tiny input (where the protocol's fixed cost shows), and a
case of the networks profile (``--network-case``, default the largest Conv2D input in it). It
prints the median time per call of each over ``--calls`` calls (interleaved; a tenth as many
for the networks case), their ratio and the difference. NumPy runs one thread in both
processes, as in a harness worker.

    python benchmarks/bench_exec.py [--calls 200] [--network-case ID]
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

# One thread for NumPy's BLAS here and in the implementation process (which inherits this), as
# in a harness worker (--threads-per-job 1): the two ways then compute alike.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import numpy as np  # noqa: E402

from conv_conformance import reference
from conv_conformance.conformance.adapters.exec_process import ExecAdapter
from conv_conformance.conformance.adapters.reference import ReferenceAdapter
from conv_conformance.oracle.case import make_case
from conv_conformance.oracle.cases import case_set
from conv_conformance.oracle.materialize import materialize

FAKE = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "fixtures" / "exec_fake.py"


def _median_calls(adapters, case, m, calls: int) -> list[float]:
    """The median seconds per forward call of each adapter, their calls interleaved so that a
    change of machine load falls on all of them alike."""
    weights = {k: v.astype(np.float32) for k, v in m.weights.items()}
    x = m.inputs.astype(np.float32)
    times: list[list[float]] = [[] for _ in adapters]
    for adapter in adapters:
        adapter.forward(case.spec, x, weights)  # warm
    for _ in range(calls):
        for adapter, seen in zip(adapters, times):
            start = time.perf_counter()
            adapter.forward(case.spec, x, weights)
            seen.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _network_case(wanted: str | None):
    cases = [c for c in case_set("networks") if c.kind == "valid" and c.layer == "Conv2D"]
    if wanted:
        return next(c for c in cases if c.id == wanted)
    return max(cases, key=lambda c: math.prod(c.input_shape))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--network-case", default=None, metavar="ID")
    args = parser.parse_args()
    tiny = make_case(reference.normalize({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1}}),
                     (1, 1, 1, 1), "valid")
    network = _network_case(args.network_case)
    inproc, remote = ReferenceAdapter(), ExecAdapter([sys.executable, str(FAKE)])
    try:
        print(f"{'case':<44} {'in-process':>12} {'exec':>12} {'ratio':>7} {'overhead':>12}")
        for label, case in (("1x1 Conv2D on (1, 1, 1, 1)", tiny),
                            (f"networks {network.id} {tuple(network.input_shape)}", network)):
            m = materialize(case, "float32")
            calls = args.calls if case is tiny else max(5, args.calls // 20)
            a, b = _median_calls([inproc, remote], case, m, calls)
            print(f"{label:<44} {a * 1e6:>10.0f}us {b * 1e6:>10.0f}us {b / a:>7.2f} {(b - a) * 1e6:>10.0f}us")
    finally:
        remote.close()


if __name__ == "__main__":
    main()

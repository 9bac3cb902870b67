"""Time of the `keras` adapter's calls per case against the adapter that calls Keras anew for each
request (a script, not a test).

Both adapters score the same cases (every --step-th case of a profile) in this process, one
worker's way (``conformance.scoring.evaluate``, numerical libraries on one thread), in
alternating blocks so that a change of the machine's load falls on both. Prints, for each,
the time spent inside the adapter's calls and the whole time per case, the ratio
rebuilding / current (above 1 the current adapter is faster), the split by category of
the time inside the calls, and the number of cases whose verdicts differ (expected 0).

The rebuilding adapter is the `keras` adapter with every request served as
:mod:`oracle.tf_layers` and :mod:`oracle.tf_training` serve it: a new layer call for the
penalties and their gradient, a layer built for each initializer draw.

    python benchmarks/bench_keras.py [--profile standard] [--step 4] [--block 25]
"""
from __future__ import annotations

import argparse
import collections
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_name, "1")  # as in a --jobs worker (conformance.runner)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from conv_conformance.conformance.adapters.keras import KerasAdapter  # noqa: E402
from conv_conformance.conformance.scoring import ScoringOptions, evaluate  # noqa: E402
from conv_conformance.oracle import tf_layers, tf_training  # noqa: E402
from conv_conformance.oracle.cases import case_set  # noqa: E402
from conv_conformance.oracle.materialize import materialize  # noqa: E402


class Rebuilding(KerasAdapter):
    """The `keras` adapter calling Keras anew for every request."""

    def forward(self, spec, inputs, weights):
        return tf_layers.forward(spec, inputs, weights, flavour=self.flavour)

    def vjp(self, spec, inputs, weights, output_grad):
        return tf_layers.vjp(spec, inputs, weights, output_grad, flavour=self.flavour)

    def initialize(self, spec, input_shape, seed):
        return tf_training.initialize(spec, input_shape, seed, flavour=self.flavour)

    def regularization(self, spec, inputs, weights):
        return tf_training.regularization(spec, inputs, weights, flavour=self.flavour)

    def regularization_vjp(self, spec, inputs, weights):
        return tf_training.regularization_vjp(spec, inputs, weights, flavour=self.flavour)


class Timed:
    """An adapter whose calls are timed by method name."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds = inner, collections.Counter()

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in ("forward", "vjp", "initialize", "regularization", "regularization_vjp", "constrain"):
            return attr

        def timed(*args):
            start = time.perf_counter()
            try:
                return attr(*args)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--step", type=int, default=4, help="score every STEP-th case (default: 4)")
    parser.add_argument("--block", type=int, default=25, help="cases per alternating block (default: 25)")
    args = parser.parse_args()
    cases = case_set(args.profile)[::args.step]
    options = ScoringOptions()
    print(f"profile {args.profile}: {len(cases)} cases (every {args.step}th), float32, one thread; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    adapters = {"rebuilding": Timed(Rebuilding()), "current": Timed(KerasAdapter())}
    wall, inside, verdicts = collections.Counter(), collections.Counter(), {}
    for name, adapter in adapters.items():  # warm-up: TensorFlow's import and first traces
        evaluate(adapter, cases[0], options)
        adapter.seconds.clear()
    for start in range(0, len(cases), args.block):
        block = [(c, materialize(c, options.dtype, options.tolerance)) for c in cases[start:start + args.block]]
        order = list(adapters.items())
        order = order if (start // args.block) % 2 == 0 else order[::-1]
        for name, adapter in order:
            t0 = time.perf_counter()
            for case, m in block:
                r = evaluate(adapter, case, options, m)
                inside[name] += r.seconds
                verdicts[name, case.id] = dict(r.verdicts)
            wall[name] += time.perf_counter() - t0
    n = len(cases)
    for name, adapter in adapters.items():
        split = ", ".join(f"{k} {v:.1f} s" for k, v in adapter.seconds.most_common())
        print(f"{name:10s}: {1e3 * wall[name] / n:7.1f} ms/case scored, {1e3 * inside[name] / n:7.1f} ms/case in "
              f"the adapter ({split})")
    print(f"ratio rebuilding / current: scored {wall['rebuilding'] / wall['current']:.2f}x, in the adapter "
          f"{inside['rebuilding'] / inside['current']:.2f}x")
    differ = [c.id for c in cases if verdicts["rebuilding", c.id] != verdicts["current", c.id]]
    print(f"cases whose verdicts differ: {len(differ)}" + (f" ({', '.join(differ[:10])})" if differ else ""))


if __name__ == "__main__":
    main()

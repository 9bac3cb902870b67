"""Time of the `keras` adapter's calls per case against earlier versions of it (a script, not a test).

The adapters score the same cases (every --step-th case of a profile) in this process, one
worker's way (``conformance.scoring.evaluate``, numerical libraries on one thread, XLA on one
thread, TensorFlow's persistent XLA cache off), in alternating blocks so that a change of the
machine's load falls on all. Prints, for each, the time spent inside the adapter's calls and
the whole time per case (wall and CPU), the ratio baseline / current (above 1 the current
adapter is faster), the split by method of the time inside the calls, and the number of cases
whose verdicts differ (expected: only K17's nondeterministic depthwise gradients).

Baselines (--against):

* ``previous``: the current adapter with the initializer draws and constraints of the version
  before: every draw constructs the seeded layer and, at an input shape no layer was built for,
  builds it with all its variables; a constraint falls back to a new build unless the most
  recently built layer of the spec has the weights' shapes;
* ``rebuilding``: every request served as :mod:`oracle.tf_layers` and :mod:`oracle.tf_training`
  serve it: a new layer call for the penalties and their gradient, a layer built for each
  initializer draw.

    python benchmarks/bench_keras.py [--profile standard] [--step 4] [--block 25] [--against previous,rebuilding]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_name, "1")  # as in a --jobs worker (conformance.runner)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CONV_CONFORMANCE_XLA_CACHE", "off")  # every adapter compiles afresh, as in a first run

import numpy as np  # noqa: E402

from conv_conformance import reference  # noqa: E402
from conv_conformance.conformance.adapters import keras_calls  # noqa: E402
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


class Previous(KerasAdapter):
    """The `keras` adapter with the draws and constraints of the version before: every draw
    constructs the seeded layer and, without a layer built at its input shape (the forward's or
    an earlier draw's), builds it, creating every variable; constraints use the most recent
    layer built for the spec, else build one."""

    _TEMPLATES = 8

    def __init__(self) -> None:
        super().__init__()
        self._built: collections.OrderedDict = collections.OrderedDict()

    def _keep(self, key, layer) -> None:
        self._built[key] = layer
        self._built.move_to_end(key)
        if len(self._built) > self._TEMPLATES:
            self._built.popitem(last=False)

    def _latest(self, spec, input_shape, dtype):
        nspec = json.dumps(reference.normalize(spec), sort_keys=True)
        for (s, shape, d), layer in reversed(self._built.items()):
            if s == nspec and d == dtype and (input_shape is None or shape == tuple(input_shape)):
                return layer
        return None

    def forward(self, spec, inputs, weights):
        out = super().forward(spec, inputs, weights)
        layer = keras_calls._built_for(spec, np.shape(inputs), np.asarray(inputs).dtype.name)
        if layer is not None:
            self._keep((json.dumps(reference.normalize(spec), sort_keys=True), np.shape(inputs),
                        np.asarray(inputs).dtype.name), layer)
        return out

    def initialize(self, spec, input_shape, seed, dtype="float32"):
        tf, _ = tf_layers._modules(self.flavour)
        nspec = reference.normalize(spec)
        layer = tf_layers.construct(tf_training.seeded(nspec, seed), flavour=self.flavour, dtype=dtype)
        template = self._latest(spec, input_shape, dtype)
        if template is None:
            layer.build(tuple(input_shape))
            self._keep((json.dumps(nspec, sort_keys=True), tuple(input_shape), dtype), layer)
            return {k: np.asarray(v.numpy()) for k, v in tf_training._named(layer, spec, self.flavour).items()}
        args = reference.weight_arguments(nspec)
        out = {}
        for name, variable in tf_training._named(template, spec, self.flavour).items():
            shape, vdtype = tuple(variable.shape), variable.dtype
            initializer = getattr(layer, args[name]["initializer"])
            out[name] = np.asarray(tf.convert_to_tensor(initializer(shape, dtype=vdtype), dtype=vdtype))
        return out

    def constrain(self, spec, weights):
        dtype = np.asarray(next(iter(weights.values()))).dtype.name
        layer = self._latest(spec, None, dtype)
        shapes = {n: tuple(v.shape) for n, v in tf_training._named(layer, spec, self.flavour).items()} \
            if layer else {}
        if shapes != {k: np.shape(v) for k, v in weights.items()}:
            return tf_training.constrain(spec, weights, flavour=self.flavour)
        return super().constrain(spec, weights)


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


BASELINES = {"rebuilding": Rebuilding, "previous": Previous}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--step", type=int, default=4, help="score every STEP-th case (default: 4)")
    parser.add_argument("--block", type=int, default=25, help="cases per alternating block (default: 25)")
    parser.add_argument("--against", default="previous", help="comma-separated baselines among "
                        f"{', '.join(BASELINES)} (default: previous)")
    args = parser.parse_args()
    names = [n.strip() for n in args.against.split(",") if n.strip()]
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        parser.error(f"argument --against: expected names among {', '.join(BASELINES)}; received {args.against!r}")
    cases = case_set(args.profile)[::args.step]
    options = ScoringOptions()
    print(f"profile {args.profile}: {len(cases)} cases (every {args.step}th), float32, one thread; "
          f"load average at start {os.getloadavg()[0]:.1f}")
    adapters = {name: Timed(BASELINES[name]()) for name in names}
    adapters["current"] = Timed(KerasAdapter())
    wall, cpu, inside, verdicts = collections.Counter(), collections.Counter(), collections.Counter(), {}
    for name, adapter in adapters.items():  # warm-up: TensorFlow's import and first traces
        evaluate(adapter, cases[0], options)
        adapter.seconds.clear()
    for start in range(0, len(cases), args.block):
        block = [(c, materialize(c, options.dtype, options.tolerance)) for c in cases[start:start + args.block]]
        order = list(adapters.items())
        order = order if (start // args.block) % 2 == 0 else order[::-1]
        for name, adapter in order:
            t0, c0 = time.perf_counter(), time.process_time()
            for case, m in block:
                r = evaluate(adapter, case, options, m)
                inside[name] += r.seconds
                verdicts[name, case.id] = dict(r.verdicts)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    n = len(cases)
    for name, adapter in adapters.items():
        split = ", ".join(f"{k} {v:.1f} s" for k, v in adapter.seconds.most_common())
        print(f"{name:10s}: {1e3 * wall[name] / n:7.1f} ms/case scored ({1e3 * cpu[name] / n:7.1f} ms CPU), "
              f"{1e3 * inside[name] / n:7.1f} ms/case in the adapter ({split})")
    for name in names:
        print(f"ratio {name} / current: scored {wall[name] / wall['current']:.2f}x (CPU {cpu[name] / cpu['current']:.2f}x), "
              f"in the adapter {inside[name] / inside['current']:.2f}x")
        differ = [c.id for c in cases if verdicts[name, c.id] != verdicts["current", c.id]]
        print(f"  cases whose verdicts differ: {len(differ)}" + (f" ({', '.join(differ[:10])})" if differ else ""))


if __name__ == "__main__":
    main()

"""Throughput of the float64 reference against TensorFlow's float64 ops, in one process.

    python benchmarks/bench_reference.py [--repeats N] [--networks EVERY] [--tolerance]

``--networks EVERY``: instead of the mid-sized shapes below, every EVERY-th case of the
``networks`` profile with arithmetic (its real specs, unnormalized as the data file holds them
normalized, and input shapes), against the same tf.keras layer built in float64 (forward: a
call; VJP: GradientTape); prints the median ratio over those shapes for forward and VJP.
``--tolerance``: also the time of the tolerance model (``oracle.tolerance.allowed_errors``,
float32, both modes) as a multiple of the reference's forward + VJP on the same case.

For each mid-sized shape: the best-of-N time of `reference.forward` and of
`reference.vjp` against the same computation with TensorFlow's float64 ops
(tf.nn.* forward; the VJP with tf.GradientTape), and the ratio
TF time / reference time (>= 1 means the reference is at least as fast).
Then the median ratio, the time of a small Conv2D forward + vjp, and the peak
memory the reference allocates (tracemalloc) as a multiple of its operands
(inputs + weights + output) and of the windowed input (im2col size).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np

from conv_conformance import reference

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHAPES = [
    # (label, spec, input shape)
    ("Conv1D 8x256x32 -> 64, k=5", {"class_name": "Conv1D", "config": {"filters": 64, "kernel_size": 5,
                                                                        "padding": "same"}}, (8, 256, 32)),
    ("Conv2D 8x32x32x32 -> 64, k=3", {"class_name": "Conv2D", "config": {"filters": 64, "kernel_size": 3,
                                                                          "padding": "same"}}, (8, 32, 32, 32)),
    ("Conv3D 4x12x12x12x16 -> 32, k=3", {"class_name": "Conv3D", "config": {"filters": 32, "kernel_size": 3,
                                                                             "padding": "same"}}, (4, 12, 12, 12, 16)),
    ("SeparableConv2D 8x32x32x32 -> 64, k=3", {"class_name": "SeparableConv2D", "config": {
        "filters": 64, "kernel_size": 3, "padding": "same"}}, (8, 32, 32, 32)),
    ("Conv2DTranspose 8x16x16x32 -> 32, k=3, s=2", {"class_name": "Conv2DTranspose", "config": {
        "filters": 32, "kernel_size": 3, "strides": 2, "padding": "same"}}, (8, 16, 16, 32)),
]


def _best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _tf_fns(tf, spec, x, w, dy):
    """TF float64 forward and VJP of the same layer (bias included, linear activation)."""
    cfg = reference.normalize(spec)["config"]
    name = spec["class_name"]
    xt = tf.constant(x)
    wt = {k: tf.Variable(v) for k, v in w.items()}

    def fwd():
        if name.startswith("SeparableConv"):
            y = tf.nn.separable_conv2d(xt, wt["depthwise_kernel"], wt["pointwise_kernel"],
                                       strides=[1, *cfg["strides"], 1], padding="SAME")
        elif name.endswith("Transpose"):
            out = reference.output_shape(spec, x.shape)
            y = tf.nn.conv_transpose(xt, wt["kernel"], out, cfg["strides"], padding="SAME")
        else:
            fmt = {3: "NWC", 4: "NHWC", 5: "NDHWC"}[x.ndim]
            y = tf.nn.convolution(xt, wt["kernel"], strides=cfg["strides"], padding="SAME", data_format=fmt)
        return y + wt["bias"]

    def vjp():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = fwd()
        return tape.gradient(y, [xt, *wt.values()], output_gradients=tf.constant(dy))

    return fwd, vjp


def _keras_fns(spec, x, w, dy):
    """tf.keras float64 forward and VJP of the layer (built once, weights loaded)."""
    import tensorflow as tf
    from conv_conformance.oracle import tf_layers

    layer = tf_layers.construct(spec, dtype="float64")
    layer.build(x.shape)
    for v in layer.weights:
        v.assign(w[v.name.split("/")[-1].split(":")[0]])
    xt, dyt = tf.constant(x), tf.constant(dy)

    def fwd():
        return layer(xt)

    def vjp():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
        return tape.gradient(y, [xt, *layer.trainable_weights], output_gradients=dyt)

    return fwd, vjp


def networks(every: int, repeats: int, with_tolerance: bool) -> None:
    """Reference vs tf.keras float64 on the networks profile's shapes (see the module docstring)."""
    from conv_conformance.oracle import cases as case_sets, tolerance

    rng = np.random.default_rng(0)
    chosen = [c for c in case_sets.case_set("networks")
              if reference.LAYERS[c.layer].family not in ("cropping", "zero_padding")][::every]
    # TensorFlow's float64 grouped Conv2D (ConvNeXt's depthwise as groups=384) ran for minutes
    # without finishing on this machine, where the reference takes 3 ms: left out of the median
    grouped = [c for c in chosen if c.spec["config"].get("groups", 1) > 1]
    chosen = [c for c in chosen if c not in grouped]
    print(f"{len(chosen)} networks cases (every {every}th with arithmetic, {len(grouped)} grouped Conv left out); "
          "ratio = TF time / reference time")
    print(f"{'case':58s} {'ref fwd':>8s} {'tf fwd':>8s} {'ratio':>6s} {'ref vjp':>8s} {'tf vjp':>8s} {'ratio':>6s}"
          f" {'peak/im2col':>11s}" + (f" {'tol/ref':>7s}" if with_tolerance else ""))
    fwd_ratios, vjp_ratios, tol_ratios = [], [], []
    for c in chosen:
        x = rng.uniform(-1, 1, c.input_shape)
        w = {k: rng.uniform(-1, 1, s) for k, s in reference.weight_shapes(c.spec, c.input_shape).items()}
        y = reference.forward(c.spec, x, w)
        dy = rng.uniform(-1, 1, y.shape)
        tf_fwd, tf_vjp = _keras_fns(c.spec, x, w, dy)
        np.testing.assert_allclose(tf_fwd().numpy(), y, rtol=1e-7, atol=1e-7)  # the same computation
        rf = _best(lambda: reference.forward(c.spec, x, w), repeats)
        tfw = _best(tf_fwd, repeats)
        rv = _best(lambda: reference.vjp(c.spec, x, w, dy), repeats)
        tvj = _best(tf_vjp, repeats)
        fwd_ratios.append(tfw / rf)
        vjp_ratios.append(tvj / rv)
        cfg = c.spec["config"]
        im2col = max(y.size // y.shape[-1] * int(np.prod(cfg.get("kernel_size", [1]))) * c.input_shape[-1],
                     x.size, y.size) * 8
        peak = max(_peak_multiple(lambda: reference.forward(c.spec, x, w), im2col),
                   _peak_multiple(lambda: reference.vjp(c.spec, x, w, dy), im2col))
        line = (f"{c.id[:58]:58s} {rf*1e3:8.2f} {tfw*1e3:8.2f} {tfw/rf:6.2f} {rv*1e3:8.2f} {tvj*1e3:8.2f} "
                f"{tvj/rv:6.2f} {peak:11.1f}")
        if with_tolerance:
            tol = _best(lambda: [tolerance.allowed_errors(c.spec, x, w, dy, "float32", mode=m)
                                 for m in tolerance.MODES], 1)
            tol_ratios.append(tol / (rf + rv))
            line += f" {tol / (rf + rv):7.2f}"
        print(line, flush=True)
    print(f"median ratio on the networks shapes: forward {statistics.median(fwd_ratios):.2f}, "
          f"vjp {statistics.median(vjp_ratios):.2f} (target >= 1.0)")
    if tol_ratios:
        print(f"tolerance model (both modes) / reference forward + vjp: median {statistics.median(tol_ratios):.2f}, "
              f"max {max(tol_ratios):.2f}")


def _peak_multiple(fn, operand_bytes):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / operand_bytes


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement (best is kept)")
    p.add_argument("--networks", type=int, metavar="EVERY", default=0,
                   help="measure every EVERY-th networks case with arithmetic instead of the mid-sized shapes")
    p.add_argument("--tolerance", action="store_true", help="with --networks: also time the tolerance model")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for NumPy's BLAS and for TensorFlow's op pools alike (default 1, as each "
                        "run --jobs worker; on a shared machine a multi-threaded BLAS can lose 20x to contention)")
    args = p.parse_args(argv)
    import threadpoolctl

    threadpoolctl.threadpool_limits(args.threads)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    if args.networks:
        networks(args.networks, args.repeats, args.tolerance)
        small_case(np.random.default_rng(0))
        return

    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, tensorflow {tf.__version__}; ratio = TF time / reference time")
    print(f"{'layer':44s} {'ref fwd ms':>10s} {'tf fwd ms':>10s} {'ratio':>6s} "
          f"{'ref vjp ms':>10s} {'tf vjp ms':>10s} {'ratio':>6s} {'peak/operands':>13s} {'peak/im2col':>11s}")
    fwd_ratios, vjp_ratios = [], []
    for label, spec, shape in SHAPES:
        x = rng.standard_normal(shape)
        w = {k: rng.standard_normal(s) for k, s in reference.weight_shapes(spec, shape).items()}
        y = reference.forward(spec, x, w)
        dy = rng.standard_normal(y.shape)
        tf_fwd, tf_vjp = _tf_fns(tf, spec, x, w, dy)
        np.testing.assert_allclose(tf_fwd().numpy(), y, rtol=1e-9, atol=1e-9)  # same computation
        rf = _best(lambda: reference.forward(spec, x, w), args.repeats)
        tfw = _best(tf_fwd, args.repeats)
        rv = _best(lambda: reference.vjp(spec, x, w, dy), args.repeats)
        tvj = _best(tf_vjp, args.repeats)
        fwd_ratios.append(tfw / rf)
        vjp_ratios.append(tvj / rv)
        operands = x.nbytes + sum(a.nbytes for a in w.values()) + y.nbytes
        cfg = reference.normalize(spec)["config"]
        im2col = y.size // y.shape[-1] * int(np.prod(cfg["kernel_size"])) * shape[-1] * 8
        peak = max(_peak_multiple(lambda: reference.forward(spec, x, w), operands),
                   _peak_multiple(lambda: reference.vjp(spec, x, w, dy), operands))
        print(f"{label:44s} {rf*1e3:10.2f} {tfw*1e3:10.2f} {tfw/rf:6.2f} {rv*1e3:10.2f} {tvj*1e3:10.2f} "
              f"{tvj/rv:6.2f} {peak:13.1f} {peak * operands / im2col:11.1f}")
    print(f"median ratio: forward {statistics.median(fwd_ratios):.2f}, vjp {statistics.median(vjp_ratios):.2f} "
          "(target >= 1.0)")

    small_case(rng)


def small_case(rng) -> None:
    """A small Conv2D with a partial, unnormalized spec and with its normalized spec: forward + vjp."""
    spec = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3}}
    x = rng.standard_normal((2, 8, 8, 3))
    w = {k: rng.standard_normal(s) for k, s in reference.weight_shapes(spec, x.shape).items()}
    dy = rng.standard_normal(reference.output_shape(spec, x.shape))
    for label, s in (("partial spec", spec), ("normalized spec", reference.normalize(spec))):
        small = _best(lambda: (reference.forward(s, x, w), reference.vjp(s, x, w, dy)), 200)
        print(f"small Conv2D 2x8x8x3 -> 4, k=3, forward + vjp, {label}: {small*1e3:.3f} ms (target < 0.3 ms)")


if __name__ == "__main__":
    main()

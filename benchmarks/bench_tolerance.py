"""Benchmark of the tolerance model (a script, not a test).

1. Soundness: over the valid cases of the standard and exhaustive profiles
   (~7,000 cases) at float32, tf.keras (Keras 3) never exceeds the allowed error of
   oracle.tolerance, in the output or any gradient. Configurations with a
   known TensorFlow divergence (tests/oracle/tf_crosscheck_util.divergence)
   are skipped and counted; Conv/ConvTranspose channels_first run through the
   transposed channels_last equivalent. Prints the largest error ratio and its case.
2. Power: at float32, for every case with arithmetic, (a) the output element of
   largest magnitude perturbed by 1e-4 relative and (b) the output with one
   kernel tap missing at a border (first spatial position) are caught. For each
   miss of (a) it prints how ill-conditioned the element is (sum|x*w| / |z| of its
   pre-activation z) and, for one-sum layers with an elementwise activation, the
   largest error an actual float32 evaluation of that element shows (natural,
   reversed and sorted orders and a beam search for the worst order, with and
   without fused multiply-add): where it exceeds the perturbation, no sound tolerance
   can catch it; elsewhere it shows how far the order-independent bound is from what
   arithmetic does on these data.

    python benchmarks/bench_tolerance.py [--profiles standard,exhaustive] [--limit N]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "oracle"))

from conv_conformance import reference  # noqa: E402
from conv_conformance.conformance.compare import score  # noqa: E402
from conv_conformance.oracle import cases  # noqa: E402
from conv_conformance.oracle.tolerance import _with  # noqa: E402  (a spec with some config values replaced)

_ARITHMETIC = ("conv", "conv_transpose", "depthwise", "separable")


def _ratio(actual, expected, allowed) -> float:
    """The harness's own worst error ratio (conformance.scoring)."""
    return score("x", actual, expected, allowed, call="").ratio


def soundness(valid, dtype: str) -> None:
    from tf_crosscheck_util import divergence, tf_forward, tf_vjp

    worst, skipped, errors, checked = (0.0, None, None), 0, [], 0
    for case in tqdm(valid, desc="tf.keras float32", mininterval=5):
        if divergence(case.spec, case.input_shape, dtype, "keras3", gradient=True):
            skipped += 1
            continue
        m = cases.materialize(case, dtype)
        x = m.inputs.astype(dtype)
        w = {k: v.astype(dtype) for k, v in m.weights.items()}
        try:
            y = tf_forward(case.spec, x, w, "keras3")
            g = tf_vjp(case.spec, x, w, m.output_grad.astype(dtype), "keras3")
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            errors.append((case.id, f"{type(exc).__name__}: {str(exc)[:80]}"))
            continue
        checked += 1
        ratios = {"output": _ratio(y, m.expected_output, m.allowed_output)}
        ratios |= {k: _ratio(g[k], m.expected_gradients[k], m.allowed_gradients[k]) for k in m.expected_gradients}
        key = max(ratios, key=ratios.get)
        if ratios[key] > worst[0]:
            worst = (ratios[key], key, case)
    ratio, key, case = worst
    print(f"soundness: {checked} cases checked against tf.keras at {dtype}, {skipped} skipped (known divergences), "
          f"{len(errors)} raised, e.g. {errors[:2]}")
    print(f"  largest error ratio {ratio:.4g} ({key}) in {case.id}: {case.spec} on {case.input_shape}")
    print(f"  exceeding the allowed error (ratio > 1): {'none' if ratio <= 1 else 'YES'}")


def _border_tap_missing(case, m) -> np.ndarray:
    """The reference output with kernel tap (0, ..., 0) dropped at the first spatial position."""
    name = "depthwise_kernel" if "depthwise_kernel" in m.weights else "kernel"
    w = copy.deepcopy(m.weights)
    w[name][(0,) * reference.LAYERS[case.layer].rank] = 0.0
    y2 = reference.forward(case.spec, m.inputs, w)
    out = m.expected_output.copy()
    first = case.spec["config"]["data_format"] == "channels_first"
    border = (slice(None), slice(None), 0) if first else (slice(None), 0)
    out[border] = y2[border]
    return out


def _float32_sum(terms: np.ndarray, order, fused: bool, bias: float) -> np.float32:
    """terms summed one by one in float32 in `order` (each product rounded to float32 first,
    or not with fused multiply-add), then the bias added."""
    acc = np.float32(0)
    for t in terms[order]:
        acc = np.float32(np.float64(acc) + (t if fused else np.float64(np.float32(t))))
    return np.float32(np.float64(acc) + bias)


def _adversarial_orders(terms: np.ndarray, fused: bool, width: int = 64):
    """Summation orders that push the float32 running sum away from the exact one: a beam
    search (keeping the `width` orders whose accumulated error is largest, in each direction)."""
    values = terms if fused else terms.astype(np.float32).astype(np.float64)
    for sign in (1.0, -1.0):
        beams = [(0.0, np.float32(0), 0.0, ())]  # (signed error, float32 sum, exact sum, order)
        for _ in range(len(terms)):
            grown = {}
            for _, acc, exact, order in beams:
                for j in set(range(len(terms))) - set(order):
                    acc2 = np.float32(np.float64(acc) + values[j])
                    exact2 = exact + terms[j]
                    key = frozenset(order + (j,))
                    score = sign * (np.float64(acc2) - exact2)
                    if key not in grown or grown[key][0] < score:
                        grown[key] = (score, acc2, exact2, order + (j,))
            beams = sorted(grown.values(), key=lambda b: -b[0])[:width]
        yield from (np.array(b[3], dtype=int) for b in beams[:4])


def _worst_float32_evaluation(case, m, index) -> tuple[float, str] | None:
    """Largest |error| of element `index` computed in float32 (products rounded or fused,
    each addition rounded, then the activation correctly rounded) over the natural, reversed
    and sorted orders and a beam search for the worst order; None for layers that are not
    one sum of products per element or whose activation acts on rows."""
    from conv_conformance.reference.activations import activate

    spec = reference.normalize(case.spec)
    act = spec["config"]["activation"]
    if reference.LAYERS[case.layer].family not in ("conv", "conv_transpose", "depthwise") \
            or act in ("softmax", "log_softmax", "sparsemax", "glu"):
        return None
    lin = _with(spec, activation="linear")
    unbiased = _with(spec, activation="linear", use_bias=False)
    kernels = {k: v for k, v in m.weights.items() if k != "bias"}
    z = reference.forward(lin, m.inputs, m.weights)
    onehot = np.zeros(z.shape)
    onehot[index] = 1.0
    coefficient = reference.vjp(unbiased, m.inputs, kernels, onehot)["inputs"]  # the kernel tap meeting each input
    terms = (m.inputs * coefficient)[coefficient != 0]  # exact in float64: products of float32 values
    bias = z[index] - reference.forward(unbiased, m.inputs, kernels)[index]
    exact = activate(act, np.array([z[index]]))[0]
    named = {"natural": np.arange(len(terms)), "reversed": np.arange(len(terms))[::-1],
             "ascending": np.argsort(terms), "descending": np.argsort(-terms)}
    worst = (0.0, "")
    for fused in (False, True):
        orders = list(named.items()) + [("a beam-searched order", o) for o in _adversarial_orders(terms, fused)]
        for name, order in orders:
            acc = _float32_sum(terms, order, fused, bias)
            err = abs(np.float64(np.float32(activate(act, np.array([np.float64(acc)]))[0])) - exact)
            if err > worst[0]:
                worst = (err, name + (", fused multiply-add" if fused else ""))
    return worst


def power(valid, dtype: str) -> None:
    perturbed, missed, zero, tap_missed = [0, 0], [], 0, []
    missing = [0, 0, 0]
    for case in tqdm(valid, desc="detection", mininterval=5):
        if reference.LAYERS[case.layer].family not in _ARITHMETIC:
            continue
        m = cases.materialize(case, dtype)
        y, allowed = m.expected_output, m.allowed_output
        if y.size == 0:  # a batch of 0: no element to perturb
            continue
        i = np.unravel_index(np.argmax(np.abs(y)), y.shape)
        if y[i] == 0:  # an all-zero output (relu of negatives, log_softmax of length-1 rows): nothing relative
            zero += 1
            continue
        perturbed[0] += 1
        caught = bool(1e-4 * abs(y[i]) > allowed[i])
        perturbed[1] += caught
        if not caught:
            missed.append((case, m, i))
        y2 = _border_tap_missing(case, m)
        # the tap leaves the output as it is (it only meets padding zeros at the border, or the
        # activation cannot see it: sparsemax over one channel is 1 whatever z is): below the
        # reference's own float64 rounding, nothing to catch
        if np.abs(y2 - y).max() <= 1e-12 * max(1.0, float(np.abs(y).max())):
            missing[2] += 1
            continue
        missing[0] += 1
        caught = bool((np.abs(y2 - y) > allowed).any())
        missing[1] += caught
        if not caught:
            tap_missed.append(f"{case.id} ({case.spec['config'].get('activation')})")
    print(f"power at {dtype}: 1e-4 relative perturbation of the largest output element caught in "
          f"{perturbed[1]}/{perturbed[0]} cases with a nonzero output ({zero} all-zero outputs); "
          f"{len(missed)} missed:")
    for case, m, i in missed:
        spec = reference.normalize(case.spec)
        lin = _with(spec, activation="linear")
        z = reference.forward(lin, m.inputs, m.weights)[i]
        absolute = reference.forward(lin, np.abs(m.inputs), {k: np.abs(v) for k, v in m.weights.items()})[i]
        y, allowed = m.expected_output[i], m.allowed_output[i]
        line = (f"  {case.id} {spec['config']['activation']}: y={y:.4g}, z={z:.4g}, sum|x*w|/|z|={absolute / abs(z):.3g}, "
                f"allowed {allowed / abs(y):.2e}|y|")
        worst = _worst_float32_evaluation(case, m, i)
        if worst is not None:
            line += f"; float32 arithmetic errs by up to {worst[0] / abs(y):.2e}|y| ({worst[1]})"
            if worst[0] > 1e-4 * abs(y):
                line += (": an honest float32 sum already errs by more than the perturbation, "
                         "so no sound tolerance can catch it")
        print(line)
    print(f"  missing border kernel tap caught in {missing[1]}/{missing[0]} cases "
          f"({missing[2]} cases where the output does not change: that tap only meets padding at the "
          f"border, or the activation cannot see it)"
          + (f"; missed {tap_missed[:3]}" if tap_missed else ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="standard,exhaustive",
                        help="comma-separated profiles whose valid cases are checked (deduplicated)")
    parser.add_argument("--limit", type=int, default=None, help="check only the first N valid cases")
    parser.add_argument("--skip-tf", action="store_true", help="only the detection part")
    args = parser.parse_args(argv)
    profiles = args.profiles.split(",")
    unknown = [p for p in profiles if p not in cases.PROFILES]
    if unknown:
        parser.error(f"--profiles must name profiles among {', '.join(cases.PROFILES)}; received {unknown}")
    valid = list({c.id: c for p in profiles for c in cases.case_set(p) if c.kind == "valid"}.values())[:args.limit]
    start = time.perf_counter()
    power(valid, "float32")
    if not args.skip_tf:
        warnings.filterwarnings("ignore")
        soundness(valid, "float32")
    print(f"total {time.perf_counter() - start:.0f} s for {len(valid)} valid cases of profiles {profiles}")


if __name__ == "__main__":
    main()

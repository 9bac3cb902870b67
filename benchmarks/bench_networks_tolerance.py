"""Power and soundness of the two tolerance modes on the networks profile.

    python benchmarks/bench_networks_tolerance.py [--every K] [--dtypes float32,float16,bfloat16]
    python benchmarks/bench_networks_tolerance.py --reports docs/results/networks/*/report.json

    python benchmarks/bench_networks_tolerance.py --simulate [--every K]

Power (adapter-independent): for every K-th networks case with arithmetic and each dtype, the
smallest relative perturbation of one output element that the allowed error catches,
``allowed_i / |expected_i|``, at the case's largest element and as the median over its
elements, for the rigorous and the probabilistic bound and, at float16 and bfloat16, the strict
class; printed as a distribution over the cases (min, 25%, median, 75%, max) and the median in
units of the dtype's unit roundoff u. Also the time of the tolerance model (every class, one
pass) per dtype as a multiple of the reference's forward + VJP on the same arrays: the float16
and bfloat16 figures include the strict class, the float32 one does not.

Simulation (``--simulate``): honest float32-accumulating float16 and bfloat16 variants, emulated
exactly (tests/lowp_emulation.py) at every rounding placement, never exceed the strict class:
the largest ratio per dtype and placement.

Soundness (``--reports``): from run reports (``conv-conformance run --profile networks``, default
rigorous mode, which also records the strict ratio: against the probabilistic bound at float32,
the low-precision class at float16 and bfloat16), per adapter and dtype the largest error ratio
under the run's bound and the strict class, the cases above 1, and the effective precision
(fewest bits, cases short of the dtype).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.lowp_emulation, the emulated variants

from conv_conformance import reference  # noqa: E402
from conv_conformance.oracle import cases, tolerance  # noqa: E402


def _quantiles(values: list[float]) -> str:
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1.0], method="nearest")  # inf: nothing caught
    return " ".join(f"{v:9.2e}" for v in q)


def _arithmetic_cases(every: int) -> list:
    return [c for c in cases.case_set("networks")
            if reference.LAYERS[c.layer].family not in ("cropping", "zero_padding")][::every]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def power(every: int, dtypes: list[str]) -> None:
    """The perturbation distributions and the tolerance model's cost (see the module docstring)."""
    chosen = _arithmetic_cases(every)
    print(f"{len(chosen)} networks cases (every {every}th with arithmetic)")
    print(f"{'dtype':9s} {'class':14s} {'where':8s} {'min':>9s} {'25%':>9s} {'median':>9s} {'75%':>9s} {'max':>9s}"
          "   (smallest relative perturbation of one element caught; in units of u)")
    cost: dict[str, list[float]] = {}
    for dtype in dtypes:
        u = tolerance.unit_roundoff(dtype)
        table: dict[tuple[str, str], list[float]] = {}
        for c in chosen:
            m = cases.materialize(c, dtype, "rigorous")
            modes, strict, _ = tolerance.bounds_strict_scale(c.spec, m.inputs, m.weights, m.output_grad, dtype)
            y = np.abs(m.expected_output)
            keep = y > 0
            big = np.unravel_index(np.argmax(y), y.shape)
            classes = [("rigorous", modes["rigorous"][0]), ("probabilistic", modes["probabilistic"][0])]
            if dtype in tolerance.LOW_PRECISION:
                classes.append(("strict", strict[0]))
            for mode, allowed in classes:
                rel = allowed[keep] / y[keep]
                table.setdefault((mode, "largest"), []).append(float(allowed[big] / y[big]))
                table.setdefault((mode, "median"), []).append(float(np.median(rel)))
            ref = _timed(lambda: (reference.forward(c.spec, m.inputs, m.weights),
                                  reference.vjp(c.spec, m.inputs, m.weights, m.output_grad)))
            model = _timed(lambda: tolerance.bounds_strict_scale(c.spec, m.inputs, m.weights, m.output_grad, dtype))
            cost.setdefault(dtype, []).append(model / ref)
        for (mode, where), values in sorted(table.items()):
            units = np.quantile(values, 0.5, method="nearest") / u
            print(f"{dtype:9s} {mode:14s} {where:8s} {_quantiles(values)}   median {units:.3g}u", flush=True)
    for dtype, ratios in cost.items():
        print(f"tolerance model at {dtype} (every class, one pass) / reference forward + vjp: "
              f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f}")


def simulate(every: int, dtypes: list[str]) -> None:
    """No false alarm of the strict class: honest float32-accumulating variants, every rounding
    placement (tests/lowp_emulation.py), worst ratio against the strict bound per dtype and placement."""
    from tests import lowp_emulation as emulation
    from conv_conformance.conformance.compare import error_ratios

    chosen = [c for c in _arithmetic_cases(every) if reference.LAYERS[c.layer].family != "upsampling"]
    print(f"{len(chosen)} networks cases (every {every}th with a sum of products)")
    worst: dict[tuple[str, str], tuple[float, str]] = {}
    for i, c in enumerate(chosen, 1):
        if i % 20 == 0:
            print(f"  {i} cases, largest ratio so far {max(r for r, _ in worst.values()):.4f}", flush=True)
        for dtype in dtypes:
            m = cases.materialize(c, dtype)
            for placement in emulation.PLACEMENTS:
                y = emulation.honest(c.spec, m.inputs, m.weights, dtype, placement)
                ratio = float(error_ratios(y, m.expected_output, m.strict_output).max())
                if ratio >= worst.get((dtype, placement), (-1.0, ""))[0]:
                    worst[(dtype, placement)] = (ratio, c.id)
    print(f"{'dtype':9s} {'placement':15s} {'max strict ratio':>16s}  case")
    for (dtype, placement), (ratio, case_id) in sorted(worst.items()):
        print(f"{dtype:9s} {placement:15s} {ratio:16.4f}  {case_id}")


def soundness(paths: list[str]) -> None:
    """Per report: the largest ratio under each mode, cases above 1, effective precision."""
    print(f"{'adapter':10s} {'dtype':9s} {'tolerance':13s} {'cases':>5s} {'worst rig.':>10s} {'worst strict':>12s} "
          f"{'>1 rig.':>7s} {'>1 strict':>9s} {'min bits':>8s} {'short':>5s}  verdicts")
    for path in paths:
        with open(path, encoding="utf-8") as f:
            rep = json.load(f)
        mode = rep.get("tolerance", "rigorous")
        loose, strict, over_l, over_s = 0.0, 0.0, 0, 0
        for case in rep["cases"]:
            r = [v for v in case.get("worst_ratio", {}).values() if isinstance(v, (int, float))]
            s = [v for v in case.get("strict_ratio", {}).values() if isinstance(v, (int, float))] or r
            if r:
                loose, over_l = max(loose, max(r)), over_l + (max(r) > 1)
            if s:
                strict, over_s = max(strict, max(s)), over_s + (max(s) > 1)
        prec = rep["summary"].get("precision") or {}
        counts = {k: v for k, v in rep["summary"]["counts"].items() if v}
        print(f"{rep['adapter']['name']:10s} {rep['dtype']:9s} {mode:13s} {rep['summary']['cases']:5d} {loose:10.3g} "
              f"{strict:12.3g} {over_l:7d} {over_s:9d} {prec.get('min_bits') or float('nan'):8.1f} "
              f"{prec.get('short', 0):5d}  {counts}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--every", type=int, default=4, help="every K-th networks case with arithmetic (default 4)")
    p.add_argument("--dtypes", default="float32,float16,bfloat16")
    p.add_argument("--reports", nargs="*", help="report.json files of networks runs: print soundness instead")
    p.add_argument("--simulate", action="store_true",
                   help="the strict class against honest float32-accumulating float16/bfloat16 variants")
    args = p.parse_args(argv)
    if args.reports:
        soundness(args.reports)
    elif args.simulate:
        simulate(args.every, [d for d in args.dtypes.split(",") if d in tolerance.LOW_PRECISION])
    else:
        power(args.every, args.dtypes.split(","))


if __name__ == "__main__":
    main()

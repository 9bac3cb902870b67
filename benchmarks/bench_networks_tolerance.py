"""Power and soundness of the two tolerance modes on the networks profile.

    python benchmarks/bench_networks_tolerance.py [--every K] [--dtypes float32,float16,bfloat16]
    python benchmarks/bench_networks_tolerance.py --reports docs/results/networks/*/report.json

Power (adapter-independent): for every K-th networks case with arithmetic and each dtype, the
smallest relative perturbation of one output element that the allowed error catches,
``allowed_i / |expected_i|``, at the case's largest element and as the median over its
elements, for the rigorous and the probabilistic bound; printed as a distribution over the
cases (min, 25%, median, 75%, max). Also the time of the tolerance model (both modes, one
pass) as a multiple of the reference's forward + VJP on the same arrays.

Soundness (``--reports``): from run reports (``conv-conformance run --profile networks``, default
rigorous mode, which also records the strict ratio against the probabilistic bound), per
adapter and dtype the largest error ratio under each mode, the cases above 1, and the
effective precision (fewest bits, cases short of the dtype).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from conv_conformance import reference
from conv_conformance.oracle import cases, tolerance


def _quantiles(values: list[float]) -> str:
    q = np.quantile(values, [0, 0.25, 0.5, 0.75, 1.0], method="nearest")  # inf: nothing caught
    return " ".join(f"{v:9.2e}" for v in q)


def power(every: int, dtypes: list[str]) -> None:
    """The perturbation distributions and the tolerance model's cost (see the module docstring)."""
    chosen = [c for c in cases.case_set("networks")
              if reference.LAYERS[c.layer].family not in ("cropping", "zero_padding")][::every]
    print(f"{len(chosen)} networks cases (every {every}th with arithmetic)")
    print(f"{'dtype':9s} {'mode':14s} {'where':8s} {'min':>9s} {'25%':>9s} {'median':>9s} {'75%':>9s} {'max':>9s}"
          "   (smallest relative perturbation of one element caught)")
    cost = []
    for dtype in dtypes:
        table: dict[tuple[str, str], list[float]] = {}
        for c in chosen:
            m = cases.materialize(c, dtype, "rigorous")
            y = np.abs(m.expected_output)
            keep = y > 0
            big = np.unravel_index(np.argmax(y), y.shape)
            for mode, allowed in (("rigorous", m.allowed_output), ("probabilistic", m.strict_output)):
                rel = allowed[keep] / y[keep]
                table.setdefault((mode, "largest"), []).append(float(allowed[big] / y[big]))
                table.setdefault((mode, "median"), []).append(float(np.median(rel)))
            if dtype == dtypes[0]:
                t0 = time.perf_counter()
                reference.forward(c.spec, m.inputs, m.weights)
                reference.vjp(c.spec, m.inputs, m.weights, m.output_grad)
                t1 = time.perf_counter()
                tolerance.bounds_and_scale(c.spec, m.inputs, m.weights, m.output_grad, dtype)
                cost.append((time.perf_counter() - t1) / (t1 - t0))
        for (mode, where), values in sorted(table.items()):
            print(f"{dtype:9s} {mode:14s} {where:8s} {_quantiles(values)}", flush=True)
    print(f"tolerance model (both modes, one pass) / reference forward + vjp: median {statistics.median(cost):.2f}, "
          f"max {max(cost):.2f}")


def soundness(paths: list[str]) -> None:
    """Per report: the largest ratio under each mode, cases above 1, effective precision."""
    print(f"{'adapter':10s} {'dtype':9s} {'tolerance':13s} {'cases':>5s} {'worst rig.':>10s} {'worst prob.':>11s} "
          f"{'>1 rig.':>7s} {'>1 prob.':>8s} {'min bits':>8s} {'short':>5s}  verdicts")
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
              f"{strict:11.3g} {over_l:7d} {over_s:8d} {prec.get('min_bits') or float('nan'):8.1f} "
              f"{prec.get('short', 0):5d}  {counts}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--every", type=int, default=4, help="every K-th networks case with arithmetic (default 4)")
    p.add_argument("--dtypes", default="float32,float16,bfloat16")
    p.add_argument("--reports", nargs="*", help="report.json files of networks runs: print soundness instead")
    args = p.parse_args(argv)
    if args.reports:
        soundness(args.reports)
    else:
        power(args.every, args.dtypes.split(","))


if __name__ == "__main__":
    main()

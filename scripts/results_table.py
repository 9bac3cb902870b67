"""Markdown tables of the published results, computed from report.json files.

    python scripts/results_table.py networks docs/results/networks/*/report.json
    python scripts/results_table.py runs docs/results/runtimes/*/report.json
    python scripts/results_table.py readme docs/results      # writes docs/results/README.md

``networks``: adapter | dtype | worst ratio (median case), rigorous | same, strict (the other
tolerance mode) | effective precision: fewest bits (cases with an estimate, how many short) | verdicts | minutes.
``runs``: adapter | dtype | cases | verdict counts | coverage | minutes.
``readme``: the whole results page of a results directory (every report.json under it: the standard
profile per adapter and dtype, the deployment runtimes, the networks profile, and the environments
they ran in), written to DIR/README.md.
The ratios are the larger of a case's output and gradient ratios; "median case" is over the cases
that have one.
"""
from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime
from pathlib import Path

# the core dtype first, as the results tables list them
from conv_conformance.conformance.levels import DTYPES
from conv_conformance.oracle.cases import PROFILES, case_set, corpus_id


def _ratio(value) -> float:
    return float(value) if value is not None else float("nan")


def _case_ratio(case: dict, key: str) -> float | None:
    values = [_ratio(v) for k, v in (case.get(key) or {}).items() if k in ("output", "gradient") and v is not None]
    return max(values) if values else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _counts(report: dict) -> str:
    return ", ".join(f"{n} {v}" for v, n in report["summary"]["counts"].items() if n)


def _minutes(report: dict) -> str:
    try:
        t0, t1 = (datetime.fromisoformat(report[k]) for k in ("started", "finished"))
    except (KeyError, TypeError, ValueError):
        return "-"
    return f"{(t1 - t0).total_seconds() / 60:.1f}"


def _label(report: dict, path: Path) -> str:
    return report["adapter"]["name"] + (" (AVX2 kernels)" if path.parent.name.endswith("-avx2") else "")


def networks_row(report: dict, path: Path) -> str:
    cases = report["cases"]
    rig = [r for r in (_case_ratio(c, "worst_ratio") for c in cases) if r is not None]
    strict = [r for r in (_case_ratio(c, "strict_ratio") for c in cases) if r is not None]
    p = report["summary"].get("precision") or {}
    bits = f"{p.get('min_bits')} ({p.get('cases', 0)} cases, {p.get('short', 0)} short)" if p else "-"
    both = lambda xs: f"{_fmt(max(xs))} ({_fmt(statistics.median(xs))})" if xs else "-"  # noqa: E731
    return (f"| {_label(report, path)} | {report['dtype']} | {both(rig)} | {both(strict)} | {bits} | "
            f"{_counts(report)} | {_minutes(report)} |")


def runs_row(report: dict, path: Path) -> str:
    cov = report["summary"].get("coverage") or {}
    fraction = f"{100 * cov['fraction']:.1f}%" if cov.get("fraction") is not None else "-"
    return (f"| {_label(report, path)} | {report['dtype']} | {len(report['cases'])} | {_counts(report)} | "
            f"{fraction} | {_minutes(report)} |")


# ------------------------------------------------------------------ the results page

# The shipped training frameworks first, in the order the README lists them.
_ORDER = ("reference", "keras", "tf-keras", "torch", "jax", "keras-jax", "keras-torch", "keras-numpy",
          "onnxruntime", "onnxruntime-noopt", "openvino", "litert", "litert-noxnnpack", "tfjs", "tfjs-wasm")
# Environment variables that change which CPU kernels run (conformance.environment.KNOBS, minus threads).
_KERNEL_KNOBS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def _sort_key(item: tuple[Path, dict]) -> tuple:
    """Shipped order, then dtype, then the machine's own kernels before a run on other kernels."""
    path, report = item
    name = report["adapter"]["name"]
    rank = _ORDER.index(name) if name in _ORDER else len(_ORDER)
    dtypes = DTYPES
    return (rank, name, dtypes.index(report["dtype"]) if report["dtype"] in dtypes else len(dtypes),
            path.parent.name.endswith("-avx2"), str(path))


def _kernels(report: dict) -> str:
    env = report.get("environment") or {}
    own = env.get("adapter") or {}
    if "exec_protocol" in own:  # an implementation in a process of its own: its kernels are its own
        backend = own.get("tfjs_backend")
        return f"TF.js backend {backend}" if backend else f"process ({own.get('exec_protocol')})"
    knobs = env.get("knobs") or {}
    set_knobs = [f"`{k}={knobs[k]}`" for k in _KERNEL_KNOBS if k in knobs]
    parts = [f"oneDNN ISA {env.get('onednn_isa', '?')}"]
    tf = env.get("tensorflow")
    if isinstance(tf, dict) and "onednn" in tf:
        parts.append("TF oneDNN " + ("on" if str(tf["onednn"]) == "True" else "off"))
    return ", ".join(parts) + (" (" + " ".join(set_knobs) + ")" if set_knobs else "")


def _levels(report: dict) -> str:
    levels = (report["summary"].get("levels") or {}).values()
    counts: dict[str, int] = {}
    for entry in levels:
        counts[entry["level"]] = counts.get(entry["level"], 0) + 1
    order = ("full", "partial", "core", "not_implemented", "not_conformant")
    return ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in order if counts.get(k)) or "-"


def _coverage(report: dict) -> str:
    cov = report["summary"].get("coverage") or {}
    return f"{100 * cov['fraction']:.1f}%" if cov.get("fraction") is not None else "-"


def _category(report: dict, category: str) -> str:
    counts = (report["summary"].get("by_category") or {}).get(category) or {}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "-"


def _rejects(report: dict) -> str:
    invalid = [c for c in report["cases"] if c["kind"] == "invalid"]
    passed = sum(1 for c in invalid if c["verdicts"].get("error_behaviour") == "pass")
    return f"{passed}/{len(invalid)}"


def _known(report: dict) -> str:
    """Failing cases the catalogue of findings explains, and those it does not ("new")."""
    found = report["summary"].get("findings")
    if not found or not (found["known"] or found["new"]):
        return "-"
    return f"{found['known']} known, {found['new']} new"


def _yes(report: dict) -> str:
    if report.get("interrupted"):  # a verdict on part of the corpus is no verdict
        return f"interrupted after {len(report['cases'])} cases"
    return "**yes**" if report["summary"]["conformant"] else "no"


def _link(path: Path, root: Path) -> str:
    return f"[report.json]({path.relative_to(root).as_posix()})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def _corpora(reports: list[tuple[Path, dict]]) -> str:
    """The corpora the reports ran on; a report made on an older corpus of its profile says so."""
    complete = [r for _, r in reports if not r.get("interrupted")] or [r for _, r in reports]
    seen = sorted({(r["profile"], r["corpus_id"], r["suite_version"], len(r["cases"])) for r in complete})
    current = {p: corpus_id(case_set(p)) for p, *_ in seen if p in PROFILES}
    return "; ".join(f"`{p}` corpus `{c}` ({n} cases, suite {v})"
                     + ("" if current.get(p, c) == c else f", not the current `{p}` corpus `{current[p]}`")
                     for p, c, v, n in seen)


def _environments(reports: list[tuple[Path, dict]]) -> list[str]:
    machines = sorted({(e.get("cpu", {}).get("vendor", "?"), e.get("cpu", {}).get("model", "?"),
                        e.get("cpu", {}).get("cores", "?"), e.get("cpu", {}).get("isa", "?"), e.get("os", "?"))
                       for e in ((r.get("environment") or {}) for _, r in reports)})
    lines = [f"* CPU {vendor} {model}, {cores} cores, ISA flags `{isa}`; {os}"
             for vendor, model, cores, isa, os in machines]
    versions: dict[str, set[str]] = {}
    for _, r in reports:
        for package, version in (r["adapter"].get("versions") or {}).items():
            versions.setdefault(package, set()).add(version)
    lines.append("* versions: " + ", ".join(f"{k} {' / '.join(sorted(v))}" for k, v in sorted(versions.items())))
    return lines


def readme(root: Path) -> str:
    """The results page of ``root``: every report.json under it, grouped by what it measured."""
    found = sorted(((p, json.loads(p.read_text())) for p in root.rglob("report.json")), key=_sort_key)
    standard = [(p, r) for p, r in found if r["profile"] == "standard" and p.parent.parent == root]
    low_standard = [(p, r) for p, r in found if r["profile"] == "standard" and "low-precision" in p.parts]
    runtimes = [(p, r) for p, r in found if r["profile"] == "standard" and p.parent.parent.name == "runtimes"]
    low = [(p, r) for p, r in found if r["profile"] == "networks" and p.parent.parent.name == "low-precision"]
    networks = [(p, r) for p, r in found if r["profile"] == "networks" and (p, r) not in low]
    out = ["# Results of the shipped adapters", "",
           "Generated by `bash scripts/results.sh` (`python scripts/results_table.py readme docs/results`)",
           "from the `report.json` files below; change the generator, not this page. Every report records",
           "the environment it ran in (`environment`), which can decide verdicts:",
           "[findings/machine.md](../findings/machine.md). What the failures are, each with its exact",
           "condition: [divergences.md](../divergences.md).", ""]
    for dtype in DTYPES:
        group = [(p, r) for p, r in standard if r["dtype"] == dtype]
        if not group:
            continue
        out += [f"## Standard profile, {dtype}", "", _corpora(group) + ". Cases per verdict, all layers;",
                f"per layer: [scoreboard-{dtype}](scoreboard-{dtype}/scoreboard.md)."
                if (root / f"scoreboard-{dtype}" / "scoreboard.md").exists() else "per layer: see each report.", ""]
        out += _table(["adapter", "kernels", "verdicts", "failing: known, new", "coverage", "layer levels", "conformant",
                       "minutes", "report"],
                      [[f"`{r['adapter']['name']}`", _kernels(r), _counts(r), _known(r), _coverage(r), _levels(r),
                        _yes(r), _minutes(r), _link(p, root)] for p, r in group])
        out.append("")
    if runtimes:
        out += ["## Deployment runtimes, standard profile", "", _corpora(runtimes) + ". The output and gradient",
                "categories; these adapters implement no training-time method, so those categories are",
                "`unsupported`.", ""]
        out += _table(["adapter", "dtype", "output", "gradient", "rejects what Keras rejects", "failing: known, new",
                       "conformant", "minutes", "report"],
                      [[f"`{r['adapter']['name']}`", r["dtype"], _category(r, "output"), _category(r, "gradient"),
                        _rejects(r), _known(r), _yes(r), _minutes(r), _link(p, root)] for p, r in runtimes])
        out.append("")
    if networks:
        out += ["## Networks profile", "", _corpora(networks) + " ([networks.md](../networks.md)). Worst error",
                "ratio over the cases (median case in brackets) in the run's mode and in the other one (the",
                "strict ratio), the effective precision (fewest bits over the cases that have an estimate,",
                "how many are more than 4 bits short), the verdicts.", ""]
        out += _table(["adapter", "dtype", "worst ratio (median), rigorous", "same, probabilistic",
                       "effective precision: fewest bits", "verdicts", "conformant", "minutes", "report"],
                      [_networks_cells(r, p) + [_yes(r), _minutes(r), _link(p, root)] for p, r in networks])
        out.append("")
    if low:
        out += ["## Low precision, networks profile", "", _corpora(low) + ", scored with the strict class of",
                "float16 and bfloat16 (float32 accumulation, at most three roundings to the dtype:",
                "[tolerance.md](../tolerance.md)); outside it and inside the rigorous bound is",
                "`quality_warning`. The error against the output's own rounding: the median case's median",
                "error in units of u (the dtype's unit roundoff; a correctly rounded result is at most 1), and",
                "the most bits any case loses beyond rounding its result to the dtype",
                "([findings/low-precision.md](../findings/low-precision.md)).", ""]
        out += _table(["adapter", "dtype", "verdicts", "median error (u)", "most bits lost", "conformant", "minutes",
                       "report"],
                      [[f"`{r['adapter']['name']}`", r["dtype"], _counts(r), _median_u(r), _bits_lost(r), _yes(r),
                        _minutes(r), _link(p, root)] for p, r in low])
        out.append("")
    if low_standard:
        out += ["## Low precision, standard profile", "", _corpora(low_standard) + ", float16 and bfloat16 with the",
                "strict class as above. Cases per verdict, all layers; failing cases known to the catalogue",
                "and new; the error against the output's own rounding.", ""]
        out += _table(["adapter", "dtype", "verdicts", "failing: known, new", "median error (u)", "most bits lost",
                       "conformant", "minutes", "report"],
                      [[f"`{r['adapter']['name']}`", r["dtype"], _counts(r), _known(r), _median_u(r), _bits_lost(r),
                        _yes(r), _minutes(r), _link(p, root)] for p, r in low_standard])
        out.append("")
    out += ["## Environments", ""] + _environments(found) + [""]
    return "\n".join(out)


def _median_u(report: dict) -> str:
    values = [c["precision"]["median_u"] for c in report["cases"] if (c.get("precision") or {}).get("median_u") is not None]
    return _fmt(statistics.median(values)) if values else "-"


def _bits_lost(report: dict) -> str:
    value = (report["summary"].get("precision") or {}).get("max_bits_lost")
    return "-" if value is None else f"{value:.2f}"


def _networks_cells(report: dict, path: Path) -> list[str]:
    """The cells of networks_row without its minutes (readme adds conformant, minutes, the link)."""
    cells = [c.strip() for c in networks_row(report, path).strip().strip("|").split(" | ")][:-1]
    cells[0] = f"`{cells[0]}`"
    cells[4] = cells[4].replace("None (", "exact (")  # no estimate: every element exact
    return cells


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("networks", "runs", "readme"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "readme":
        root = Path(argv[1])
        (root / "README.md").write_text(readme(root))
        return 0
    row = networks_row if argv[0] == "networks" else runs_row
    for name in argv[1:]:
        path = Path(name)
        print(row(json.loads(path.read_text()), path))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

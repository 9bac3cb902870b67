"""Hand-built report.json dicts for the renderer tests.

Everything here is written out by hand (no system under test involved): the
summary is recomputed from the case records with this module's own small
tallies, so a renderer that miscounts is caught.
"""
from __future__ import annotations

import copy
from typing import Any

VERDICTS = ("pass", "unsupported", "quality_warning", "waived", "fail", "error", "timeout", "crash")
ORDER = {v: i for i, v in enumerate(VERDICTS)}


def conv2d(**config: Any) -> dict:
    """A normalized-looking Conv2D spec with ``config`` overriding the defaults."""
    base = {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "activation": "linear", "use_bias": True}
    base.update(config)
    return {"class_name": "Conv2D", "config": base}


def cropping1d(cropping: list[int]) -> dict:
    return {"class_name": "Cropping1D", "config": {"cropping": cropping}}


def case(case_id: str, spec: dict, verdicts: dict[str, str], *, ratios: dict | None = None,
         worst: dict | None = None, exception: dict | None = None, message: str = "",
         kind: str = "valid", input_shape: list | None = None, dtype: str = "float32",
         seconds: float = 0.01) -> dict:
    """One case record."""
    return {"id": case_id, "layer": spec["class_name"], "spec": spec,
            "input_shape": input_shape or [1, 6, 6, 1], "kind": kind, "dtype": dtype,
            "verdicts": dict(verdicts), "worst_ratio": dict(ratios or {}), "worst": dict(worst or {}),
            "exception": exception, "message": message, "seconds": seconds}


def _zero() -> dict[str, int]:
    return {v: 0 for v in VERDICTS}


def report(cases: list[dict], *, adapter: str = "mylib", corpus_id: str = "corpus-aaaa",
           profile: str = "smoke", dtype: str = "float32", versions: dict | None = None) -> dict:
    """A complete report around ``cases`` with its summary tallied here."""
    counts = _zero()
    by_category: dict[str, dict[str, int]] = {}
    worst: dict[str, Any] = {}
    for c in cases:
        counts[max(c["verdicts"].values(), key=ORDER.__getitem__)] += 1
        for cat, v in c["verdicts"].items():
            by_category.setdefault(cat, _zero())[v] += 1
        for cat, r in (c.get("worst_ratio") or {}).items():
            if r is not None and (cat not in worst or float(r) > float(worst[cat])):
                worst[cat] = r
    conformant = not any(counts[v] for v in ("fail", "error", "timeout", "crash"))
    return {
        "schema_version": 1, "suite_version": "0.1.0", "corpus_id": corpus_id,
        "profile": profile, "dtype": dtype,
        "adapter": {"name": adapter, "target": f"{adapter}.conformance:Adapter",
                    "versions": versions if versions is not None else {"numpy": "2.4.0", adapter: "1.0"}},
        "platform": {"python": "3.11.7", "system": "Linux", "machine": "x86_64"},
        "started": "2026-11-25T12:00:00Z", "finished": "2026-11-25T12:01:00Z",
        "jobs": 2, "timeout": 60.0,
        "summary": {"conformant": conformant, "cases": len(cases), "counts": counts,
                    "by_category": by_category, "worst_ratio": worst},
        "cases": copy.deepcopy(cases),
    }


OK3 = {"shape": "pass", "output": "pass", "gradient": "pass"}


def mixed_cases() -> list[dict]:
    """A small run with every verdict: Conv2D output fails exactly when padding='same'
    and strides=[2, 2]; one exception cluster; one unsupported; one invalid case accepted."""
    cases = []
    n = 0
    for padding in ("valid", "same"):
        for strides in ([1, 1], [2, 2]):
            for use_bias in (True, False):
                n += 1
                bad = padding == "same" and strides == [2, 2]
                verdicts = {"shape": "pass", "output": "fail" if bad else "pass", "gradient": "pass"}
                ratio = 37.5 + n if bad else 0.25
                cases.append(case(
                    f"Conv2D-{n:012x}", conv2d(padding=padding, strides=strides, use_bias=use_bias),
                    verdicts, ratios={"output": ratio, "gradient": 0.125},
                    worst={"output": {"index": [0, 1, 2, 0], "expected": 1.5, "actual": 1.6, "allowed": 0.001}},
                    message="out differs" if bad else ""))
    for i, k in enumerate((2, 4, 5)):
        cases.append(case(
            f"Conv2D-e{i:011x}", conv2d(kernel_size=[k, k], dilation_rate=[2, 2]),
            {"shape": "error", "output": "error", "gradient": "error"},
            exception={"type": "UnimplementedError",
                       "message": f"dilation {k} not supported for shape (1, {k + 5}, 6, 1) at 0x7f{i}a"},
            message="forward raised UnimplementedError"))
    cases.append(case("Cropping1D-000000000001", cropping1d([1, 1]),
                      {"shape": "unsupported", "output": "unsupported"},
                      message="unsupported: no cropping", input_shape=[1, 5, 2]))
    cases.append(case("Conv2D-inv000000001", conv2d(strides=[0, 0]), {"error_behaviour": "fail"},
                      kind="invalid", message="forward returned a result on a configuration Keras rejects"))
    cases.append(case("Conv2D-inv000000002", conv2d(padding="full"), {"error_behaviour": "pass"},
                      kind="invalid", exception={"type": "ValueError", "message": "bad padding"}))
    return cases


def all_pass_cases() -> list[dict]:
    """Every case passes: the conformant twin of :func:`mixed_cases`."""
    out = []
    for c in mixed_cases():
        c = copy.deepcopy(c)
        c["verdicts"] = {k: "pass" for k in c["verdicts"]}
        c["exception"], c["message"] = None, ""
        c["worst_ratio"] = {k: 0.25 for k in c["worst_ratio"]}
        out.append(c)
    return out

"""Scoring of the training-time arguments: the initializer, regularizer and constraint categories.

**initializer** (``adapter.initialize(spec, input_shape, seed)``): the weights'
names and shapes; the same seed gives the same bits, another seed other values;
constant initializers exactly (the value rounded to the returned dtype);
Orthogonal: ``W^T W = gain^2 I`` (or ``W W^T`` for a wide weight) within a
Householder-QR bound ``gain^2 (8 max(rows, cols) + 8) u``; random ones: every
value inside the exact support (uniform ``[-limit, limit]``, truncated normal
``mean +- 2 sigma``; one rounding of the bound allowed), and a
Kolmogorov-Smirnov test of the values against the exact CDF of the
reference. Its critical value comes from the Dvoretzky-Kiefer-Wolfowitz
inequality with Massart's constant, ``P(sup|F_n - F| > eps) <= 2 exp(-2 n eps^2)``,
which holds for every n: with ``eps = sqrt(ln(2 m / ALPHA) / (2 n))`` for m
random weights in the case, a correct implementation fails a case with
probability at most ALPHA = 1e-6. The values are rounded to the returned
dtype, so the CDF is evaluated at each value plus and minus ``u (|v| + std)``,
which only makes the statistic smaller under the null hypothesis. The number
of draws n is chosen so that a 10% error of the standard deviation (of the
same family, same truncation rule), whose CDF is ``delta`` away from the
right one, is missed with probability at most BETA = 1e-6:
``sqrt(n) (delta - slack) >= sqrt(ln(2 m / ALPHA) / 2) + sqrt(ln(2 / BETA) / 2)``
(about 6.6e4 draws for a normal law in float32). The draws come from the
case's layer with its input channels (kernels) or its filters (bias)
multiplied until the weight has n entries: the same layout, so the same fan
rule, as the case.

**regularizer** (``regularization`` and ``regularization_vjp``): each penalty
and each gradient against :func:`reference.regularization` /
:func:`reference.regularization_vjp`, with forward error bounds (a sum of m
non-negative terms: ``gamma(m + 3)`` relative; the activity penalty also
carries the output's allowed error ``e`` from :mod:`oracle.tolerance`; its
gradient is the output gradient ``dP/dy`` through the layer's VJP, with the
tolerance model's bound plus ``|J|^T |dg|`` for the error ``dg`` of ``dP/dy``).

**constraint** (``constrain``): the constrained weights against
:func:`reference.constrain`; NonNeg and unconstrained weights exactly, norm
constraints within ``(gamma(m) + 10 u + |fl(eps) - eps| / (eps + n))`` of the
result's magnitude (m entries per norm; ``fl(eps)`` Keras's 1e-7 in the dtype).

An adapter without the method gets ``unsupported`` in that category.
"""
from __future__ import annotations

import copy
import functools
import math
from typing import Any, Callable

import numpy as np

from conv_conformance import reference
from conv_conformance.oracle import training_tolerance as bounds
from conv_conformance.vocabulary import TRAINING_CATEGORIES

from . import Unsupported
from .calls import CallText, cast
from .compare import score
from .record import training_applies

__all__ = ["CATEGORIES", "ALPHA", "BETA", "applies", "check_training", "ks_statistic", "ks_critical",
           "draws_needed", "check_sample", "STD_ERROR"]

CATEGORIES = TRAINING_CATEGORIES
#: False-alarm probability of the initializer category per case (a correct implementation).
ALPHA = 1e-6
#: Probability of missing a STD_ERROR error of the standard deviation per random weight.
BETA = 1e-6
#: The relative error of the standard deviation the statistical test always catches.
STD_ERROR = 0.10
_MAX_DRAWS = 2_000_000
applies = training_applies
_u = bounds.unit_roundoff_of


# ------------------------------------------------------------------ statistics

def ks_critical(n: int, tests: int = 1, alpha: float = ALPHA) -> float:
    """DKW-Massart critical value: P(sup|F_n - F| > eps) <= alpha / tests for n i.i.d. draws."""
    return math.sqrt(math.log(2 * tests / alpha) / (2 * n))


def ks_statistic(values: np.ndarray, dist: reference.Distribution, slack: np.ndarray | float = 0.0) -> float:
    """sup |F_n - F|, with F evaluated at each value -+ slack (bounded through the largest
    density: a value rounded from x lies within its slack of x, so this never exceeds the
    statistic of the unrounded draws). ``slack``: a number, or one per value, equal for equal
    values."""
    raw = np.asarray(values, dtype=np.float64).ravel()
    # Equal values take equal slack (a slack is a function of its value), so the order among
    # ties cannot change the statistic and the fastest sort will do.
    order = np.argsort(raw)
    x = raw[order]
    s = np.broadcast_to(np.asarray(slack, dtype=np.float64).ravel(), raw.shape)[order] if np.ndim(slack) \
        else np.full(x.shape, float(slack))
    n = x.size
    i = np.arange(1, n + 1)
    # F(x +- s) within F(x) +- density_max * s (F is Lipschitz): one CDF evaluation instead of two
    f, ds = dist.cdf(x), s * (_max_density(dist) / dist.std if dist.std > 0 else np.inf)
    upper = np.max(i / n - np.minimum(f + ds, 1.0))
    lower = np.max(np.maximum(f - ds, 0.0) - (i - 1) / n)
    return float(max(upper, lower, 0.0))


@functools.lru_cache(maxsize=64)
def _separation(kind: str) -> float:
    """min over a std off by +-STD_ERROR of sup|F - G| (same family, same truncation rule), standardized."""
    grid = np.linspace(-6, 6, 24001)
    out = []
    for f in (1 + STD_ERROR, 1 - STD_ERROR):
        if kind == "uniform":
            a, b = reference.Distribution("uniform", 0, 1, -1, 1), reference.Distribution("uniform", 0, f, -f, f)
        elif kind == "normal":
            a, b = (reference.Distribution("normal", 0, 1, -math.inf, math.inf, 1.0),
                    reference.Distribution("normal", 0, f, -math.inf, math.inf, f))
        else:
            a, b = (reference.Distribution("truncated_normal", 0, 1, -2, 2, 1.0),
                    reference.Distribution("truncated_normal", 0, f, -2 * f, 2 * f, f))
        out.append(float(np.max(np.abs(a.cdf(grid) - b.cdf(grid)))))
    return min(out)


def _max_density(d: reference.Distribution) -> float:
    """The largest density of the law times its std (standardized)."""
    if d.kind == "uniform":
        return 1 / math.sqrt(12.0)
    if d.kind == "normal":
        return 1 / math.sqrt(2 * math.pi)
    return d.std / d.sigma / math.sqrt(2 * math.pi) / (1 - 2 * (1 - float(_phi2())))


@functools.lru_cache(maxsize=1)
def _phi2() -> float:
    return 0.5 * (1 + math.erf(2 / math.sqrt(2)))


def _slack_bound(d: reference.Distribution, u: float) -> float:
    """A bound of how much the rounding slack moves the CDF: 2 * density * u * (max|v| + std)."""
    reach = max(abs(d.low), abs(d.high)) if math.isfinite(d.high) else abs(d.mean) + 7 * d.std
    return 2 * _max_density(d) / d.std * u * (reach + d.std)


def draws_needed(d: reference.Distribution, u: float, tests: int = 1) -> int:
    """Draws for which a STD_ERROR error of the std is missed with probability <= BETA while a right
    law fails with probability <= ALPHA / tests (None-like 0 if rounding leaves no margin)."""
    margin = _separation(d.kind) - _slack_bound(d, u)
    if margin <= 0:
        return 0
    root = math.sqrt(math.log(2 * tests / ALPHA) / 2) + math.sqrt(math.log(2 / BETA) / 2)
    return int(math.ceil((root / margin) ** 2))


def check_sample(values: np.ndarray, d: reference.Distribution, tests: int = 1) -> tuple[bool, str]:
    """(passes, message) of the KS test of draws of one weight against its law (ALPHA / tests)."""
    v = np.asarray(values)
    u = _u(v.dtype)
    x = v.astype(np.float64).ravel()
    slack = u * (np.abs(x) + d.std)
    stat, crit = ks_statistic(x, d, slack), ks_critical(x.size, tests)
    if stat > crit:
        return False, (f"Kolmogorov-Smirnov: sup|F_n - F| = {stat:.4g} over {x.size} draws exceeds the critical "
                       f"value {crit:.4g} (false-alarm probability {ALPHA:g} per case); sample mean {x.mean():.6g}, "
                       f"std {x.std():.6g}, expected mean {d.mean:.6g}, std {d.std:.6g} ({d.kind} on "
                       f"[{d.low:.6g}, {d.high:.6g}])")
    return True, ""


# ------------------------------------------------------------------ variants with many entries

def _channel_axis(spec: dict, shape: list) -> int:
    return 1 if spec["config"].get("data_format") == "channels_first" else len(shape) - 1


def _variant(spec: dict, input_shape: tuple, weight: str, need: int) -> tuple[dict, tuple]:
    """The case's layer with more input channels (kernels) or filters (bias) so that `weight`
    has at least `need` entries; the same layout and initializer."""
    shape = list(input_shape)
    ax = _channel_axis(spec, shape)
    cfg = copy.deepcopy(spec["config"])
    fam = reference.LAYERS[spec["class_name"]].family
    have = int(np.prod(reference.weight_shapes(spec, shape)[weight]))
    if have >= need:
        return spec, tuple(shape)
    if weight == "bias":
        if fam == "depthwise":
            shape[ax] = 1
            cfg["depth_multiplier"] = need
        else:
            shape[ax] = cfg.get("groups", 1)
            if fam == "separable":
                cfg["depth_multiplier"] = 1
            cfg["filters"] = -(-need // cfg.get("groups", 1)) * cfg.get("groups", 1)
    else:
        shape[ax] = shape[ax] * -(-need // have)
    return {"class_name": spec["class_name"], "config": cfg}, tuple(shape)


# ------------------------------------------------------------------ the categories

class _Verdict:
    """One training-time category's verdict, messages and worst ratio; ``call`` describes the
    layer call in failure messages."""

    def __init__(self, call: Any = "") -> None:
        self.verdict, self.messages, self.ratio, self.worst = "pass", [], None, None
        self.call = call

    def fail(self, text: str) -> None:
        self.verdict = "fail"
        self.messages.append(text)

    def compare(self, name: str, actual: Any, expected: Any, allowed: Any) -> None:
        """Score ``actual`` with the one comparison routine (conformance.compare.score); the
        worst ratio over the category's arrays is the category's."""
        c = score(name, actual, expected, allowed, call=self.call)
        if c.ratio is not None and (self.ratio is None or c.ratio > self.ratio):
            self.ratio = c.ratio
            self.worst = {"name": name, **c.worst} if c.worst else None
        if not c.passed:
            self.verdict = "fail"
            self.messages.append(c.message)


def _call(timer: Any, fn: Callable, *args: Any) -> Any:
    return timer.call(fn, *args) if timer is not None else fn(*args)


def _run(v: _Verdict, what: str, fn: Callable, timer: Any, *args: Any) -> Any:
    """fn(*args); an Unsupported or other exception sets the verdict and returns None."""
    try:
        return _call(timer, fn, *args)
    except Unsupported as exc:
        v.verdict = "unsupported"
        v.messages.append(f"{what} unsupported: {exc}")
    except Exception as exc:  # noqa: BLE001 - an adapter's exception is its verdict
        v.verdict = "error"
        v.messages.append(f"{what} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return None


def score_initializer(adapter: Any, spec: dict, input_shape: tuple, seed: int, timer: Any = None) -> _Verdict:
    """The initializer category of one layer configuration."""
    v = _Verdict(CallText(spec, input_shape, None))
    init = getattr(adapter, "initialize", None)
    if init is None:
        v.verdict = "unsupported"
        v.messages.append("initializer unsupported: the adapter has no initialize")
        return v
    seed = int(seed) % (2 ** 31 - 2)
    first = _run(v, "initialize", init, timer, copy.deepcopy(spec), tuple(input_shape), seed)
    if first is None:
        return v
    want = reference.weight_shapes(spec, input_shape)
    got = {k: np.shape(a) for k, a in first.items()}
    if set(got) != set(want) or any(tuple(got[k]) != want[k] for k in want):
        v.fail(f"initialize returned weights {got}, but should return {want}")
        return v
    again = _run(v, "initialize", init, timer, copy.deepcopy(spec), tuple(input_shape), seed)
    if again is None:
        return v
    changed = [k for k in want if np.asarray(first[k]).tobytes() != np.asarray(again[k]).tobytes()]
    if changed:
        v.fail(f"the same seed {seed} gave different weights {changed}")
    dists = reference.initializer_distributions(spec, input_shape)
    random = [k for k in sorted(want) if dists[k].random]
    for name in sorted(want):
        _check_exact(v, name, np.asarray(first[name]), dists[name])
    if random:
        other = _run(v, "initialize", init, timer, copy.deepcopy(spec), tuple(input_shape), seed + 1)
        if other is None:
            return v
        big = [k for k in random if np.size(first[k]) >= 4]
        if big and all(np.array_equal(np.asarray(first[k]), np.asarray(other[k])) for k in big):
            v.fail(f"seeds {seed} and {seed + 1} gave identical weights {big}")
    for name in random:
        _check_law(v, adapter, spec, input_shape, seed, name, np.asarray(first[name]).dtype, len(random), timer)
        if v.verdict in ("error", "unsupported"):
            return v
    return v


def _check_exact(v: _Verdict, name: str, w: np.ndarray, d: reference.Distribution) -> None:
    x = w.astype(np.float64)
    if not np.all(np.isfinite(x)):
        v.fail(f"{name}: {int(np.sum(~np.isfinite(x)))} non-finite initial values")
        return
    u = _u(w.dtype)
    if d.kind == "constant":
        value = float(np.asarray(d.mean, dtype=w.dtype))
        bad = int(np.sum(x != value))
        if bad:
            v.fail(f"{name}: {bad} of {x.size} initial values differ from the constant {d.mean!r} "
                   f"(e.g. {x.ravel()[np.argmax(x.ravel() != value)]!r})")
        return
    if d.kind == "orthogonal":
        rows, cols = reference.initializers.orthogonal_matrix(w.shape)
        m = x.reshape(rows, cols)
        gram = m.T @ m if rows >= cols else m @ m.T
        allowed = bounds.orthogonal_allowed(d.mean, rows, cols, u)
        v.compare(f"{name} Gram matrix", gram, d.mean ** 2 * np.eye(gram.shape[0]), np.full(gram.shape, allowed))
        return
    if math.isfinite(d.high):
        pad = 2 * u * max(abs(d.low), abs(d.high))
        out = (x < d.low - pad) | (x > d.high + pad)
        if out.any():
            v.fail(f"{name}: {int(out.sum())} of {x.size} initial values outside [{d.low:.9g}, {d.high:.9g}] "
                   f"(e.g. {x[out].ravel()[0]!r})")


def _check_law(v: _Verdict, adapter: Any, spec: dict, input_shape: tuple, seed: int, name: str,
               dtype: Any, tests: int, timer: Any) -> None:
    d0 = reference.initializer_distributions(spec, input_shape)[name]
    need = draws_needed(d0, _u(dtype), tests) or _MAX_DRAWS
    need = min(need, _MAX_DRAWS)
    vspec, vshape = _variant(spec, input_shape, name, need)
    d = reference.initializer_distributions(vspec, vshape)[name]
    w = _run(v, "initialize", adapter.initialize, timer, copy.deepcopy(vspec), vshape, seed + 2)
    if w is None:
        return
    values = np.asarray(w[name]).ravel()[:need]
    _check_exact(v, f"{name} (on input {vshape})", values, d)
    ok, text = check_sample(values, d, tests)
    if not ok:
        v.fail(f"{name} (layer built on input {vshape}): {text}")


def score_regularizer(adapter: Any, spec: dict, m: Any, dtype: str, timer: Any = None, *,
                      call: Any = None) -> _Verdict:
    """The regularizer category: penalties and their gradients against the reference."""
    v = _Verdict(call if call is not None else CallText(spec, None, dtype))
    if getattr(adapter, "regularization", None) is None:
        v.verdict = "unsupported"
        v.messages.append("regularizer unsupported: the adapter has no regularization")
        return v
    x = cast(m.inputs, dtype).astype(np.float64)
    w = {k: cast(a, dtype).astype(np.float64) for k, a in m.weights.items()}
    args = lambda: (copy.deepcopy(spec), cast(m.inputs, dtype), {k: cast(a, dtype) for k, a in m.weights.items()})  # noqa: E731
    got = _run(v, "regularization", adapter.regularization, timer, *args())
    if got is None:
        return v
    expected = reference.regularization(spec, x, w)
    u = _u(dtype)
    cfg = spec["config"]
    regs = {wn: cfg[a["regularizer"]] for wn, a in reference.weight_arguments(spec).items() if cfg[a["regularizer"]]}
    extra = {k: float(np.asarray(val)) for k, val in got.items() if k not in expected}
    extra = {k: val for k, val in extra.items() if val != 0}
    if extra:
        v.fail(f"regularization returned penalties {extra} for terms without a regularizer")
    for key, value in expected.items():
        if key not in got:
            v.fail(f"regularization returned no {key!r} penalty; it returned {sorted(got)}")
            continue
        allowed = bounds.penalty_allowed(regs.get(key), w.get(key), u) if key != "activity" \
            else bounds.activity_allowed(cfg["activity_regularizer"], m.expected_output, m.allowed_output, u)
        v.compare(f"penalty[{key!r}]", np.asarray(got[key], dtype=np.float64).reshape(()), np.asarray(value),
                   np.asarray(allowed))
    vjp = getattr(adapter, "regularization_vjp", None)
    if vjp is None:
        if getattr(adapter, "vjp", None) is None:  # forward only: the penalties are all it can give
            v.messages.append("regularization_vjp: the adapter has none and no vjp (gradients not scored)")
        elif v.verdict == "pass":  # the penalties' gradients are part of the category for a gradient adapter
            v.verdict = "unsupported"
            v.messages.append("regularizer unsupported: the adapter computes gradients (vjp) but not the "
                              "penalties' (regularization_vjp)")
        return v
    grads = _run(v, "regularization_vjp", vjp, timer, *args())
    if grads is None:
        return v
    exp_g = reference.regularization_vjp(spec, x, w)
    allowed_g = bounds.regularization_vjp_allowed(spec, x, w, regs, m.expected_output, m.allowed_output, dtype)
    for key, e in exp_g.items():
        if key not in grads:
            v.fail(f"regularization_vjp returned no {key!r} gradient; it returned {sorted(grads)}")
            continue
        v.compare(f"grad[{key!r}]", grads[key], e, allowed_g[key])
    return v


def score_constraint(adapter: Any, spec: dict, m: Any, dtype: str, timer: Any = None, *,
                     call: Any = None) -> _Verdict:
    """The constraint category: the constrained weights against the reference."""
    v = _Verdict(call if call is not None else CallText(spec, None, dtype))
    if getattr(adapter, "constrain", None) is None:
        v.verdict = "unsupported"
        v.messages.append("constraint unsupported: the adapter has no constrain")
        return v
    w = {k: cast(a, dtype).astype(np.float64) for k, a in m.weights.items()}
    got = _run(v, "constrain", adapter.constrain, timer, copy.deepcopy(spec),
               {k: cast(a, dtype) for k, a in m.weights.items()})
    if got is None:
        return v
    expected = reference.constrain(spec, w)
    cfg = spec["config"]
    for name, a in reference.weight_arguments(spec).items():
        if name not in got:
            v.fail(f"constrain returned no {name!r}; it returned {sorted(got)}")
            continue
        v.compare(f"constrained[{name!r}]", got[name], expected[name],
                  bounds.constraint_allowed(cfg[a["constraint"]], w[name], dtype))
    return v


def check_training(adapter: Any, case: Any, m: Any, dtype: str, timer: Any, result: Any, messages: list) -> None:
    """Score the three categories of a valid case of a weighted layer into ``result``."""
    spec = case.spec
    call = CallText(spec, case.input_shape, dtype)
    scored = [("initializer", lambda: score_initializer(adapter, spec, tuple(case.input_shape), case.seed, timer)),
              ("regularizer", lambda: score_regularizer(adapter, spec, m, dtype, timer, call=call)),
              ("constraint", lambda: score_constraint(adapter, spec, m, dtype, timer, call=call))]
    for category, fn in scored:
        try:
            v = fn()
        except Exception as exc:  # noqa: BLE001 - a scoring failure is reported, not raised
            result.verdicts[category] = "error"
            messages.append(f"{category}: {type(exc).__name__}: {exc}")
            continue
        result.verdicts[category] = v.verdict
        if v.ratio is not None:
            result.worst_ratio[category] = v.ratio
            if v.worst is not None:
                result.worst[category] = v.worst
        messages.extend(f"{category}: {t}" for t in v.messages)

"""Deterministic case sets: every layer, every argument value, every pair.

A *case* is a normalized layer spec, an input shape, a kind (``valid`` or
``invalid``) and a seed; :func:`materialize` turns it into arrays, expected
values (from the reference) and allowed errors (from :mod:`oracle.tolerance`).

Each layer's configuration space is a set of *factors* (:func:`domains`):
its arguments, with values in normalized form, plus the pseudo-factor
``shape`` (``min``: the smallest legal spatial lengths, i.e. size-1 dimensions
or a kernel equal to the input under 'valid'; ``odd``/``even`` lengths;
``empty``: a batch of 0, which Keras accepts, at the ``min`` lengths). Case
sets are covering arrays over these factors, built greedily (AETG) from a
seeded generator and filtered by :func:`compatible` (the constraints Keras
puts on argument combinations):

* ``smoke``: every value of every factor of every layer at least once
  (activations spread over the layers; Conv2D takes all of them), and one
  case per layer with a batch of 0;
* ``standard``: every compatible pair of values per layer at least once, and
  every value once more with a batch of 0 (shape ``empty``);
* both also hold the *norm* cases (:data:`_EPSILON_CASES`, 4 in ``smoke``, 8 in ``standard``):
  MaxNorm, MinMaxNorm and UnitNorm weights whose slices have the norms at which the constraint's
  epsilon and bounds decide the result (``meta["weight_norms"]``, applied by :func:`materialize`);
* ``exhaustive``: four standard covering arrays from different seeds;
* ``networks``: every distinct seed-layer configuration of real networks with its real
  input shape (:mod:`oracle.networks`, read from ``oracle/data/networks.json``).

About 10% of each profile are ``invalid`` cases: a valid case mutated into a
configuration Keras rejects (the reference raises InvalidConfig).

Ids are the sha256 of the canonical JSON of (spec, input_shape, kind, seed):
the same on every machine and process; :func:`corpus_id` hashes a whole set.
"""
from __future__ import annotations

import bisect
import copy
import dataclasses
import functools
import hashlib
import json
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from conv_conformance import reference
from conv_conformance.reference import InvalidConfig
from conv_conformance.vocabulary import DTYPES, PROFILES

from . import networks, training_factors
from .case import Case, corpus_id, make_case
from .materialize import Materialized, draw_array, materialize

__all__ = ["PROFILES", "DTYPES", "Case", "Materialized", "case_set", "corpus_id", "materialize",
           "domains", "compatible", "input_shape_for", "NoInputShape", "draw_array", "make_case", "mutations"]

SHAPE_MODES = ("min", "odd", "even", "empty")
_PROFILE_SEEDS = {"smoke": (1,), "standard": (2,), "exhaustive": (3, 4, 5, 6)}

# Cases a profile holds besides its covering arrays: (layer, config, input shape), valid. Kept
# for corners that a pairwise cover meets only by chance and that matter: O1 (docs/divergences.md),
# oneDNN's float32 convolution on AVX-512 with one input channel, strides[0] < strides[1] and an
# output width of 1, returns unwritten memory; of the standard cases that meet that condition
# none showed it, while this one (the shape O1 was found on) does.
_PINNED: dict[str, tuple[tuple[str, dict, tuple[int, ...]], ...]] = {
    "standard": (
        ("DepthwiseConv2D", {"kernel_size": 3, "strides": [1, 2], "depth_multiplier": 2}, (2, 6, 4, 1)),
    ),
}


# Cases whose norm-constrained weight slices have the norms at which a constraint's epsilon or
# bounds decide the result (oracle.materialize rescales each slice to the norms listed per weight,
# in turn over the slices in C order of the axes outside the norm). Drawn weights have entries in
# [0.5, 1), so their norms are never small and a MinMaxNorm never meets its lower bound: there an
# epsilon inside the square root (w / sqrt(sum w^2 + eps)), a MaxNorm that skips the rescaling
# below its bound or a MinMaxNorm that ignores min_value agree with Keras's formula to far below
# float32's resolution; near sqrt(eps) they differ by 6e-4 to 30%, thousands of float32 roundoffs.
_ROOT_EPS = float(np.sqrt(reference.EPSILON))


def _unit_norms() -> list[float]:
    return [_ROOT_EPS * f for f in (0.25, 0.5, 1.0, 2.0, 4.0)] + [1.0]


def _max_norms(top: float) -> list[float]:
    return [_ROOT_EPS / 2, _ROOT_EPS * 2, top / 2, top * (1 - 2.0 ** -6), top, top * (1 + 2.0 ** -6), top * 2]


def _min_max_norms(low: float, top: float) -> list[float]:
    return [_ROOT_EPS / 2, _ROOT_EPS * 2, low / 2, low * (1 - 2.0 ** -6), low, (low + top) / 2, top,
            top * (1 + 2.0 ** -6), top * 2]


def _c(name: str, **config) -> dict:
    return {"class_name": name, "config": config}


_EPSILON_SMOKE: tuple[tuple[str, dict, tuple[int, ...], dict[str, list[float]]], ...] = (
    ("Conv2D", {"filters": 6, "kernel_size": 2, "kernel_constraint": _c("UnitNorm", axis=[0, 1, 2]),
                "bias_constraint": _c("MaxNorm", max_value=0.5, axis=0)},
     (1, 3, 3, 2), {"kernel": _unit_norms(), "bias": [_ROOT_EPS / 2]}),
    ("Conv2D", {"filters": 7, "kernel_size": 2, "kernel_constraint": _c("MaxNorm", max_value=1.0, axis=[0, 1, 2]),
                "bias_constraint": _c("MaxNorm", max_value=0.5, axis=0)},
     (1, 3, 3, 2), {"kernel": _max_norms(1.0), "bias": [0.5 * (1 + 2.0 ** -6)]}),
    ("Conv2D", {"filters": 9, "kernel_size": 2,
                "kernel_constraint": _c("MinMaxNorm", min_value=0.5, max_value=1.0, rate=0.8, axis=[0, 1, 2])},
     (1, 3, 3, 2), {"kernel": _min_max_norms(0.5, 1.0)}),
    ("SeparableConv2D", {"filters": 7, "kernel_size": 2, "depth_multiplier": 3,
                         "depthwise_constraint": _c("UnitNorm", axis=[0, 1]),
                         "pointwise_constraint": _c("MaxNorm", max_value=1.0, axis=[0, 1, 2])},
     (1, 3, 3, 2), {"depthwise_kernel": _unit_norms(), "pointwise_kernel": _max_norms(1.0)}),
)
_EPSILON_CASES: dict[str, tuple] = {
    "smoke": _EPSILON_SMOKE,
    "standard": _EPSILON_SMOKE + (
        ("Conv1D", {"filters": 3, "kernel_size": 3,
                    "kernel_constraint": _c("MinMaxNorm", min_value=0.5, max_value=1.0, rate=1.0, axis=0)},
         (1, 5, 3), {"kernel": _min_max_norms(0.5, 1.0)}),
        ("DepthwiseConv2D", {"kernel_size": 2, "depth_multiplier": 2,
                             "depthwise_constraint": _c("UnitNorm", axis=[0, 1]),
                             "bias_constraint": _c("MaxNorm", max_value=0.5, axis=0)},
         (1, 3, 3, 3), {"kernel": _unit_norms(), "bias": [0.5 * (1 - 2.0 ** -6)]}),
        ("Conv2DTranspose", {"filters": 7, "kernel_size": 2,
                             "kernel_constraint": _c("MaxNorm", max_value=1.0, axis=[0, 1, 3])},
         (1, 2, 2, 2), {"kernel": _max_norms(1.0)}),
        ("Conv3D", {"filters": 6, "kernel_size": 2, "kernel_constraint": _c("UnitNorm", axis=[0, 1, 2, 3])},
         (1, 2, 2, 2, 1), {"kernel": _unit_norms()}),
    ),
}


def _epsilon_case(layer: str, config: dict, shape: tuple[int, ...], norms: dict[str, list[float]]) -> Case:
    """A valid case whose constrained slices get ``norms``: the norms enter its id and seed."""
    spec = reference.normalize({"class_name": layer, "config": config})
    reference.output_shape(spec, shape)  # a configuration Keras rejects is a defect of the table
    base = make_case(spec, shape, "valid")
    canonical = json.dumps({"id": base.id, "weight_norms": norms}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return dataclasses.replace(base, id=f"{layer}-{digest[:12]}", seed=int(digest[12:20], 16),
                               meta={"weight_norms": norms})


# ------------------------------------------------------------ factor domains

def _tuples(rank: int, values: Sequence[int], mixed: Sequence[int] | None) -> tuple:
    out = [[v] * rank for v in values]
    if mixed is not None and rank > 1:
        out.append(list(mixed[:rank]))
    return tuple(out)


def domains(layer: str) -> dict[str, tuple]:
    """Factor name -> the values a case set covers, in normalized form.

    Every argument of the layer, plus ``shape`` (one of ``SHAPE_MODES``).
    """
    lay = _layer(layer)
    r, fam = lay.rank, lay.family
    dom: dict[str, tuple] = {}
    if fam in ("conv", "conv_transpose", "depthwise", "separable"):
        if fam != "depthwise":
            dom["filters"] = (1, 2, 4) if fam == "conv" else (1, 2, 3)
        dom["kernel_size"] = _tuples(r, (1, 2, 3), (3, 1, 2))
        dom["strides"] = _tuples(r, (1, 2, 3), (1, 2, 1))
        dom["padding"] = ("valid", "same", "causal") if (fam == "conv" and r == 1) else ("valid", "same")
        if fam == "conv_transpose":
            dom["output_padding"] = (None,) + _tuples(r, (0, 1, 2), None)
        dom["data_format"] = ("channels_last", "channels_first")
        dom["dilation_rate"] = _tuples(r, (1, 2, 4) if fam != "conv_transpose" else (1, 2), None)
        if fam == "conv":
            dom["groups"] = (1, 2)
        if fam in ("depthwise", "separable"):
            dom["depth_multiplier"] = (1, 2, 3)
        dom["activation"] = reference.ACTIVATIONS
        dom["use_bias"] = (True, False)
        dom.update(training_factors.domains(layer))  # initializers, regularizers, constraints
    elif fam in ("cropping", "zero_padding"):
        key = "cropping" if fam == "cropping" else "padding"
        if r == 1:
            dom[key] = ([0, 0], [1, 0], [0, 2], [2, 1])
        else:
            dom[key] = ([[0, 0]] * r, [[1, 1]] * r, [[1, 0], [0, 2], [2, 1]][:r], [[0, 1], [2, 0], [1, 1]][:r])
        if "data_format" in lay.arguments:
            dom["data_format"] = ("channels_last", "channels_first")
    else:
        dom["size"] = (1, 2, 3) if r == 1 else _tuples(r, (1, 2, 3), (2, 1, 3))
        if "data_format" in lay.arguments:
            dom["data_format"] = ("channels_last", "channels_first")
        if r == 2:
            dom["interpolation"] = reference.INTERPOLATIONS
    dom["shape"] = SHAPE_MODES
    return dom


def compatible(layer: str, assignment: dict[str, Any]) -> bool:
    """False when a (partial) assignment of factor values breaks a rule of Keras
    that no choice of the other factors or of the input shape can repair."""
    fam = _layer(layer).family
    a = assignment
    if not training_factors.compatible(a):
        return False
    strided = a.get("strides") is not None and max(a["strides"]) > 1
    dilated = a.get("dilation_rate") is not None and max(a["dilation_rate"]) > 1
    if fam in ("conv", "conv_transpose") and strided and dilated:
        return False
    if fam == "conv" and "filters" in a and "groups" in a and a["filters"] % a["groups"]:
        return False
    if fam == "conv_transpose" and a.get("output_padding") is not None:
        op = a["output_padding"]
        if "strides" in a and any(p >= s for p, s in zip(op, a["strides"])):
            return False
        if max(op) > 0 and dilated:  # output_padding > 0 needs strides > 1
            return False
    if (a.get("activation") == "glu" and a.get("data_format") == "channels_last"
            and a.get("filters", 2) % 2):
        return False
    if (fam == "conv_transpose" and a.get("activation") == "glu" and a.get("data_format") == "channels_first"
            and all(k in a for k in ("strides", "kernel_size", "padding", "output_padding"))):
        # glu halves the last (spatial) axis; with an even last stride its length has a fixed parity
        s, k, op = a["strides"][-1], a["kernel_size"][-1], a["output_padding"]
        if s % 2 == 0:
            if a["padding"] == "valid":
                last = max(k, s) if op is None else k + op[-1]
            else:
                last = 0 if op is None else k % 2 + op[-1]
            if last % 2:
                return False
    return True


# ------------------------------------------------------------ input shapes

def _minimum_lengths(spec: dict) -> list[int]:
    lay = reference.LAYERS[spec["class_name"]]
    cfg = spec["config"]
    if lay.family in ("conv", "depthwise", "separable") and cfg["padding"] == "valid":
        return [d * (k - 1) + 1 for k, d in zip(cfg["kernel_size"], cfg["dilation_rate"])]
    if lay.family == "cropping":
        pairs = [cfg["cropping"]] if lay.rank == 1 else cfg["cropping"]
        return [a + b + 1 for a, b in pairs]
    return [1] * lay.rank


class NoInputShape(ValueError):
    """input_shape_for found no input shape that makes a configuration valid."""


def input_shape_for(spec: dict, mode: str, rng: np.random.Generator) -> tuple[int, ...]:
    """A small input shape for a normalized spec, its spatial lengths chosen by mode.

    ``min``: the smallest legal lengths; ``odd``/``even``: a few more, with that
    parity; ``empty``: the ``min`` lengths with a batch of 0. Grows lengths until
    Keras accepts the shape (e.g. a transposed
    convolution's output must be non-empty, glu needs an even last axis).
    """
    if mode not in SHAPE_MODES:
        raise ValueError(f"Argument `mode` must be one of {', '.join(map(repr, SHAPE_MODES))}. "
                         f"Received: mode={mode!r}")
    lay = reference.LAYERS[spec["class_name"]]
    cfg = spec["config"]
    batch = 1 + int(rng.integers(2)) if mode != "empty" else 0 * int(rng.integers(2))
    if lay.family == "conv":
        channels = cfg["groups"] * (1 + int(rng.integers(2)))
    else:
        channels = 1 + int(rng.integers(3))
    if (lay.family == "depthwise" and cfg["activation"] == "glu" and cfg["data_format"] == "channels_last"
            and channels * cfg["depth_multiplier"] % 2):
        channels *= 2
    lengths = _minimum_lengths(spec)
    if mode in ("odd", "even"):
        parity = 1 if mode == "odd" else 0
        lengths = [n + 1 + int(rng.integers(3)) for n in lengths]
        lengths = [n if n % 2 == parity else n + 1 for n in lengths]
    first = cfg.get("data_format") == "channels_first"
    for _ in range(40):
        shape = (batch, channels, *lengths) if first else (batch, *lengths, channels)
        try:
            reference.output_shape(spec, shape)
            return shape
        except InvalidConfig as exc:
            if exc.argument == "activation" and first:  # glu: make the last spatial output length even
                lengths[-1] += 1
            elif exc.argument == "activation":
                raise
            else:
                lengths = [n + (2 if mode in ("odd", "even") else 1) for n in lengths]
    raise NoInputShape(f"no input shape found for {spec}: its output length along an axis cannot be "
                       "made what the activation needs (e.g. glu on an axis whose length is always odd)")


# ------------------------------------------------------------ covering arrays

def _covering(layer: str, strength: int, rng: np.random.Generator,
              restrict: dict[str, tuple] | None = None) -> list[dict[str, Any]]:
    """Rows (factor -> value) covering every compatible value (strength 1) or
    pair of values (strength 2) of the layer's factors: greedy AETG."""
    dom = domains(layer) | (restrict or {})
    names = list(dom)
    vals = [dom[n] for n in names]

    def ok(assign: dict[int, int]) -> bool:
        return compatible(layer, {names[f]: vals[f][v] for f, v in assign.items()})

    if strength == 1:
        todo = {((f, v),) for f in range(len(names)) for v in range(len(vals[f])) if ok({f: v})}
    else:
        todo = {((f, a), (g, b)) for f in range(len(names)) for g in range(f + 1, len(names))
                for a in range(len(vals[f])) for b in range(len(vals[g])) if ok({f: a, g: b})}

    def covered(assign: dict[int, int]) -> set:
        items = sorted(assign.items())
        if strength == 1:
            return {(it,) for it in items} & todo
        return {(p, q) for i, p in enumerate(items) for q in items[i + 1:]} & todo

    # For each value, the values it still has to meet (its pairs left in todo): a candidate's gain
    # is how many of them the row holds, a set intersection instead of a pair lookup per factor.
    partners: dict[tuple[int, int], set] = {}
    if strength == 2:
        for p, q in todo:
            partners.setdefault(p, set()).add(q)
            partners.setdefault(q, set()).add(p)
    empty: set = set()

    rows = []
    pool = sorted(todo)  # todo in order, kept so as todo shrinks
    while todo:
        best, best_gain = None, -1
        for _attempt in range(12):
            start = pool[int(rng.integers(len(pool)))]
            assign = dict(start)
            if not ok(assign):
                continue
            rest = [f for f in range(len(names)) if f not in assign]
            rng.shuffle(rest)
            for f in rest:
                options = []
                for v in rng.permutation(len(vals[f])):
                    trial = assign | {f: int(v)}
                    if not ok(trial):
                        continue
                    gain = len(partners.get((f, int(v)), empty).intersection(assign.items())) \
                        if strength == 2 else (((f, int(v)),) in todo)
                    options.append((gain, int(v)))
                if not options:
                    break
                assign[f] = max(options, key=lambda o: o[0])[1]
            else:
                gain = len(covered(assign))
                if gain > best_gain:
                    best, best_gain = assign, gain
                if _attempt >= 2 and best is not None:
                    break
        if best is None:
            raise RuntimeError(f"{layer}: the covering array could not complete {start}")
        done = covered(best)
        todo -= done
        for item in done:
            del pool[bisect.bisect_left(pool, item)]
        for p, q in done if strength == 2 else ():
            partners[p].discard(q)
            partners[q].discard(p)
        rows.append({names[f]: vals[f][v] for f, v in sorted(best.items())})
    return rows


def _valid_case(layer: str, row: dict[str, Any], rng: np.random.Generator) -> Case:
    config = {k: copy.deepcopy(v) for k, v in row.items() if k != "shape"}
    spec = reference.normalize({"class_name": layer, "config": config})
    return make_case(spec, input_shape_for(spec, row["shape"], rng), "valid")


# ------------------------------------------------------------ invalid cases

def _conv_mutations(lay) -> list[tuple[str, Callable]]:
    r, fam = lay.rank, lay.family
    out = [
        ("padding='full'", lambda c, s: (c | {"padding": "full"}, s)),
        ("strides=0", lambda c, s: (c | {"strides": 0}, s)),
        ("kernel_size=0", lambda c, s: (c | {"kernel_size": 0}, s)),
        ("kernel_size of the wrong length", lambda c, s: (c | {"kernel_size": [2] * (r + 1)}, s)),
        ("dilation_rate=0", lambda c, s: (c | {"dilation_rate": 0}, s)),
        ("unknown activation", lambda c, s: (c | {"activation": "swishy"}, s)),
        ("unknown data_format", lambda c, s: (c | {"data_format": "channels_middle"}, s)),
        ("glu with an odd output channel count",
         lambda c, s: (c | {"activation": "glu", "data_format": "channels_last"}
                       | ({"filters": 3, "groups": 1} if fam == "conv" else {"filters": 3} if fam != "depthwise"
                          else {"depth_multiplier": 1}),
                       _channels_last(c, s, 1 if fam == "depthwise" else None))),
    ]
    if not (fam == "conv" and r == 1):
        out.append(("padding='causal'", lambda c, s: (c | {"padding": "causal"}, s)))
    if fam != "conv_transpose":
        out.append(("kernel larger than the input under 'valid'",
                    lambda c, s: (c | {"padding": "valid", "kernel_size": 3, "dilation_rate": 1},
                                  _spatial(c, s, 2))))
    if fam in ("conv", "conv_transpose"):
        out.append(("strides > 1 with dilation_rate > 1",
                    lambda c, s: (c | {"strides": 2, "dilation_rate": 2}
                                  | ({"output_padding": None} if fam == "conv_transpose" else {}), s)))
    if fam != "depthwise":
        out.append(("filters=0", lambda c, s: (c | {"filters": 0} | ({"groups": 1} if fam == "conv" else {}), s)))
    if fam in ("depthwise", "separable"):
        out.append(("depth_multiplier=0", lambda c, s: (c | {"depth_multiplier": 0}, s)))
    if fam == "conv":
        out.append(("groups not dividing filters", lambda c, s: (c | {"filters": 3, "groups": 2}, s)))
        out.append(("groups not dividing the input channels",
                    lambda c, s: (c | {"filters": 4, "groups": 4}, _with_channels(c, s, 2))))
    if fam == "conv_transpose":
        out.append(("output_padding equal to strides",
                    lambda c, s: (c | {"strides": 2, "dilation_rate": 1, "output_padding": 2}, s)))
    return out


def _channels_axis(c: dict, shape: list) -> int:
    return 1 if c.get("data_format") == "channels_first" else len(shape) - 1


def _with_channels(c: dict, shape, n: int) -> list:
    s = list(shape)
    s[_channels_axis(c, s)] = n
    return s


def _channels_last(c: dict, shape, n: int | None) -> list:
    s = list(shape)
    ch = s[_channels_axis(c, s)]
    spatial = [v for i, v in enumerate(s[1:], 1) if i != _channels_axis(c, s)]
    return [s[0], *spatial, ch if n is None else n]


def _spatial(c: dict, shape, n: int) -> list:
    s = list(shape)
    ax = _channels_axis(c, s)
    return [v if i in (0, ax) else n for i, v in enumerate(s)]


def mutations(layer: str) -> list[tuple[str, Callable[[dict, list], tuple[dict, list]]]]:
    """(description, mutate) pairs: mutate(config, input_shape) -> a configuration
    and shape Keras rejects, derived from a valid one."""
    lay = _layer(layer)
    fam, r = lay.family, lay.rank
    if fam in ("conv", "conv_transpose", "depthwise", "separable"):
        return _conv_mutations(lay)
    out: list = []
    if fam == "cropping":
        out.append(("cropping as large as the input",
                    lambda c, s: (c | {"cropping": [2, 2] if r == 1 else [[2, 2]] * r}, _spatial(c, s, 4))))
        out.append(("negative cropping", lambda c, s: (c | {"cropping": -1}, s)))
    if fam == "zero_padding":
        out.append(("negative padding", lambda c, s: (c | {"padding": -1}, s)))
        out.append(("padding with the wrong length", lambda c, s: (c | {"padding": [1, 1, 1]}, s)))
    if fam == "upsampling":
        out.append(("size=0", lambda c, s: (c | {"size": 0}, s)))
    if r > 1:
        out.append(("unknown data_format", lambda c, s: (c | {"data_format": "channels_middle"}, s)))
    if "interpolation" in lay.arguments:
        out.append(("unknown interpolation", lambda c, s: (c | {"interpolation": "cubic"}, s)))
    return out


def _rejected(spec: dict, shape: Sequence[int]) -> bool:
    try:
        reference.output_shape(spec, shape)
    except InvalidConfig:
        return True
    return False


def _invalid_cases(layer: str, valid: list[Case], count: int, rng: np.random.Generator) -> list[Case]:
    muts = mutations(layer)
    order = [muts[i] for i in rng.permutation(len(muts))]
    out: list[Case] = []
    for i in range(count):
        _, mutate = order[i % len(order)]
        base = valid[int(rng.integers(len(valid)))]
        config, shape = mutate(copy.deepcopy(base.spec["config"]), list(base.input_shape))
        spec = {"class_name": layer, "config": config}
        if _rejected(spec, shape):
            out.append(make_case(spec, shape, "invalid"))
    return out


# ------------------------------------------------------------ case sets

def _layer(name: str):
    if name not in reference.LAYERS:
        raise ValueError(f"Unknown layer {name!r}. Available layers: {', '.join(sorted(reference.LAYERS))}")
    return reference.LAYERS[name]


@functools.lru_cache(maxsize=None)
def _layer_cases(profile: str, layer: str) -> tuple[Case, ...]:
    index = sorted(reference.LAYERS).index(layer)
    out: dict[str, Case] = {}
    for seed in _PROFILE_SEEDS[profile]:
        rng = np.random.default_rng([seed, index])
        nonempty = {"shape": tuple(m for m in SHAPE_MODES if m != "empty")}
        if profile == "smoke":
            restrict = nonempty
            if layer != "Conv2D" and "activation" in _layer(layer).arguments:
                acts = reference.ACTIVATIONS
                restrict = nonempty | {"activation": tuple(acts[(index * 3 + i) % len(acts)] for i in range(3))}
            rows = _covering(layer, 1, rng, restrict)
            rows.append(rows[0] | {"shape": "empty"})  # one batch of 0 per layer
        else:
            rows = _covering(layer, 2, rng, nonempty)
            rows += _covering(layer, 1, rng, {"shape": ("empty",)})  # every value once at batch 0
        valid = [_valid_case(layer, row, rng) for row in rows]
        count = 1 if profile == "smoke" else max(2, round(len(valid) / 9))
        for case in valid + _invalid_cases(layer, valid, count, rng):
            out.setdefault(case.id, case)
    for name, config, shape in _PINNED.get(profile, ()):
        if name == layer:
            case = make_case(reference.normalize({"class_name": name, "config": config}), shape, "valid")
            out.setdefault(case.id, case)
    for name, config, shape, norms in _EPSILON_CASES.get(profile, ()):
        if name == layer:
            case = _epsilon_case(name, copy.deepcopy(config), shape, copy.deepcopy(norms))
            out.setdefault(case.id, case)
    return tuple(out.values())


def case_set(profile: str, *, layers: Iterable[str] | None = None) -> list[Case]:
    """The cases of a profile (all layers, or those named), in a stable order."""
    if profile not in PROFILES:
        raise ValueError(f"Argument `profile` must be one of {', '.join(map(repr, PROFILES))}. "
                         f"Received: profile={profile!r}")
    names = sorted(reference.LAYERS) if layers is None else list(layers)
    for name in names:
        _layer(name)
    if profile == "networks":  # real networks' layers, read from oracle/data/networks.json
        return [c for c in networks.cases() if c.layer in names]
    return [c for name in names for c in _layer_cases(profile, name)]

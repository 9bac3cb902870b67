"""The training-time arguments as factors of the case sets' covering arrays.

Each weighted layer gets one factor per argument (``kernel_initializer`` ...,
``activity_regularizer``, ``bias_constraint``), its values in normalized form:

* weight initializers: the default GlorotUniform and two more, taken in turn
  from :data:`INITIALIZERS` (15 values) so that the layers together cover every
  one (the values a layer covers are listed by :func:`domains`);
* the bias initializer: Zeros (the default), GlorotUniform (what ``None`` means)
  and one more in turn;
* regularizers: none and two of L1, L2, L1L2 in turn (bias: none, L2);
* constraints: none and two in turn of NonNeg, MaxNorm over the axes of one
  output unit of the layout (Conv ``[0..N]``, ConvTranspose ``[0..N-1, N+1]``,
  depthwise ``[0..N-1]``), and UnitNorm over the same axes or MinMaxNorm with
  Keras's default ``axis=0``; bias: none, NonNeg, MaxNorm.

Three values per factor keep the standard profile's pairs near the size the
31 activations already impose.
"""
from __future__ import annotations

from typing import Any

from conv_conformance import reference
from conv_conformance.reference.constraints import normalize_constraint
from conv_conformance.reference.initializers import normalize_initializer
from conv_conformance.reference.regularizers import normalize_regularizer

__all__ = ["INITIALIZERS", "BIAS_INITIALIZERS", "domains", "compatible"]


def _i(v: Any) -> dict:
    return normalize_initializer("", "", v)


def _vs(scale: float, mode: str, distribution: str) -> dict:
    return _i({"class_name": "VarianceScaling", "config": {"scale": scale, "mode": mode,
                                                           "distribution": distribution}})


#: The initializers the case sets cover on kernels (the first is the default).
INITIALIZERS = (
    _i("glorot_uniform"), _i("glorot_normal"), _i("he_normal"), _i("he_uniform"), _i("lecun_normal"),
    _i("lecun_uniform"), _vs(0.5, "fan_out", "untruncated_normal"), _vs(2.0, "fan_avg", "uniform"),
    _i("random_normal"), _i("random_uniform"),
    _i({"class_name": "TruncatedNormal", "config": {"mean": 0.1, "stddev": 0.2}}),
    _i("zeros"), _i("ones"), _i({"class_name": "Constant", "config": {"value": 0.5}}),
    _i({"class_name": "Orthogonal", "config": {"gain": 1.5}}),
)
#: Besides Zeros and GlorotUniform, the bias initializers taken in turn.
BIAS_INITIALIZERS = (_i("random_normal"), _i("he_uniform"), _i({"class_name": "Constant", "config": {"value": 0.5}}),
                     _i("ones"), _i("truncated_normal"), _i("lecun_normal"), _i("random_uniform"))
_REGULARIZERS = (None, normalize_regularizer("", "", {"class_name": "L1", "config": {"l1": 0.01}}),
                 normalize_regularizer("", "", {"class_name": "L2", "config": {"l2": 0.02}}),
                 normalize_regularizer("", "", {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.03}}))
_WEIGHTED = ("conv", "conv_transpose", "depthwise", "separable")


def _in_turn(values: tuple, turn: int) -> tuple:
    """The first value (the default) and two of the other three, a different pair in turn."""
    rest = values[1:]
    return (values[0],) + tuple(rest[(turn + k) % len(rest)] for k in range(2))


def _unit_axes(family: str, prefix: str, rank: int) -> list[int]:
    """The kernel axes of one output unit (the norm a user means) for a layout."""
    if prefix == "depthwise":
        return list(range(rank))
    if family == "conv_transpose":
        return list(range(rank)) + [rank + 1]
    return list(range(rank + 1))


def domains(layer: str) -> dict[str, tuple]:
    """Factor -> values (normalized) of the training-time arguments of a layer ({} without weights)."""
    lay = reference.LAYERS[layer]
    if lay.family not in _WEIGHTED:
        return {}
    weighted = sorted(n for n, v in reference.LAYERS.items() if v.family in _WEIGHTED)
    turn = weighted.index(layer)
    prefixes = [a[: -len("_initializer")] for a in reference.training_arguments(lay.family)
                if a.endswith("_initializer")]
    dom: dict[str, tuple] = {}
    for j, prefix in enumerate(prefixes):
        if prefix == "bias":
            dom["bias_initializer"] = (INITIALIZERS[11], INITIALIZERS[0],
                                       BIAS_INITIALIZERS[turn % len(BIAS_INITIALIZERS)])
        else:
            start = (2 * (2 * turn + j)) % (len(INITIALIZERS) - 1)
            dom[f"{prefix}_initializer"] = (INITIALIZERS[0],) + tuple(
                INITIALIZERS[1 + (start + k) % (len(INITIALIZERS) - 1)] for k in range(2))
    for j, prefix in enumerate(prefixes):
        dom[f"{prefix}_regularizer"] = _in_turn(_REGULARIZERS, turn + j) if prefix != "bias" \
            else (None, _REGULARIZERS[2])
    dom["activity_regularizer"] = _in_turn(_REGULARIZERS, turn + 1)
    for j, prefix in enumerate(prefixes):
        if prefix == "bias":
            dom["bias_constraint"] = (None, normalize_constraint("", "", "non_neg"),
                                      normalize_constraint("", "", {"class_name": "MaxNorm",
                                                                    "config": {"max_value": 0.5, "axis": 0}}))
            continue
        axes = _unit_axes(lay.family, prefix, lay.rank)
        last = ({"class_name": "UnitNorm", "config": {"axis": axes}} if (turn + j) % 2 else
                {"class_name": "MinMaxNorm", "config": {"min_value": 0.5, "max_value": 1.0, "rate": 0.8, "axis": 0}})
        dom[f"{prefix}_constraint"] = _in_turn((None, normalize_constraint("", "", "non_neg"),
                                                normalize_constraint("", "", {"class_name": "MaxNorm",
                                                                              "config": {"max_value": 1.0,
                                                                                         "axis": axes}}),
                                                normalize_constraint("", "", last)), turn + j)
    return dom


def compatible(assignment: dict[str, Any]) -> bool:
    """Without a bias, the bias arguments stay at their defaults (any other value is not a
    configuration of its own: nothing uses it)."""
    if assignment.get("use_bias", True) is False:
        return (assignment.get("bias_initializer", INITIALIZERS[11]) == INITIALIZERS[11]
                and assignment.get("bias_regularizer") is None and assignment.get("bias_constraint") is None)
    return True


# Forms a user writes, per kind: identifiers Keras 3 resolves, and configs with some keys given.
_INIT_FORMS = ("glorot_uniform", "GlorotNormal", "he_normal", "HeUniform", "lecun_normal", "lecun_uniform",
               "random_normal", "uniform", "zeros", "ones", "orthogonal", None,
               {"class_name": "TruncatedNormal", "config": {"stddev": 0.1}},
               {"class_name": "VarianceScaling", "config": {"scale": 0.3, "mode": "fan_avg", "distribution": "Normal"}},
               {"class_name": "Constant", "config": {"value": -0.25}})
_REG_FORMS = (None, "l1", "l2", "L1L2", "l1l2", {"class_name": "L1L2", "config": {"l1": 0.002}},
              {"class_name": "L2", "config": {"l2": 0.1}})
_CON_FORMS = (None, "non_neg", "unit_norm", "max_norm", "MinMaxNorm")


def draw_arguments(draw: Any, layer: str) -> dict[str, Any]:
    """Training-time arguments of a layer in accepted raw forms (for Hypothesis strategies:
    ``draw`` is a strategy's draw; each argument present or absent)."""
    from hypothesis import strategies as st

    lay = reference.LAYERS[layer]
    out: dict[str, Any] = {}
    for arg in reference.training_arguments(lay.family):
        if not draw(st.booleans()):
            continue
        if arg.endswith("_initializer"):
            forms = [f for f in _INIT_FORMS if not (arg == "bias_initializer" and f == "orthogonal")]
            out[arg] = draw(st.sampled_from(forms))
        elif arg.endswith("_regularizer"):
            out[arg] = draw(st.sampled_from(_REG_FORMS))
        else:
            form = draw(st.sampled_from(_CON_FORMS))
            if form in ("unit_norm", "max_norm", "MinMaxNorm") and draw(st.booleans()):
                ndim = 1 if arg == "bias_constraint" else lay.rank + 2
                axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
                form = {"class_name": form, "config": {"axis": axes}}
            out[arg] = form
    return out

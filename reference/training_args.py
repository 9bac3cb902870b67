"""Which training-time arguments each layer family takes, and their normalization.

Initializers, regularizers and constraints arrive in Keras's serialization format; this module
names the arguments per family (Keras 3's constructor order), fills in defaults and checks each
one, raising InvalidConfig where Keras rejects it.
"""
from __future__ import annotations

from typing import Any

from .constraints import norm_axes, normalize_constraint
from .errors import InvalidConfig
from .initializers import normalize_initializer
from .regularizers import normalize_regularizer

__all__ = ["KINDS", "PREFIXES", "WEIGHT_NAMES", "training_arguments", "normalize_training"]

KINDS = ("initializer", "regularizer", "constraint")
_DEFAULT_INIT = {"kernel": "GlorotUniform", "depthwise": "GlorotUniform", "pointwise": "GlorotUniform",
                 "bias": "Zeros"}
PREFIXES = {"conv": ("kernel", "bias"), "conv_transpose": ("kernel", "bias"),
             "depthwise": ("depthwise", "bias"), "separable": ("depthwise", "pointwise", "bias")}
WEIGHT_NAMES = {"conv": {"kernel": "kernel"}, "conv_transpose": {"kernel": "kernel"},
           "depthwise": {"depthwise": "kernel"},
           "separable": {"depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel"}}


def training_arguments(family: str) -> tuple[str, ...]:
    """The training-time argument names of a layer family, in Keras 3's constructor order."""
    p = PREFIXES.get(family)
    if p is None:
        return ()
    return (tuple(f"{x}_initializer" for x in p) + tuple(f"{x}_regularizer" for x in p)
            + ("activity_regularizer",) + tuple(f"{x}_constraint" for x in p))


# Defaults per argument (fresh copies made on each normalize).
_INIT_DEFAULTS = {name: {"class_name": cls, "config": normalize_initializer("", "", cls)["config"]}
                  for name, cls in _DEFAULT_INIT.items()}


_MEMO: dict = {}


def _memo(fn: Any, layer: str, arg: str, value: Any) -> Any:
    """fn(layer, arg, value), remembered for values made of hashable scalars (normalize runs on
    every spec the suite touches); a fresh copy each time."""
    try:
        key = (fn, layer, arg, value if not isinstance(value, dict) else
               (value.get("class_name"), tuple(sorted((k, type(v).__name__, v)
                                                      for k, v in (value.get("config") or {}).items()))))
        hit = _MEMO.get(key)
    except TypeError:  # a list inside (axes): not hashable
        return fn(layer, arg, value)
    if hit is None:
        hit = fn(layer, arg, value)
        if len(_MEMO) < 4096:
            _MEMO[key] = hit
    return {"class_name": hit["class_name"], "config": dict(hit["config"])}


def normalize_training(layer: Any, config: dict, out: dict) -> None:
    """Fill ``out`` with the training-time arguments of ``layer`` (a ``shapes.Layer``), normalized (InvalidConfig if Keras
    rejects one). An absent initializer is the layer's default (glorot_uniform, zeros for the
    bias); an explicit null initializer is GlorotUniform (Keras's add_weight default); absent
    regularizers and constraints are null."""
    L = layer.name
    for prefix in PREFIXES.get(layer.family, ()):
        arg = f"{prefix}_initializer"
        if arg in config:
            out[arg] = _memo(normalize_initializer, L, arg, config[arg])
            if prefix == "bias" and out[arg]["class_name"] == "Orthogonal":
                raise InvalidConfig(L, arg, "cannot be Orthogonal: it initializes weights of rank >= 2 and a "
                                    "bias has rank 1 (Keras raises ValueError at build)", config[arg])
        else:
            d = _INIT_DEFAULTS[prefix]
            out[arg] = {"class_name": d["class_name"], "config": dict(d["config"])}
    for prefix in PREFIXES.get(layer.family, ()) + ("activity",):
        arg = f"{prefix}_regularizer"
        v = config.get(arg)
        out[arg] = None if v is None else _memo(normalize_regularizer, L, arg, v)
    for prefix in PREFIXES.get(layer.family, ()):
        arg = f"{prefix}_constraint"
        v = config.get(arg)
        out[arg] = None if v is None else normalize_constraint(L, arg, v)
        if out[arg] is not None and "axis" in out[arg]["config"]:
            ndim = 1 if prefix == "bias" else layer.rank + 2
            try:
                norm_axes(out[arg], ndim)
            except InvalidConfig:
                raise InvalidConfig(L, f"{arg}.axis", f"must be distinct axes of the rank-{ndim} {prefix} weight "
                                    f"(in [-{ndim}, {ndim - 1}]; Keras fails at the first optimizer step)",
                                    out[arg]["config"]["axis"]) from None

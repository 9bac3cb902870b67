"""Keras 3's weight initializers on convolution weights: fans, exact distributions, a sampler.

An initializer is normalized (by :func:`normalize_initializer`, which
:func:`reference.normalize` calls) to Keras 3's serialization,
``{"class_name": "GlorotUniform", "config": {"seed": None, "input_axes": None,
"output_axes": None}}``, every config key explicit.

Fans (Keras ``compute_fans``; conv layers never pass ``input_axes``/``output_axes``):
rank 1 ``fan_in = fan_out = shape[0]``; rank >= 3 ``rf = prod(shape[:-2])``,
``fan_in = rf*shape[-2]``, ``fan_out = rf*shape[-1]``. Per kernel layout:

============================  ===================  ==============  ================
weight                         shape                fan_in          fan_out
============================  ===================  ==============  ================
Conv kernel                    (k..., C/g, F)       rf*C/g          rf*F
ConvTranspose kernel           (k..., F, C)         rf*F            rf*C
Depthwise kernel               (k..., C, M)         rf*C            rf*M
Separable pointwise kernel     (1..., C*M, F)       C*M             F
bias                           (F,)                 F               F
============================  ===================  ==============  ================

VarianceScaling: ``s = scale / max(1, n)`` with ``n`` the mode's fan
(``fan_avg = (fan_in + fan_out)/2``); ``uniform``: ``U[-sqrt(3s), sqrt(3s)]``;
``untruncated_normal``: ``N(0, sqrt(s))``; ``truncated_normal``: ``N(0, sigma)``
with ``sigma = sqrt(s)/0.87962566103423978`` truncated to ``[-2 sigma, 2 sigma]``,
whose standard deviation is ``sqrt(s)``. Glorot/He/Lecun are its presets.
TruncatedNormal(mean, stddev) has no correction constant (std ``0.8796*stddev``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidConfig, known_config, serialized_object

__all__ = ["INITIALIZERS", "TRUNCATION_STD", "Distribution", "normalize_initializer", "fans",
           "distribution", "sample", "orthogonal_matrix"]

#: Standard deviation of N(0, 1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
TRUNCATION_STD = 0.87962566103423978

_VS_KEYS = {"seed": None, "input_axes": None, "output_axes": None}
#: Keras 3 class name -> its config keys and defaults, in Keras's get_config order.
INITIALIZERS: dict[str, dict[str, Any]] = {
    "Zeros": {},
    "Ones": {},
    "Constant": {"value": 0.0},
    "RandomNormal": {"seed": None, "mean": 0.0, "stddev": 0.05},
    "TruncatedNormal": {"seed": None, "mean": 0.0, "stddev": 0.05},
    "RandomUniform": {"seed": None, "minval": -0.05, "maxval": 0.05},
    "VarianceScaling": {"seed": None, "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal",
                        "input_axes": None, "output_axes": None},
    "GlorotUniform": dict(_VS_KEYS), "GlorotNormal": dict(_VS_KEYS),
    "HeUniform": dict(_VS_KEYS), "HeNormal": dict(_VS_KEYS),
    "LecunUniform": dict(_VS_KEYS), "LecunNormal": dict(_VS_KEYS),
    "Orthogonal": {"seed": None, "gain": 1.0},
}
# (scale, mode, distribution) of the VarianceScaling presets (Keras 3 and Keras 2 agree).
_PRESETS = {
    "GlorotUniform": (1.0, "fan_avg", "uniform"), "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
    "HeUniform": (2.0, "fan_in", "uniform"), "HeNormal": (2.0, "fan_in", "truncated_normal"),
    "LecunUniform": (1.0, "fan_in", "uniform"), "LecunNormal": (1.0, "fan_in", "truncated_normal"),
}
_RANK2_ONLY = ("Identity", "IdentityInitializer")


def _snake(name: str) -> str:
    """Keras's `to_snake_case` for these class names (GlorotUniform -> glorot_uniform)."""
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


# Every identifier `keras.initializers.get` resolves to one of the classes above.
_ALIASES = {**{n: n for n in INITIALIZERS}, **{_snake(n): n for n in INITIALIZERS},
            "normal": "RandomNormal", "uniform": "RandomUniform", "zero": "Zeros", "one": "Ones",
            "OrthogonalInitializer": "Orthogonal"}


def _number(layer: str, arg: str, key: str, value: Any, rule: str = "must be a finite number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidConfig(layer, f"{arg}.{key}", rule, value)
    return float(value)


def _axes(layer: str, arg: str, key: str, value: Any) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and all(isinstance(a, int) and not isinstance(a, bool) for a in value):
        return list(value)
    raise InvalidConfig(layer, f"{arg}.{key}", "must be null or a list of integer axes", value)


def _config_value(layer: str, arg: str, cls: str, key: str, value: Any) -> Any:
    if key == "seed":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise InvalidConfig(layer, f"{arg}.seed", "must be null or an integer (a SeedGenerator is not "
                            "serializable in a spec)", value)
    if key in ("input_axes", "output_axes"):
        return _axes(layer, arg, key, value)
    if key == "scale":
        v = _number(layer, arg, key, value, "must be a finite number > 0 (Keras: 'must be positive float')")
        if v <= 0:
            raise InvalidConfig(layer, f"{arg}.scale", "must be a finite number > 0 (Keras: 'must be "
                                "positive float')", value)
        return v
    if key == "mode":
        if value not in ("fan_in", "fan_out", "fan_avg"):
            raise InvalidConfig(layer, f"{arg}.mode", "must be one of 'fan_in', 'fan_out', 'fan_avg'", value)
        return value
    if key == "distribution":
        d = value.lower() if isinstance(value, str) else value
        d = "truncated_normal" if d == "normal" else d
        if d not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise InvalidConfig(layer, f"{arg}.distribution", "must be one of 'uniform', 'truncated_normal', "
                                "'untruncated_normal' (or 'normal', read as 'truncated_normal'; any case)", value)
        return d
    if key == "stddev":
        v = _number(layer, arg, key, value, "must be a finite number >= 0 (the suite covers no negative stddev)")
        if v < 0:
            raise InvalidConfig(layer, f"{arg}.stddev", "must be a finite number >= 0 (the suite covers no "
                                "negative stddev)", value)
        return v
    return _number(layer, arg, key, value)


def normalize_initializer(layer: str, arg: str, value: Any) -> dict:
    """An initializer argument in Keras 3's serialization, every config key explicit.

    ``None`` is Keras's ``add_weight(initializer=None)``: GlorotUniform (not
    zeros, whatever the docstring of ``bias_initializer`` says). Identity
    raises InvalidConfig: it needs a rank-2 weight, and a conv kernel has rank
    >= 3, a bias rank 1.
    """
    if value is None:
        return {"class_name": "GlorotUniform", "config": dict(_VS_KEYS)}
    name, config = serialized_object(layer, arg, value, "initializer")
    if name in _RANK2_ONLY or name == "identity":
        raise InvalidConfig(layer, arg, "cannot be Identity: Identity initializes rank-2 weights only, and "
                            "a convolution kernel has rank >= 3 and a bias rank 1", value)
    cls = _ALIASES.get(name)
    if cls is None:
        raise InvalidConfig(layer, arg, f"must name one of the initializers {sorted(INITIALIZERS)} "
                            "(or their snake_case names)", value)
    defaults = INITIALIZERS[cls]
    config = known_config(layer, arg, cls, config, defaults, value)
    out = {k: _config_value(layer, arg, cls, k, config.get(k, d)) for k, d in defaults.items()}
    if cls == "RandomUniform" and out["minval"] > out["maxval"]:
        raise InvalidConfig(layer, f"{arg}.minval", f"must be <= maxval={out['maxval']} (the suite covers "
                            "no reversed interval)", out["minval"])
    return {"class_name": cls, "config": out}


# ------------------------------------------------------------------ fans

def fans(shape: tuple[int, ...], input_axes: list[int] | None = None,
         output_axes: list[int] | None = None) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape, as Keras 3's ``compute_fans``."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return int(np.prod([shape[a] for a in input_axes])), int(np.prod([shape[a] for a in output_axes]))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    rf = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf


# ------------------------------------------------------------------ distributions

def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, float64, elementwise (math.erf)."""
    z = np.asarray(x, dtype=np.float64) / math.sqrt(2.0)
    return 0.5 * (1.0 + np.fromiter(map(math.erf, z.ravel().tolist()), np.float64, count=z.size).reshape(z.shape))


@dataclass(frozen=True)
class Distribution:
    """The law of every entry of an initialized weight.

    ``kind``: ``constant`` (every entry equals ``mean``), ``uniform``,
    ``normal``, ``truncated_normal`` (``sigma`` the pre-truncation scale,
    truncated to ``mean +- 2 sigma``), or ``orthogonal`` (not i.i.d.: the
    weight reshaped to ``(prod(shape[:-1]), shape[-1])`` has orthonormal
    columns, or rows when it is wide, times ``gain`` = ``mean``).
    ``low``/``high``: the support; ``std``: the entries' standard deviation.
    """

    kind: str
    mean: float
    std: float
    low: float
    high: float
    sigma: float = 0.0

    def cdf(self, x: Any) -> np.ndarray:
        """P(entry <= x), float64 (continuous kinds only)."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "uniform":
            if self.high == self.low:
                return (x >= self.low).astype(np.float64)
            return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)
        if self.kind == "normal":
            return _phi((x - self.mean) / self.sigma) if self.sigma > 0 else (x >= self.mean).astype(np.float64)
        if self.kind == "truncated_normal":
            if self.sigma == 0:
                return (x >= self.mean).astype(np.float64)
            lo = _phi(np.float64(-2.0))
            t = np.clip((x - self.mean) / self.sigma, -2.0, 2.0)
            return (_phi(t) - lo) / (1.0 - 2.0 * lo)
        raise ValueError(f"Distribution.cdf: kind {self.kind!r} has no CDF (constant or orthogonal)")

    @property
    def random(self) -> bool:
        """True for the kinds drawn i.i.d. from a continuous law (with a nonzero spread)."""
        return self.kind in ("uniform", "normal", "truncated_normal") and self.std > 0


def distribution(initializer: dict, shape: tuple[int, ...]) -> Distribution:
    """The exact law of each entry of a weight of this shape drawn by a normalized initializer."""
    cls, cfg = initializer["class_name"], initializer["config"]
    if cls in ("Zeros", "Ones", "Constant"):
        v = {"Zeros": 0.0, "Ones": 1.0}.get(cls, cfg.get("value", 0.0))
        return Distribution("constant", v, 0.0, v, v)
    if cls == "Orthogonal":
        if len(shape) < 2:
            raise InvalidConfig("Orthogonal", "shape", "must have rank >= 2 (Keras raises ValueError)", shape)
        g = cfg["gain"]
        return Distribution("orthogonal", g, 0.0, -abs(g), abs(g))
    if cls == "RandomUniform":
        lo, hi = cfg["minval"], cfg["maxval"]
        return Distribution("uniform", (lo + hi) / 2, (hi - lo) / math.sqrt(12.0), lo, hi)
    if cls == "RandomNormal":
        m, s = cfg["mean"], cfg["stddev"]
        return Distribution("normal", m, s, -math.inf, math.inf, s)
    if cls == "TruncatedNormal":
        m, s = cfg["mean"], cfg["stddev"]
        return Distribution("truncated_normal", m, s * TRUNCATION_STD, m - 2 * s, m + 2 * s, s)
    scale, mode, dist = _PRESETS.get(cls) or (cfg["scale"], cfg["mode"], cfg["distribution"])
    fan_in, fan_out = fans(shape, cfg.get("input_axes"), cfg.get("output_axes"))
    n = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2.0)
    s = scale / max(1.0, n)
    if dist == "uniform":
        limit = math.sqrt(3.0 * s)
        return Distribution("uniform", 0.0, math.sqrt(s), -limit, limit)
    if dist == "untruncated_normal":
        return Distribution("normal", 0.0, math.sqrt(s), -math.inf, math.inf, math.sqrt(s))
    sigma = math.sqrt(s) / TRUNCATION_STD
    return Distribution("truncated_normal", 0.0, math.sqrt(s), -2 * sigma, 2 * sigma, sigma)


def orthogonal_matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) an Orthogonal initializer flattens a weight to: (prod(shape[:-1]), shape[-1])."""
    return int(np.prod(shape[:-1])), int(shape[-1])


def sample(initializer: dict, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A float64 weight drawn by the initializer with NumPy's Generator (the algorithms of
    Keras 3's numpy backend: truncated normal by rejection outside mean +- 2 sigma;
    Orthogonal by QR of a normal matrix with sign(diag(r)) fixed). Values agree with
    Keras in law, not bit for bit."""
    rng = np.random.default_rng(seed)
    d = distribution(initializer, shape)
    size = int(np.prod(shape))
    if d.kind == "constant":
        return np.full(shape, d.mean, dtype=np.float64)
    if d.kind == "uniform":
        return rng.uniform(d.low, d.high, size=shape)
    if d.kind == "normal":
        return rng.normal(d.mean, d.sigma, size=shape)
    if d.kind == "truncated_normal":
        kept = np.empty(0)
        while kept.size < size:
            x = rng.normal(d.mean, d.sigma, size=max(size, 16))
            kept = np.concatenate([kept, x[(x >= d.low) & (x <= d.high)]])
        return kept[:size].reshape(shape)
    rows, cols = orthogonal_matrix(shape)
    a = rng.normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return d.mean * q.reshape(shape)

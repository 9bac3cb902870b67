"""Keras's training-time arguments written with PyTorch: torch.nn.init and plain torch ops.

Initializers: a Keras kernel ``(k..., in, out)`` is initialized as a torch
tensor ``(out, in, *k)`` and permuted back, so torch's own fan computation
(``fan_in = size(1) * rf``, ``fan_out = size(0) * rf``) gives Keras's fans for
every layout (Conv, ConvTranspose, Depthwise, Pointwise). A bias (rank 1),
for which torch computes no fans, uses Keras's rule ``fan_in = fan_out = F``.
Keras's truncated normals (``he_normal`` ...) are ``nn.init.trunc_normal_``
with ``std = sqrt(scale / n) / 0.8796`` cut at +-2 std: torch's
``kaiming_normal_``/``xavier_normal_`` are untruncated and would be wrong.
Regularizers and constraints are their Keras formulas in torch ops.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported

from ._penalties import penalties  # noqa: F401 - re-exported: the adapters call it from here

__all__ = ["initialize", "penalties", "constrain_tensor"]

_TRUNCATION_STD = 0.87962566103423978  # std of N(0, 1) cut at +-2 (Keras's constant)
_PRESETS = {"GlorotUniform": (1.0, "fan_avg", "uniform"), "GlorotNormal": (1.0, "fan_avg", "truncated_normal"),
            "HeUniform": (2.0, "fan_in", "uniform"), "HeNormal": (2.0, "fan_in", "truncated_normal"),
            "LecunUniform": (1.0, "fan_in", "uniform"), "LecunNormal": (1.0, "fan_in", "truncated_normal")}


def _fill(torch: Any, t: Any, init: dict, g: Any) -> None:
    nn = torch.nn.init
    cls, cfg = init["class_name"], init["config"]
    if cfg.get("input_axes") is not None or cfg.get("output_axes") is not None:
        raise Unsupported("torch adapter: initializer input_axes/output_axes (Keras 3.15) are not implemented")
    if cls == "Zeros":
        nn.zeros_(t)
    elif cls == "Ones":
        nn.ones_(t)
    elif cls == "Constant":
        nn.constant_(t, cfg["value"])
    elif cls == "RandomNormal":
        nn.normal_(t, cfg["mean"], cfg["stddev"], generator=g)
    elif cls == "RandomUniform":
        nn.uniform_(t, cfg["minval"], cfg["maxval"], generator=g)
    elif cls == "TruncatedNormal":
        m, s = cfg["mean"], cfg["stddev"]
        nn.trunc_normal_(t, m, s, m - 2 * s, m + 2 * s, generator=g)
    elif cls == "Orthogonal":
        nn.orthogonal_(t, cfg["gain"], generator=g)
    else:
        scale, mode, dist = _PRESETS.get(cls) or (cfg["scale"], cfg["mode"], cfg["distribution"])
        if t.dim() >= 2:
            fan_in, fan_out = nn._calculate_fan_in_and_fan_out(t)
        else:
            fan_in = fan_out = t.shape[0]
        n = {"fan_in": fan_in, "fan_out": fan_out}.get(mode, (fan_in + fan_out) / 2)
        s = scale / max(1.0, n)
        if dist == "uniform":
            limit = math.sqrt(3 * s)
            nn.uniform_(t, -limit, limit, generator=g)
        elif dist == "untruncated_normal":
            nn.normal_(t, 0.0, math.sqrt(s), generator=g)
        else:
            std = math.sqrt(s) / _TRUNCATION_STD
            nn.trunc_normal_(t, 0.0, std, -2 * std, 2 * std, generator=g)


def initialize(spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
    """Every weight of the layer drawn by torch.nn.init (float32), a torch.Generator seeded with seed."""
    import torch

    nspec = reference.normalize(spec)
    shapes = reference.weight_shapes(nspec, input_shape)
    args = reference.weight_arguments(nspec)
    g = torch.Generator().manual_seed(int(seed))
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        init = nspec["config"][args[name]["initializer"]]
        if len(shape) >= 2:
            t = torch.empty((shape[-1], shape[-2], *shape[:-2]), dtype=torch.float32)
            _fill(torch, t, init, g)
            t = t.permute(*range(2, len(shape)), 1, 0)
        else:
            t = torch.empty(shape, dtype=torch.float32)
            _fill(torch, t, init, g)
        out[name] = t.contiguous().numpy().copy()
    return out


def constrain_tensor(torch: Any, constraint: dict, w: Any) -> Any:
    """Keras's constraint formulas: w * c(n) / (1e-7 + n), n the L2 norm over the user's axis."""
    cls, cfg = constraint["class_name"], constraint["config"]
    if cls == "NonNeg":
        return torch.clamp(w, min=0.0)
    axis = cfg["axis"]
    dims = [axis] if isinstance(axis, int) else list(axis)
    n = torch.sqrt(torch.sum(torch.square(w), dim=dims, keepdim=True))
    eps = 1e-7
    if cls == "UnitNorm":
        return w / (eps + n)
    if cls == "MaxNorm":
        desired = torch.clamp(n, 0, cfg["max_value"])
    else:
        desired = cfg["rate"] * torch.clamp(n, cfg["min_value"], cfg["max_value"]) + (1 - cfg["rate"]) * n
    return w * (desired / (eps + n))

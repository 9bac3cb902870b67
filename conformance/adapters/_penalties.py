"""Keras's L1/L2/L1L2 penalties of one layer call, written once for any array module with
``zeros``, ``sum``, ``abs`` and ``square`` (``torch``, ``jax.numpy``), so the torch and jax
adapters differentiate the same formula with their own autodiff."""
from __future__ import annotations

from typing import Any

from conv_conformance import reference

__all__ = ["penalty", "penalties"]


def penalty(xp: Any, regularizer: dict, x: Any) -> Any:
    """``l1 * sum|x| + l2 * sum(x**2)`` (a term skipped when its factor is 0), in ``xp``."""
    l1, l2 = regularizer["config"].get("l1", 0.0), regularizer["config"].get("l2", 0.0)
    out = xp.zeros((), dtype=x.dtype)
    if l1:
        out = out + l1 * xp.sum(xp.abs(x))
    if l2:
        out = out + l2 * xp.sum(xp.square(x))
    return out


def penalties(xp: Any, spec: dict, y: Any, w: dict) -> dict[str, Any]:
    """``{weight or "activity": penalty}`` of one call with output ``y``: one per regularized
    weight, and the activity penalty divided by the batch size (Keras 3; 0 for an empty batch)."""
    nspec = reference.normalize(spec)
    cfg = nspec["config"]
    out = {name: penalty(xp, cfg[a["regularizer"]], w[name])
           for name, a in reference.weight_arguments(nspec).items() if cfg[a["regularizer"]]}
    if cfg.get("activity_regularizer"):
        b = y.shape[0]
        out["activity"] = penalty(xp, cfg["activity_regularizer"], y) / b if b else xp.zeros((), dtype=y.dtype)
    return out

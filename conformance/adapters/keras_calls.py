"""One Keras call per case for the `keras` and `tf-keras` adapters, and cheaper initializer draws.

The harness asks for the forward, the VJP, the penalties and their gradient of
the same spec, inputs and weights, in that order. Each of them is "what Keras
computes for one call of the layer", so one call serves them all:

* :func:`forward` calls the layer on a persistent ``tf.GradientTape`` and reads
  ``layer.losses`` inside it (the activity penalty of that call, then each
  weight's penalty, as Keras lists them);
* :func:`vjp`, :func:`regularization` and :func:`regularization_vjp` of the
  very same spec, inputs and weights (checked by a digest of their bytes) take
  their values from that call, each once; called again, or for other
  arguments, they make a call of their own. ``forward`` always calls the layer,
  so repeated forwards (the nondeterminism recheck, ``--repeat``) stay
  independent calls.

What is saved is a layer call per penalty request, and for the layers Keras
compiles with XLA on every call (grouped and 3-D channels_first convolutions),
an XLA compilation of the forward and of its gradient each time.

:func:`initialize` and :func:`constrain` use a layer Keras built for the same
spec (the forward's, or the first draw's) instead of building another.
:func:`initialize` constructs the layer seeded with the seed asked for and
calls that layer's own initializer objects as a Keras 3 variable does,
``initializer(shape, dtype=dtype)`` on the shape and dtype of the variable the
build made, converted with ``dtype`` as ``tf.Variable`` converts it
(``keras/src/backend/tensorflow/core.py``): only the ``tf.Variable`` around the
values is skipped. Without such a layer (another input shape, as for the
larger layers of the statistical test) it builds one. :func:`constrain` loads
the weights into the built layer and applies its own constraint objects.
Keras 2 creates its variables differently, so the ``keras2`` flavour always
builds.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.oracle import tf_layers, tf_training

__all__ = ["forward", "vjp", "regularization", "regularization_vjp", "initialize", "constrain"]

_USES = ("vjp", "regularization", "regularization_vjp")
# The last forward call: its tape, output, losses, and which of _USES have not taken it yet.
_last: dict[str, Any] = {}


def _record(spec: dict, inputs: np.ndarray, weights: dict, flavour: str) -> dict[str, Any]:
    """One Keras call of the layer on a persistent tape, with ``layer.losses`` read inside it."""
    tf, layer, named, x = tf_layers._prepare(spec, inputs, weights, flavour)
    _keep(spec, tuple(x.shape), x.dtype.name, layer)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        try:
            losses = list(layer.losses)
            total = tf.add_n([tf.cast(v, x.dtype) for v in losses]) if losses else None
        except Exception:  # noqa: BLE001 - the penalty requests make their own call and raise it there
            losses = total = None
    return {"tf": tf, "tape": tape, "y": y, "losses": losses, "total": total,
            "sources": [x] + [v for _, v in named], "names": ["inputs"] + [n for n, _ in named]}


def _take(use: str, spec: dict, inputs: np.ndarray, weights: dict, flavour: str) -> dict[str, Any] | None:
    """The last forward call if it was made on these arguments and `use` has not taken it yet."""
    if use not in _last.get("unused", ()):
        return None
    if _last["key"] != tf_layers._fingerprint(spec, inputs, weights, flavour):
        return None
    _last["unused"].discard(use)
    return _last


def _gradients(call: dict[str, Any], target: Any, inputs: np.ndarray, **kwargs: Any) -> dict[str, np.ndarray]:
    grads = call["tape"].gradient(target, call["sources"], **kwargs) if target is not None \
        else [None] * len(call["sources"])
    dtype = np.asarray(inputs).dtype
    return {name: np.zeros(tuple(source.shape), dtype) if grad is None else np.asarray(grad)
            for name, source, grad in zip(call["names"], call["sources"], grads)}


def forward(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *, flavour: str) -> np.ndarray:
    """The layer's output (a new Keras call every time), kept for the requests that follow."""
    _last.clear()
    call = _record(spec, inputs, weights, flavour)
    _last.update(call, key=tf_layers._fingerprint(spec, inputs, weights, flavour), unused=set(_USES))
    return np.asarray(call["y"])


def vjp(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], output_grad: np.ndarray, *,
        flavour: str) -> dict[str, np.ndarray]:
    """Gradient of sum(output * output_grad) w.r.t. "inputs" and every weight, by name."""
    call = _take("vjp", spec, inputs, weights, flavour) or _record(spec, inputs, weights, flavour)
    g = call["tf"].constant(np.asarray(output_grad), dtype=call["y"].dtype)
    return _gradients(call, call["y"], inputs, output_gradients=g)


def _named_losses(call: dict[str, Any], spec: dict) -> dict[str, Any]:
    names = tf_training._order(spec)
    if len(call["losses"]) != len(names):
        raise RuntimeError(f"layer.losses has {len(call['losses'])} entries; the spec regularizes {names}")
    return dict(zip(names, call["losses"]))


def regularization(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *,
                   flavour: str) -> dict[str, float]:
    """{weight or "activity": penalty} from layer.losses after one call."""
    call = _take("regularization", spec, inputs, weights, flavour)
    if call is None or call["losses"] is None:
        return tf_training.regularization(spec, inputs, weights, flavour=flavour)
    return {k: tf_training.penalty_value(call["tf"], v) for k, v in _named_losses(call, spec).items()}


def regularization_vjp(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *,
                       flavour: str) -> dict[str, np.ndarray]:
    """Gradient of sum(layer.losses) w.r.t. "inputs" and every weight (tf.GradientTape)."""
    call = _take("regularization_vjp", spec, inputs, weights, flavour)
    if call is None or call["losses"] is None:
        return tf_training.regularization_vjp(spec, inputs, weights, flavour=flavour)
    _named_losses(call, spec)
    return _gradients(call, call["total"], inputs)


# ------------------------------------------------------------------ built layers

_TEMPLATES = 8
# Layers Keras built, by (normalized spec, input shape, dtype): the forward's, and the first draw's.
_built: OrderedDict[tuple, Any] = OrderedDict()


def _keep(spec: dict, input_shape: tuple, dtype: str, layer: Any) -> None:
    key = (json.dumps(reference.normalize(spec), sort_keys=True), tuple(input_shape), dtype)
    _built[key] = layer
    _built.move_to_end(key)
    if len(_built) > _TEMPLATES:
        _built.popitem(last=False)


def _built_for(spec: dict, input_shape: tuple | None, dtype: str) -> Any:
    """A layer Keras built for this spec and dtype (and input shape, when given), or None."""
    nspec = json.dumps(reference.normalize(spec), sort_keys=True)
    for (s, shape, d), layer in reversed(_built.items()):
        if s == nspec and d == dtype and (input_shape is None or shape == tuple(input_shape)):
            return layer
    return None


def initialize(spec: dict, input_shape: tuple, seed: int, *, flavour: str,
               dtype: str = "float32") -> dict[str, np.ndarray]:
    """The weights Keras builds the layer with, every initializer seeded with `seed`."""
    if flavour != "keras3":
        return tf_training.initialize(spec, input_shape, seed, flavour=flavour, dtype=dtype)
    nspec = reference.normalize(spec)
    layer = tf_layers.construct(tf_training.seeded(nspec, seed), flavour=flavour, dtype=dtype)
    template = _built_for(spec, input_shape, dtype)
    if template is None:
        layer.build(tuple(input_shape))
        _keep(spec, input_shape, dtype, layer)
        return {k: np.asarray(v.numpy()) for k, v in tf_training._named(layer, spec, flavour).items()}
    tf, _ = tf_layers._modules(flavour)
    args = reference.weight_arguments(nspec)
    out = {}
    for name, variable in tf_training._named(template, spec, flavour).items():
        shape, vdtype = tuple(variable.shape), variable.dtype
        initializer = getattr(layer, args[name]["initializer"])
        out[name] = np.asarray(tf.convert_to_tensor(initializer(shape, dtype=vdtype), dtype=vdtype))
    return out


def constrain(spec: dict, weights: dict[str, np.ndarray], *, flavour: str) -> dict[str, np.ndarray]:
    """Every weight after the layer's own constraint object (unchanged without one), on the layer
    the forward built when it has these weights' shapes, else on a new one."""
    dtype = np.asarray(next(iter(weights.values()))).dtype.name
    layer = _built_for(spec, None, dtype)
    shapes = {n: tuple(v.shape) for n, v in tf_training._named(layer, spec, flavour).items()} if layer else {}
    if flavour != "keras3" or shapes != {k: np.shape(v) for k, v in weights.items()}:
        return tf_training.constrain(spec, weights, flavour=flavour)
    named = tf_layers._load(layer, spec["class_name"], weights, flavour)
    args = reference.weight_arguments(reference.normalize(spec))
    out = {}
    for name, variable in named:
        c = getattr(layer, args[name]["constraint"], None)
        out[name] = np.asarray(c(variable) if c is not None else variable.numpy())
    return out

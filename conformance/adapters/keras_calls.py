"""One Keras call per case for the `keras` and `tf-keras` adapters, and cheaper initializer draws.

The harness asks for the forward, the VJP, the penalties and their gradient of
the same spec, inputs and weights, in that order. Each of them is "what Keras
computes for one call of the layer", so one call serves them all:

* :func:`forward` calls the layer on a ``tf.GradientTape`` and reads
  ``layer.losses`` (the activity penalty of that call, then each weight's
  penalty, as Keras lists them) on a second one, or on the same persistent
  tape when an activity penalty makes the penalties depend on the call;
* :func:`vjp`, :func:`regularization` and :func:`regularization_vjp` of the
  very same spec, inputs and weights (checked by a digest of their bytes) take
  their values from that call, each once; called again, they take the forward
  calls before it on the same arguments (the nondeterminism recheck calls a
  failing forward and then its VJP again), each once, and then, or for other
  arguments, make a call of their own. ``forward`` always calls the layer, so
  repeated forwards (the recheck, ``--repeat``) stay independent calls, and so
  do the VJPs that take them.

What is saved is a layer call per penalty request, and for the layers Keras
compiles with XLA on every call (grouped and 3-D channels_first convolutions),
an XLA compilation of the forward and of its gradient each time.

:func:`initialize` draws each weight as a Keras 3 variable does,
``initializer(shape, dtype=dtype)`` converted with ``dtype`` as ``tf.Variable``
converts it (``keras/src/backend/tensorflow/core.py``), with the initializer
object ``keras.initializers.get`` makes of the seeded spec's config (what the
layer's constructor stores) on the shape and dtype of the variable Keras's own
``build`` makes: the forward's layer's, or a layer built for the draw's input
shape inside a ``keras.StatelessScope`` (Keras computes the variables' shapes
but creates no values, so the other weights are not drawn for nothing). Only the
``tf.Variable`` around the values is skipped. :func:`constrain` loads the weights
into a layer the forward built with these weights' shapes and applies its own
constraint objects. Keras 2 creates its variables differently, so the ``keras2``
flavour always builds.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from collections import OrderedDict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.oracle import tf_layers, tf_training

__all__ = ["forward", "vjp", "regularization", "regularization_vjp", "initialize", "constrain",
           "XLA_CACHE_ENV", "xla_cache_directory", "enable_xla_cache"]

_USES = ("vjp", "regularization", "regularization_vjp")
# The forward calls since the last one on other arguments (a failing forward is called again
# to tell a nondeterministic result from a wrong one, and its VJP then too: each VJP takes its own
# call), at most _KEPT of them: each with its tapes, output, losses, and the _USES not taken yet.
_calls: list[dict[str, Any]] = []
_KEPT = 4


def _losses(tf: Any, layer: Any, x: Any) -> tuple[list | None, Any]:
    """``layer.losses`` (Keras computes the weights' penalties when they are read) and their sum."""
    try:
        losses = list(layer.losses)
        return losses, (tf.add_n([tf.cast(v, x.dtype) for v in losses]) if losses else None)
    except Exception:  # noqa: BLE001 - the penalty requests make their own call and raise it there
        return None, None


def _record(spec: dict, inputs: np.ndarray, weights: dict, flavour: str) -> dict[str, Any]:
    """One Keras call of the layer on a gradient tape, with ``layer.losses`` read after it.

    The VJP and the penalties' gradient each take one gradient. Without an activity regularizer
    the penalties do not involve the call, so the call is recorded on a tape of its own, not
    persistent, and the penalties on a second one: with one such tape watching, TensorFlow builds
    only the first-order gradient of each ``tf.function`` Keras calls (as for a user's
    ``tf.GradientTape()``, and oracle.tf_layers), less graph building per XLA-compiled call
    (docs/benchmarks.md).
    An activity penalty is computed inside the call, so both gradients need the call's tape,
    which is then persistent.
    """
    tf, layer, named, x = tf_layers._prepare(spec, inputs, weights, flavour)
    if flavour == "keras3":
        _keep(spec, tuple(x.shape), x.dtype.name, layer)
    if (spec.get("config") or {}).get("activity_regularizer") is not None:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x)
            losses, total = _losses(tf, layer, x)
        penalty_tape = tape
    else:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        with tf.GradientTape() as penalty_tape:
            losses, total = _losses(tf, layer, x)
    return {"tf": tf, "tape": tape, "penalty_tape": penalty_tape, "y": y, "losses": losses, "total": total,
            "sources": [x] + [v for _, v in named], "names": ["inputs"] + [n for n, _ in named]}


def _take(use: str, spec: dict, inputs: np.ndarray, weights: dict, flavour: str) -> dict[str, Any] | None:
    """The latest forward call made on these arguments that `use` has not taken yet."""
    waiting = [call for call in reversed(_calls) if use in call["unused"]]
    if not waiting or waiting[0]["key"] != tf_layers._fingerprint(spec, inputs, weights, flavour):
        return None
    waiting[0]["unused"].discard(use)
    return waiting[0]


def _gradients(call: dict[str, Any], tape: str, target: Any, inputs: np.ndarray,
               **kwargs: Any) -> dict[str, np.ndarray]:
    grads = call[tape].gradient(target, call["sources"], **kwargs) if target is not None \
        else [None] * len(call["sources"])
    dtype = np.asarray(inputs).dtype
    return {name: np.zeros(tuple(source.shape), dtype) if grad is None else np.asarray(grad)
            for name, source, grad in zip(call["names"], call["sources"], grads)}


def forward(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *, flavour: str) -> np.ndarray:
    """The layer's output (a new Keras call every time), kept for the requests that follow."""
    call = _record(spec, inputs, weights, flavour)
    call.update(key=tf_layers._fingerprint(spec, inputs, weights, flavour), unused=set(_USES))
    if _calls and _calls[0]["key"] != call["key"]:
        _calls.clear()
    _calls.append(call)
    del _calls[:-_KEPT]
    return np.asarray(call["y"])


def vjp(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], output_grad: np.ndarray, *,
        flavour: str) -> dict[str, np.ndarray]:
    """Gradient of sum(output * output_grad) w.r.t. "inputs" and every weight, by name."""
    call = _take("vjp", spec, inputs, weights, flavour) or _record(spec, inputs, weights, flavour)
    g = call["tf"].constant(np.asarray(output_grad), dtype=call["y"].dtype)
    return _gradients(call, "tape", call["y"], inputs, output_gradients=g)


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
    return _gradients(call, "penalty_tape", call["total"], inputs)


# ------------------------------------------------------------------ built layers

_TEMPLATES = 8
# Layers the forward built, by (normalized spec, input shape, dtype), for constrain.
_built: OrderedDict[tuple, Any] = OrderedDict()
_SHAPES = 256
# The (shape, dtype) of each variable Keras builds, by (normalized spec, input shape, dtype).
_variables: OrderedDict[tuple, dict[str, tuple[tuple, str]]] = OrderedDict()


def _key(spec: dict, input_shape: tuple, dtype: str) -> tuple:
    return json.dumps(reference.normalize(spec), sort_keys=True), tuple(input_shape), dtype


def _remember(cache: OrderedDict, key: tuple, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > size:
        cache.popitem(last=False)


def _keep(spec: dict, input_shape: tuple, dtype: str, layer: Any) -> None:
    key = _key(spec, input_shape, dtype)
    _remember(_built, key, layer, _TEMPLATES)
    _remember(_variables, key, {n: (tuple(v.shape), v.dtype) for n, v in
                                tf_training._named(layer, spec, "keras3").items()}, _SHAPES)


def _built_for(spec: dict, input_shape: tuple | None, dtype: str,
               shapes: dict[str, tuple] | None = None) -> Any:
    """A layer the forward built for this spec and dtype (and input shape, or weights of these
    shapes, when given), or None."""
    nspec = json.dumps(reference.normalize(spec), sort_keys=True)
    for (s, shape, d), layer in reversed(_built.items()):
        if s != nspec or d != dtype or (input_shape is not None and shape != tuple(input_shape)):
            continue
        if shapes is None or {n: v[0] for n, v in _variables.get((s, shape, d), {}).items()} == shapes:
            return layer
    return None


def _shapes_of(nspec: dict, input_shape: tuple, dtype: str) -> dict[str, tuple[tuple, str]]:
    """{weight: (shape, dtype)} of the variables Keras 3 builds for this spec and input shape.

    Without a layer built for them already, the layer is built inside a
    ``keras.StatelessScope(initialize_variables=False)``: ``build`` runs as
    always, and each variable records its shape, dtype and initializer without
    drawing a value. Those variables are then dropped from Keras's list of
    variables to initialize later, which is left as it was.
    """
    key = _key(nspec, input_shape, dtype)
    found = _variables.get(key)
    if found is not None:
        _variables.move_to_end(key)
        return found
    _, keras = tf_layers._modules("keras3")
    from keras.src.backend.common import global_state

    layer = tf_layers.construct(nspec, flavour="keras3", dtype=dtype)
    pending = global_state.get_global_attribute("uninitialized_variables")
    try:
        with keras.StatelessScope(initialize_variables=False):
            layer.build(tuple(input_shape))
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)
    found = {n: (tuple(v.shape), v.dtype) for n, v in tf_training._named(layer, nspec, "keras3").items()}
    _remember(_variables, key, found, _SHAPES)
    return found


def initialize(spec: dict, input_shape: tuple, seed: int, *, flavour: str,
               dtype: str = "float32") -> dict[str, np.ndarray]:
    """The weights Keras builds the layer with, every initializer seeded with `seed`."""
    if flavour != "keras3":
        return tf_training.initialize(spec, input_shape, seed, flavour=flavour, dtype=dtype)
    tf, keras = tf_layers._modules(flavour)
    nspec = reference.normalize(spec)
    config = tf_training.seeded(nspec, seed)["config"]
    args = reference.weight_arguments(nspec)
    out = {}
    for name, (shape, vdtype) in _shapes_of(nspec, tuple(input_shape), dtype).items():
        initializer = keras.initializers.get(config[args[name]["initializer"]])
        out[name] = np.asarray(tf.convert_to_tensor(initializer(shape, dtype=vdtype), dtype=vdtype))
    return out


def constrain(spec: dict, weights: dict[str, np.ndarray], *, flavour: str) -> dict[str, np.ndarray]:
    """Every weight after the layer's own constraint object (unchanged without one), on a layer
    the forward built with these weights' shapes, else on a new one."""
    dtype = np.asarray(next(iter(weights.values()))).dtype.name
    shapes = {k: np.shape(v) for k, v in weights.items()}
    layer = _built_for(spec, None, dtype, shapes) if flavour == "keras3" else None
    if layer is None:
        return tf_training.constrain(spec, weights, flavour=flavour)
    named = tf_layers._load(layer, spec["class_name"], weights, flavour)
    args = reference.weight_arguments(reference.normalize(spec))
    out = {}
    for name, variable in named:
        c = getattr(layer, args[name]["constraint"], None)
        out[name] = np.asarray(c(variable) if c is not None else variable.numpy())
    return out


# ------------------------------------------------------------------ TensorFlow's persistent XLA cache

XLA_CACHE_ENV = "CONV_CONFORMANCE_XLA_CACHE"


def _build_tag() -> str:
    """What a compiled executable depends on besides its key: TensorFlow's version, the CPU (XLA
    compiles for the host's features) and the XLA flags. TensorFlow's cache key holds none of
    them, so each combination gets a directory of its own."""
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = f.read().split("\n\n", 1)[0]
        cpu = "\n".join(line for line in cpu.splitlines() if line.split(":")[0].strip() in ("model name", "flags"))
    except OSError:
        cpu = platform.processor() or platform.machine()
    tf_xla = " ".join(f for f in os.environ.get("TF_XLA_FLAGS", "").split()
                      if not f.startswith("--tf_xla_persistent_cache_directory="))
    flags = "|".join((os.environ.get("XLA_FLAGS", ""), tf_xla, os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")))
    digest = hashlib.blake2b(f"{cpu}|{flags}".encode(), digest_size=8).hexdigest()
    return f"tensorflow-{version}-{digest}"


def xla_cache_directory() -> str | None:
    """The directory of TensorFlow's persistent XLA cache for this process (None: off):
    ``$CONV_CONFORMANCE_XLA_CACHE`` (empty or ``off``: no cache), by default
    ``$XDG_CACHE_HOME/conv-conformance/tf-xla`` (``~/.cache/conv-conformance/tf-xla``), in a
    subdirectory per TensorFlow version, CPU and XLA flags."""
    value = os.environ.get(XLA_CACHE_ENV)
    if value is not None and value.strip().lower() in ("", "off"):
        return None
    base = value or str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conv-conformance" / "tf-xla")
    return str(Path(base) / _build_tag())


def enable_xla_cache() -> str | None:
    """Keep the executables XLA compiles for the layers Keras compiles on every call (grouped and
    3-D channels_first convolutions) in :func:`xla_cache_directory`, by TensorFlow's own
    ``--tf_xla_persistent_cache_directory``; the directory used (None: off, or TF_XLA_FLAGS
    already names one). Takes effect only before TensorFlow is imported.

    TensorFlow keys an entry by the compiled function's name and a fingerprint of its HLO, and
    loads it only for the same HLO: the executable is the one XLA compiled for it, so results
    are bitwise those of a fresh compilation. The names are numbered by the process's history,
    so an entry is found again by a process that made the same calls before it: a run repeated
    with the same cases and ``--jobs`` (conformance.runner deals each worker the same cases in
    the same order)."""
    directory = xla_cache_directory()
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if directory is None or "tf_xla_persistent_cache_directory" in flags:
        return None
    Path(directory).mkdir(parents=True, exist_ok=True)
    os.environ["TF_XLA_FLAGS"] = f"{flags} --tf_xla_persistent_cache_directory={directory}".strip()
    return directory

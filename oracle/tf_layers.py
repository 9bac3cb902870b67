"""Run a layer spec through real Keras on TensorFlow: forward, VJP, output shape.

Two flavours of Keras are supported:

* ``"keras3"``: the ``tf.keras`` of TensorFlow 2.21, i.e. Keras 3 with the
  TensorFlow backend;
* ``"keras2"``: the ``tf-keras`` package (``import tf_keras``), i.e. Keras 2.

This module is a faithful runner: it builds the layer from the spec with
``layers.deserialize``, gives it the dtype of the inputs, loads the weights by
variable name and calls it. It never works around a divergence of Keras (no
transposing of channels_first inputs, no retrying with other arguments):
whatever Keras computes or raises is what the caller gets.

TensorFlow is imported lazily, on first use, so ``import oracle`` stays light.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import OrderedDict
from typing import Any

import numpy as np

from conv_conformance.vocabulary import DTYPES

__all__ = ["FLAVOURS", "forward", "vjp", "compute_output_shape", "construct", "versions"]

FLAVOURS = ("keras3", "keras2")

# Keras 2 names some variables differently from Keras 3 (the layouts agree).
_KERAS2_WEIGHT_NAMES = {"DepthwiseConv1D": {"kernel": "depthwise_kernel"},
                        "DepthwiseConv2D": {"kernel": "depthwise_kernel"}}
# Keras 3 layers whose Keras 2 counterpart takes no `data_format` (channels_last only).
_KERAS2_NO_DATA_FORMAT = frozenset({"ZeroPadding1D", "Cropping1D", "UpSampling1D"})
_CACHE_SIZE = 64


# ------------------------------------------------------------------ loading

@functools.cache
def _modules(flavour: str) -> tuple[Any, Any]:
    """(tensorflow, keras module) for a flavour, imported once."""
    if flavour not in FLAVOURS:
        raise ValueError(f"Argument `flavour` must be one of {', '.join(map(repr, FLAVOURS))}. "
                         f"Received: flavour={flavour!r}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing warnings: every new shape is a new trace, by design

    if flavour == "keras2":
        import tf_keras as keras
    else:
        import keras

        if keras.backend.backend() != "tensorflow":
            raise RuntimeError("flavour='keras3' runs tf.keras, which needs the TensorFlow backend of "
                               f"Keras; KERAS_BACKEND selects {keras.backend.backend()!r}")
    return tf, keras


def versions(flavour: str = "keras3") -> dict[str, str]:
    """Versions of the libraries a flavour runs on, for reports."""
    tf, keras = _modules(flavour)
    return {"tensorflow": tf.__version__, ("keras" if flavour == "keras3" else "tf_keras"): keras.__version__}


def _dtype_name(array: Any) -> str:
    name = np.asarray(array).dtype.name
    if name not in DTYPES:
        raise TypeError(f"Inputs must have one of the dtypes {', '.join(DTYPES)}. Received: dtype={name}")
    return name


def _keras_spec(spec: dict, dtype: str, flavour: str) -> dict:
    """The spec as the flavour's `layers.deserialize` expects it, with the dtype set."""
    config = dict(spec.get("config") or {})
    config["dtype"] = dtype
    if flavour == "keras2" and spec["class_name"] in _KERAS2_NO_DATA_FORMAT \
            and config.get("data_format") == "channels_last":
        del config["data_format"]  # Keras 2 takes no data_format here; channels_last is what it does
    if flavour == "keras2":
        _keras2_training_arguments(config)
    out = {"class_name": spec["class_name"], "config": config}
    if flavour == "keras3":
        out["module"] = "keras.layers"
    return out


def _keras2_training_arguments(config: dict) -> None:
    """Keras 3's initializer configs as Keras 2 reads them: Keras 2's VarianceScaling family has
    no `input_axes`/`output_axes` (Keras >= 3.15); null ones are dropped, others raise ValueError."""
    for key, value in list(config.items()):
        if key.endswith("_initializer") and isinstance(value, dict) and isinstance(value.get("config"), dict):
            cfg = dict(value["config"])
            for axes in ("input_axes", "output_axes"):
                if cfg.get(axes) is not None:
                    raise ValueError(f"Keras 2 initializers take no `{axes}` (Keras 3.15 added it); "
                                     f"received {key}={value!r}")
                cfg.pop(axes, None)
            config[key] = {"class_name": value["class_name"], "config": cfg}


def construct(spec: dict, *, flavour: str = "keras3", dtype: str = "float32") -> Any:
    """A new, unbuilt Keras layer for the spec (raises whatever Keras raises)."""
    _, keras = _modules(flavour)
    return keras.layers.deserialize(_keras_spec(spec, dtype, flavour))


_built: OrderedDict[tuple, Any] = OrderedDict()


def _layer(spec: dict, input_shape: tuple, dtype: str, flavour: str) -> Any:
    """A built layer for (spec, input shape, dtype, flavour), cached (LRU)."""
    key = (flavour, json.dumps(spec, sort_keys=True), tuple(input_shape), dtype)
    layer = _built.get(key)
    if layer is None:
        layer = construct(spec, flavour=flavour, dtype=dtype)
        layer.build(tuple(input_shape))
        _built[key] = layer
        if len(_built) > _CACHE_SIZE:
            _built.popitem(last=False)
    else:
        _built.move_to_end(key)
    return layer


def _variable_name(variable: Any, class_name: str, flavour: str) -> str:
    """The Keras 3 name of a variable of either flavour ("kernel:0" -> "kernel")."""
    name = variable.name.split("/")[-1].split(":")[0]
    if flavour == "keras2":
        name = {v: k for k, v in _KERAS2_WEIGHT_NAMES.get(class_name, {}).items()}.get(name, name)
    return name


def _load(layer: Any, class_name: str, weights: dict[str, np.ndarray], flavour: str) -> list[tuple[str, Any]]:
    """Assign the weights to the layer's variables by name; returns [(name, variable)]."""
    named = [(_variable_name(v, class_name, flavour), v) for v in layer.weights]
    have, given = {n for n, _ in named}, set(weights)
    if have != given:
        raise ValueError(f"{class_name} ({flavour}) has the weights {sorted(have)}; "
                         f"received weights named {sorted(given)}")
    for name, variable in named:
        value = np.asarray(weights[name])
        if tuple(variable.shape) != value.shape:
            raise ValueError(f"{class_name} ({flavour}): weight `{name}` has shape {tuple(variable.shape)}; "
                             f"received shape {value.shape}")
        variable.assign(value)
    return named


def _prepare(spec: dict, inputs: np.ndarray, weights: dict, flavour: str):
    tf, _ = _modules(flavour)
    inputs = np.asarray(inputs)
    dtype = _dtype_name(inputs)
    layer = _layer(spec, inputs.shape, dtype, flavour)
    named = _load(layer, spec["class_name"], weights or {}, flavour)
    return tf, layer, named, tf.constant(inputs)


# ------------------------------------------------------------------ public API

def _fingerprint(spec: dict, inputs: np.ndarray, weights: dict, flavour: str) -> str:
    """A digest of everything a forward call depends on (spec, flavour, array bytes, dtypes, shapes)."""
    h = hashlib.blake2b(json.dumps([flavour, spec], sort_keys=True, default=str).encode(), digest_size=16)
    for name, array in [("inputs", np.asarray(inputs))] + sorted((k, np.asarray(v)) for k, v in (weights or {}).items()):
        h.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


# The last forward call, recorded on a gradient tape: a `vjp` of the very same call (same spec,
# inputs and weights, as the harness makes right after `forward`) takes its gradient from this
# tape instead of running the layer a second time. The values are those of one Keras call either
# way; what is saved is a second trace, and for the layers Keras compiles with XLA on every call
# (grouped and 3-D channels_first convolutions: `conv` builds a new `tf.function(jit_compile=True)`
# each time), a second XLA compilation.
_last_forward: dict[str, Any] = {}


def _record(spec: dict, inputs: np.ndarray, weights: dict, flavour: str) -> dict[str, Any]:
    """One Keras call of the layer on a gradient tape: its output and what a gradient needs."""
    tf, layer, named, x = _prepare(spec, inputs, weights, flavour)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    return {"tf": tf, "tape": tape, "y": y, "sources": [x] + [v for _, v in named],
            "names": ["inputs"] + [n for n, _ in named]}


def forward(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], *,
            flavour: str = "keras3") -> np.ndarray:
    """The layer's output on `inputs`, computed by Keras in the inputs' dtype."""
    _last_forward.clear()
    call = _record(spec, inputs, weights, flavour)
    _last_forward.update(call, key=_fingerprint(spec, inputs, weights, flavour))
    return np.asarray(call["y"])


def vjp(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray], output_grad: np.ndarray, *,
        flavour: str = "keras3") -> dict[str, np.ndarray]:
    """Gradient of sum(layer(inputs) * output_grad) w.r.t. "inputs" and every weight.

    Computed by tf.GradientTape with `output_grad` as the output gradient;
    weights are keyed by their Keras 3 names. Right after a `forward` of the
    same spec, inputs and weights, the gradient is taken on that call's tape.
    """
    call = dict(_last_forward)
    _last_forward.clear()
    if call.get("key") != _fingerprint(spec, inputs, weights, flavour):
        call = _record(spec, inputs, weights, flavour)
    y, sources = call["y"], call["sources"]
    g = call["tf"].constant(np.asarray(output_grad), dtype=y.dtype)
    grads = call["tape"].gradient(y, sources, output_gradients=g)
    out: dict[str, np.ndarray] = {}
    for name, source, grad in zip(call["names"], sources, grads):
        out[name] = np.zeros(tuple(source.shape), np.asarray(inputs).dtype) if grad is None else np.asarray(grad)
    return out


def compute_output_shape(spec: dict, input_shape: tuple, *, flavour: str = "keras3",
                         dtype: str = "float32") -> tuple:
    """The output shape Keras's `compute_output_shape` gives for this input shape."""
    layer = construct(spec, flavour=flavour, dtype=dtype)
    shape = layer.compute_output_shape(tuple(input_shape))
    if hasattr(shape, "as_list"):
        shape = shape.as_list()
    return tuple(shape)

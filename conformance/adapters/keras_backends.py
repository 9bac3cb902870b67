"""The `keras-jax`, `keras-torch` and `keras-numpy` adapters: the `keras` package
(Keras 3) on its other backends.

The same layer has different code per backend (``keras/src/backend/<name>/``),
so each backend is scored on its own. Keras reads ``KERAS_BACKEND`` once, when
it is imported: the adapter sets it before its first ``import keras`` and, when
``keras`` was already imported in the process with another backend, refuses to
load with a message naming both (the harness runs every adapter in a fresh
spawned worker, where nothing has imported keras yet).

* forward: the layer rebuilt from the spec by ``keras.layers.deserialize``
  (``dtype`` = the case dtype), built, its variables assigned from the weights,
  called on the inputs;
* gradients through the backend's own autodiff: ``jax.vjp`` of
  ``layer.stateless_call`` (keras-jax), torch autograd (keras-torch). The numpy
  backend has no autodiff: no ``vjp``, so gradient cases are unsupported;
* JAX computes in 32 bits unless ``jax_enable_x64`` is set, and Keras does not
  set it: the adapter enables it before keras (and jax) are imported, so a
  float64 case runs in float64 on keras-jax and keras-numpy (whose convolutions
  call ``jax.lax``). ``environment()`` records it;
* an interpolation the backend does not implement (Keras raises ValueError:
  lanczos on torch, area everywhere but TensorFlow) is declined with
  Unsupported, only when the reference accepts the spec, so a configuration
  Keras rejects still counts as Keras's error behaviour.
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections import OrderedDict
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported

from . import _jax_cache
from ._geometry import plain_float

__all__ = ["KerasJaxAdapter", "KerasTorchAdapter", "KerasNumpyAdapter", "import_keras"]

_CACHE_SIZE = 64
# Keras's messages for an interpolation its backend lacks (keras/src/backend/<b>/image.py, 3.15.1)
_UNSUPPORTED_MESSAGES = ("is not supported by the PyTorch backend", "Invalid value for argument `interpolation`")


def import_keras(backend: str) -> Any:
    """The `keras` module running on `backend`, imported with KERAS_BACKEND set first.

    Raises RuntimeError when keras is already imported in this process with
    another backend (Keras cannot switch backends for objects that exist).
    """
    loaded = sys.modules.get("keras")
    if loaded is None:
        os.environ["KERAS_BACKEND"] = backend
        if backend in ("jax", "numpy"):
            import jax

            jax.config.update("jax_enable_x64", True)  # before any array exists
            _jax_cache.enable(jax)
        import keras

        loaded = keras
    active = loaded.backend.backend()
    if active != backend:
        raise RuntimeError(f"the keras-{backend} adapter needs Keras's {backend!r} backend, but keras was "
                           f"already imported in this process with the {active!r} backend "
                           f"(KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}); Keras reads KERAS_BACKEND "
                           "once, at import: run the adapter in a fresh process (conv-conformance run does)")
    return loaded


@functools.cache
def _unused_initializer(keras: Any) -> Any:
    """A Keras initializer returning NumPy zeros (the keras-jax adapter's placeholder)."""

    class Unused(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            return np.zeros(shape, dtype=keras.backend.standardize_dtype(dtype or "float32"))

    return Unused()


class _KerasBackendAdapter:
    """Keras 3 layers on one non-TensorFlow backend (subclasses name it)."""

    name = "keras-backend"
    backend = ""
    #: a built layer per new shape adds traced state in the backend; the harness replaces the worker
    cases_per_worker = 1000

    def __init__(self) -> None:
        self.keras = import_keras(self.backend)
        self._built: OrderedDict[tuple, Any] = OrderedDict()

    # -------------------------------------------------------------- facts
    def versions(self) -> dict[str, str]:
        """{"keras": ..., and the backend's libraries}."""
        out = {"keras": self.keras.__version__}
        if self.backend in ("jax", "numpy"):
            import jax
            import jaxlib

            out.update(jax=jax.__version__, jaxlib=jaxlib.__version__)
        if self.backend == "torch":
            import torch

            out["torch"] = torch.__version__
        return out

    def environment(self) -> dict[str, str]:
        """The facts that decide verdicts: the active backend, JAX's x64 switch, torch's threads."""
        out = {"keras_backend": self.keras.backend.backend(),
               "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "")}
        if self.backend in ("jax", "numpy"):
            import jax

            out["jax_enable_x64"] = str(bool(jax.config.jax_enable_x64))
        if self.backend == "torch":
            import torch

            out["torch_num_threads"] = str(torch.get_num_threads())
            out["torch_mkldnn"] = str(torch.backends.mkldnn.is_available())
        return out

    # -------------------------------------------------------------- layer
    def _layer(self, spec: dict, shape: tuple, dtype: str) -> Any:
        """The built layer for (spec, input shape, dtype), cached (LRU); Keras's own errors propagate."""
        key = (json.dumps(spec, sort_keys=True, default=str), tuple(shape), dtype)
        layer = self._built.get(key)
        if layer is None:
            config = dict(spec.get("config") or {}, dtype=dtype)
            layer = self.keras.layers.deserialize({"class_name": spec["class_name"], "config": config,
                                                   "module": "keras.layers"})
            self._placeholder_initializers(layer)
            layer.build(tuple(shape))
            self._built[key] = layer
            if len(self._built) > _CACHE_SIZE:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(key)
        return layer

    def _placeholder_initializers(self, layer: Any) -> None:
        """Hook: KerasJaxAdapter replaces the initializers, whose drawn values are never used."""

    def _prepare(self, spec: dict, inputs: np.ndarray, weights: dict) -> tuple[Any, list[str]]:
        """The layer with the weights assigned, and its trainable variables' names in order."""
        x = np.asarray(inputs)
        layer = self._declining(lambda: self._layer(spec, x.shape, x.dtype.name), spec, x.shape)
        names = [v.name for v in layer.weights]
        if set(names) != set(weights or {}):
            raise ValueError(f"{spec['class_name']} (keras-{self.backend}) has the weights {sorted(names)}; "
                             f"received weights named {sorted(weights or {})}")
        for v in layer.weights:
            value = np.asarray(weights[v.name])
            if tuple(v.shape) != value.shape:
                raise ValueError(f"{spec['class_name']}: weight `{v.name}` has shape {tuple(v.shape)}; "
                                 f"received shape {value.shape}")
            v.assign(value)
        return layer, [v.name for v in layer.trainable_variables]

    def _declining(self, call, spec: dict, shape: tuple):
        """call(), with Keras's "this backend has no such interpolation" turned into Unsupported
        when the reference accepts the configuration."""
        try:
            return call()
        except ValueError as exc:
            if any(m in str(exc) for m in _UNSUPPORTED_MESSAGES):
                try:
                    reference.output_shape(spec, shape)
                except reference.InvalidConfig:
                    raise exc from None
                text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # Keras bolds the message
                first = next((ln for ln in text.splitlines() if "interpolation" in ln), text)
                raise Unsupported(f"Keras {self.backend} backend: {first.strip()}") from None
            raise

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by Keras on this backend in the inputs' dtype."""
        layer, _ = self._prepare(spec, inputs, weights)
        y = self._declining(lambda: self._call(layer, np.asarray(inputs)), spec, np.shape(inputs))
        return plain_float(self.keras.ops.convert_to_numpy(y))

    def _call(self, layer: Any, x: np.ndarray) -> Any:
        return layer(self.keras.ops.convert_to_tensor(x))


class KerasJaxAdapter(_KerasBackendAdapter):
    """Keras 3 on the JAX backend (x64 enabled); the layer's stateless_call under jax.jit, as
    model.predict / model.fit run it on this backend; gradients by jax.vjp of that call.

    (jit is also what keeps a run affordable: op-by-op eager dispatch compiles every op for
    every new shape, 4.8 s against 1.6 s per forward+vjp of a Conv2DTranspose here.)
    """

    name = "keras-jax"
    backend = "jax"

    def environment(self) -> dict[str, str]:
        """As the base class, plus how the layer is called."""
        return {**super().environment(), "keras_jax_call": "jax.jit(layer.stateless_call)"}

    def _placeholder_initializers(self, layer: Any) -> None:
        """Every `*_initializer` of the deserialized layer (Keras has parsed and checked them) replaced
        by one that returns NumPy zeros (ml_dtypes for bfloat16): the weights are assigned before any
        call, so drawn values are never used, and on JAX each eager draw compiles new executables per
        shape (about 0.6 s per layer, which would be two thirds of a keras-jax case's time)."""
        unused = _unused_initializer(self.keras)
        for attr in [a for a in vars(layer) if a.endswith("_initializer")]:
            if getattr(layer, attr) is not None:
                setattr(layer, attr, unused)

    def _function(self, spec: dict, inputs: np.ndarray, weights: dict) -> tuple[Any, list[str], list]:
        layer, names = self._prepare(spec, inputs, weights)
        frozen = [v.value for v in layer.non_trainable_variables]

        def f(x, ws):
            return layer.stateless_call(ws, frozen, x)[0]

        return f, names, [weights[n] for n in names]

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by Keras on JAX (jit-compiled) in the inputs' dtype."""
        import jax
        import jax.numpy as jnp

        f, _, ws = self._function(spec, inputs, weights)
        y = self._declining(lambda: jax.jit(f)(jnp.asarray(inputs), [jnp.asarray(w) for w in ws]),
                            spec, np.shape(inputs))
        return plain_float(np.asarray(y))

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (jax.vjp, jit-compiled)."""
        import jax
        import jax.numpy as jnp

        f, names, ws = self._function(spec, inputs, weights)

        def pull(x, ws, g):
            y, pullback = jax.vjp(f, x, ws)
            return pullback(g.astype(y.dtype))

        dx, dws = self._declining(
            lambda: jax.jit(pull)(jnp.asarray(inputs), [jnp.asarray(w) for w in ws], jnp.asarray(output_grad)),
            spec, np.shape(inputs))
        return {"inputs": plain_float(np.asarray(dx)), **{n: plain_float(np.asarray(d)) for n, d in zip(names, dws)}}


class KerasTorchAdapter(_KerasBackendAdapter):
    """Keras 3 on the PyTorch backend (CPU); gradients by torch.autograd."""

    name = "keras-torch"
    backend = "torch"

    def _call(self, layer: Any, x: np.ndarray) -> Any:
        import torch

        with torch.no_grad():
            return super()._call(layer, x)

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (torch.autograd)."""
        import torch

        layer, names = self._prepare(spec, inputs, weights)
        x = self.keras.ops.convert_to_tensor(np.asarray(inputs)).detach().requires_grad_(True)
        y = self._declining(lambda: layer(x), spec, np.shape(inputs))
        variables = {v.name: v.value for v in layer.trainable_variables}
        sources = [x] + [variables[n] for n in names]
        g = self.keras.ops.convert_to_tensor(np.asarray(output_grad)).to(y.dtype)
        grads = torch.autograd.grad(y, sources, grad_outputs=g, allow_unused=True)
        out = {}
        for n, s, d in zip(["inputs"] + names, sources, grads):
            out[n] = plain_float(self.keras.ops.convert_to_numpy(torch.zeros_like(s) if d is None else d))
        return out


class KerasNumpyAdapter(_KerasBackendAdapter):
    """Keras 3 on the NumPy backend (forward only: the backend has no autodiff)."""

    name = "keras-numpy"
    backend = "numpy"

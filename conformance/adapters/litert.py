"""The `litert` and `litert-noxnnpack` adapters: the Keras layer converted with
TensorFlow's TFLite converter and run by the `ai-edge-litert` Interpreter.

The path users take: the layer is rebuilt from the spec by tf.keras (Keras 3,
TensorFlow backend), its weights assigned, its call traced as a
``tf.function`` for the case's input shape, and that concrete function
converted with ``tf.lite.TFLiteConverter.from_concrete_functions`` (the
variables are frozen into constants) with the builtin op set only
(``TFLITE_BUILTINS``): the Python LiteRT interpreter cannot run Flex
(SELECT_TF_OPS) kernels, so a layer whose graph needs one (a dilated
transposed convolution: TRANSPOSE_CONV has no dilation; ResizeBicubic,
ScaleAndTranslate for lanczos, ResizeArea; NCHW kernels) is declined, naming
the TF ops the converter reported.

``litert`` runs with the interpreter's default op resolver (``AUTO``, which
applies the default XNNPACK delegate); ``litert-noxnnpack`` with
``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (LiteRT's own optimized builtin kernels).
float32 only (the converter emits float32 models; float64/float16 are
declined). No gradients. Keras's own errors (configurations Keras rejects)
propagate.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Any

import numpy as np

from conv_conformance.conformance import Unsupported
from conv_conformance.oracle import tf_layers

from .onnxruntime import fingerprint

__all__ = ["LiteRtAdapter", "LiteRtNoXnnpackAdapter"]

_CACHE_SIZE = 8


class LiteRtAdapter:
    """tf.keras layer -> TFLite converter (builtins only) -> ai-edge-litert Interpreter with XNNPACK."""

    name = "litert"
    resolver = "AUTO"
    #: every conversion traces a new tf.function; the harness replaces the worker after this many cases
    cases_per_worker = 500

    def __init__(self) -> None:
        import absl.logging
        from ai_edge_litert import interpreter

        # the converter warns on every call that from_concrete_functions without a trackable object is
        # deprecated; with one it keeps the variables as resources the interpreter leaves uninitialized
        absl.logging.set_verbosity(absl.logging.ERROR)

        self.tf, self.keras = tf_layers._modules("keras3")
        self.tf_layers = tf_layers
        self.interpreter = interpreter
        self._models: OrderedDict[str, Any] = OrderedDict()

    def versions(self) -> dict[str, str]:
        """{"ai_edge_litert": ..., "tensorflow": ..., "keras": ...}."""
        from importlib import metadata

        return {"ai_edge_litert": metadata.version("ai-edge-litert"), "tensorflow": self.tf.__version__,
                "keras": self.keras.__version__}

    def environment(self) -> dict[str, str]:
        """The op resolver (and so whether the XNNPACK delegate runs), threads, converter op set."""
        return {"litert_op_resolver": self.resolver,
                "litert_xnnpack_delegate": str(self.resolver == "AUTO"),
                "litert_num_threads": os.environ.get("OMP_NUM_THREADS", "default"),
                "tflite_converter_ops": "TFLITE_BUILTINS"}

    # -------------------------------------------------------------- conversion
    def _convert(self, spec: dict, inputs: np.ndarray, weights: dict) -> bytes:
        tf = self.tf
        x = np.asarray(inputs)
        layer = self.tf_layers.construct(spec, flavour="keras3", dtype="float32")
        layer.build(x.shape)
        names = [v.name for v in layer.weights]
        if set(names) != set(weights or {}):
            raise ValueError(f"{spec['class_name']} (litert) has the weights {sorted(names)}; "
                             f"received weights named {sorted(weights or {})}")
        for v in layer.weights:
            v.assign(np.asarray(weights[v.name]))
        function = tf.function(lambda t: layer(t))
        concrete = function.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])  # variables frozen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as exc:  # noqa: BLE001 - ConverterError
            text = str(exc)
            select = re.search(r"TF Select ops: ([^\n]+)", text)
            custom = re.search(r"Custom ops: ([^\n]+)", text)
            if select:
                raise Unsupported(f"the TFLite converter needs Flex (SELECT_TF_OPS) kernels for "
                                  f"{select.group(1).strip()}, which the LiteRT Python interpreter cannot run") from None
            if custom:
                raise Unsupported(f"TFLite has no builtin for {custom.group(1).strip()} (a custom op would have "
                                  "to be written)") from None
            raise

    def _interpreter(self, spec: dict, inputs: np.ndarray, weights: dict) -> Any:
        dtype = np.asarray(inputs).dtype.name
        if dtype != "float32":
            raise Unsupported(f"litert scores float32 only (the TFLite converter emits float32 models); "
                              f"received {dtype}")
        key = fingerprint(spec, inputs, weights)
        it = self._models.get(key)
        if it is None:
            model = self._convert(spec, inputs, weights)
            it = self.interpreter.Interpreter(
                model_content=model, num_threads=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
                experimental_op_resolver_type=getattr(self.interpreter.OpResolverType, self.resolver))
            it.allocate_tensors()
            self._models[key] = it
            if len(self._models) > _CACHE_SIZE:
                self._models.popitem(last=False)
        return it

    def ops(self, spec: dict, inputs: np.ndarray, weights: dict) -> list[str]:
        """The TFLite operators of the converted model as the interpreter runs them (DELEGATE = XNNPACK)."""
        return [o["op_name"] for o in self._interpreter(spec, inputs, weights)._get_ops_details()]

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output computed by the LiteRT interpreter on the converted model (float32)."""
        it = self._interpreter(spec, inputs, weights)
        if np.size(inputs) == 0:
            raise Unsupported("the LiteRT Python interpreter cannot pass zero-size tensors: set_tensor and "
                              "get_tensor raise ValueError('Invalid tensor size.')")
        it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(inputs))
        it.invoke()
        return np.array(it.get_tensor(it.get_output_details()[0]["index"]))


class LiteRtNoXnnpackAdapter(LiteRtAdapter):
    """As `litert`, with the interpreter's builtin kernels only (no default XNNPACK delegate)."""

    name = "litert-noxnnpack"
    resolver = "BUILTIN_WITHOUT_DEFAULT_DELEGATES"

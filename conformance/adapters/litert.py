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
No gradients. Keras's own errors (configurations Keras rejects) propagate.

dtypes. float32. float16 on ``litert`` only, through the one float16 path LiteRT
has on a CPU: XNNPACK's half-precision inference, switched on for a float32
model with the delegate flag ``TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16``
(CompiledModel API, ``CpuOptions.xnnpack_flags``; the Interpreter API has no
way to pass it). The model's inputs and outputs stay float32 (the float16 case
inputs convert exactly); XNNPACK converts them to float16 at the boundary and
computes its operators in float16 (on x86 with AVX2 and F16C). Declined, with
the reason: a float16 model (TFLite has no float16 builtin kernels, so the
converter asks for Flex ops), ``inference_input_type=tf.float16`` (the
converter requires float32 inputs and outputs), float16 weight quantization
(``supported_types=[tf.float16]`` stores the weights in float16 and
dequantizes them to float32 at load: the inputs and the arithmetic stay
float32), float16 on ``litert-noxnnpack`` (the builtin kernels have no float16
arithmetic), bfloat16 (TFLite has no bfloat16 kernels and XNNPACK's delegate
no bfloat16 flag) and float64.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported
from conv_conformance.oracle import tf_layers

from .onnxruntime import fingerprint

__all__ = ["LiteRtAdapter", "LiteRtNoXnnpackAdapter"]

_CACHE_SIZE = 8
#: TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16 (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h):
#: "Force FP16 inference for FP32 operators"
XNNPACK_FLAG_FORCE_FP16 = 0x4


class LiteRtAdapter:
    """tf.keras layer -> TFLite converter (builtins only) -> ai-edge-litert Interpreter with XNNPACK."""

    name = "litert"
    resolver = "AUTO"
    #: the dtypes scored; float16 runs the float32 model under XNNPACK's FORCE_FP16 flag
    dtypes = ("float32", "float16")
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
        self._litert_environment: Any = None  # created with the first float16 model

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
                "tflite_converter_ops": "TFLITE_BUILTINS",
                "litert_float16": ("float32 model, CompiledModel CPU with XNNPACK flag FORCE_FP16 "
                                   f"({XNNPACK_FLAG_FORCE_FP16:#x})" if "float16" in self.dtypes else "declined")}

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

    def _check_dtype(self, dtype: str) -> None:
        if dtype in self.dtypes:
            return
        why = {"float16": "LiteRT's builtin kernels have no float16 arithmetic (a float16 graph needs Flex ops, the "
                          "converter's inference_input_type must be float32, and float16 weight quantization "
                          "dequantizes to float32); its one float16 path is XNNPACK's FORCE_FP16, scored by `litert`",
               "bfloat16": "TFLite has no bfloat16 kernels and the XNNPACK delegate no bfloat16 inference flag",
               "float64": "the TFLite converter emits float32 models"}
        raise Unsupported(f"{self.name} scores {', '.join(self.dtypes)}; received {dtype}: "
                          f"{why.get(dtype, 'not a dtype LiteRT computes in')}")

    def _interpreter(self, spec: dict, inputs: np.ndarray, weights: dict) -> Any:
        self._check_dtype(np.asarray(inputs).dtype.name)
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

    def _fp16_model(self, spec: dict, inputs: np.ndarray, weights: dict) -> Any:
        """The converted float32 model compiled for the CPU with XNNPACK's FORCE_FP16 flag."""
        from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, HardwareAccelerator, Options

        key = "fp16:" + fingerprint(spec, inputs, weights)
        model = self._models.get(key)
        if model is None:
            # the float16 case inputs and weights are float32 values exactly: the conversion is the float32 one
            x32 = np.asarray(inputs).astype(np.float32)
            w32 = {k: np.asarray(v).astype(np.float32) for k, v in (weights or {}).items()}
            options = Options(HardwareAccelerator.CPU, cpu_options=CpuOptions(
                num_threads=int(os.environ.get("OMP_NUM_THREADS", "1") or 1), xnnpack_flags=XNNPACK_FLAG_FORCE_FP16))
            model = CompiledModel.from_buffer(self._convert(spec, x32, w32), environment=self._environment(),
                                              options=options)
            self._models[key] = model
            if len(self._models) > _CACHE_SIZE:
                self._models.popitem(last=False)
        return model

    def _environment(self) -> Any:
        """One LiteRT environment for every compiled model of this adapter (the default makes one per model)."""
        if self._litert_environment is None:
            import ai_edge_litert
            from ai_edge_litert.environment import Environment

            self._litert_environment = Environment.create(runtime_path=os.path.dirname(ai_edge_litert.__file__))
        return self._litert_environment

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output computed by LiteRT on the converted model: the interpreter at float32,
        XNNPACK's float16 inference (FORCE_FP16) at float16."""
        if np.asarray(inputs).dtype.name == "float16" and "float16" in self.dtypes:
            return self._forward_fp16(spec, inputs, weights)
        it = self._interpreter(spec, inputs, weights)
        if np.size(inputs) == 0:
            raise Unsupported("the LiteRT Python interpreter cannot pass zero-size tensors: set_tensor and "
                              "get_tensor raise ValueError('Invalid tensor size.')")
        it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(inputs))
        it.invoke()
        return np.array(it.get_tensor(it.get_output_details()[0]["index"]))

    def _forward_fp16(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        if np.size(inputs) == 0:
            raise Unsupported("LiteRT's CompiledModel cannot pass zero-size tensors")
        model = self._fp16_model(spec, inputs, weights)
        shape = tuple(reference.output_shape(reference.normalize(spec), np.shape(inputs)))
        ins, outs = model.create_input_buffers(0), model.create_output_buffers(0)
        ins[0].write(np.ascontiguousarray(inputs, dtype=np.float32))
        model.run_by_index(0, ins, outs)
        # float32 holding XNNPACK's float16 results, as the runtime hands them to a user
        return outs[0].read(int(np.prod(shape)), np.float32).reshape(shape)


class LiteRtNoXnnpackAdapter(LiteRtAdapter):
    """As `litert`, with the interpreter's builtin kernels only (no default XNNPACK delegate)."""

    name = "litert-noxnnpack"
    resolver = "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
    dtypes = ("float32",)

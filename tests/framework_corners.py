"""Conditions of divergences that the test tables use, read from the catalogue of known findings.

Every condition lives once, as data, in ``conformance/findings/catalogue.json`` (its entries and
named ``definitions``); the functions below evaluate it for one case in this process, with the
environment the frameworks report now (conformance.environment: TensorFlow's oneDNN, PyTorch's
mkldnn, the ISA oneDNN dispatches to), so a pin holds on every machine: Intel or AMD, with or
without AVX-512, oneDNN on or off (TF_ENABLE_ONEDNN_OPTS), oneDNN capped by ONEDNN_MAX_CPU_ISA.
Runs read the same conditions from the environment their report records.
"""
from __future__ import annotations

from typing import Any, Sequence

import pytest

from conv_conformance import reference
from conv_conformance.conformance import environment, findings


def environment_record(*frameworks: str) -> dict[str, Any]:
    """The environment fields the catalogue's conditions read, for the frameworks named (each
    imported first: its state is its own, read after import)."""
    env: dict[str, Any] = {"cpu": environment.cpu_info()}
    env["onednn_isa"] = environment.onednn_isa(env["cpu"])
    if "tensorflow" in frameworks:
        import tensorflow  # noqa: F401

        env["tensorflow"] = {"onednn": str(environment.tensorflow_onednn())}
    if "torch" in frameworks:
        import torch  # noqa: F401

        env["torch"] = {"mkldnn": str(environment.torch_mkldnn())}
    return env


def _holds(name: str, spec: dict, input_shape: Sequence[int], dtype: str = "float32", env: dict | None = None) -> bool:
    return findings.load().holds(name, spec, list(input_shape), dtype, env or {})


_ANY_CONV = ({"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1}}, [1, 1, 1, 1])


def definition_holds(name: str, dtype: str, env: dict) -> bool:
    """A catalogue condition that reads only the dtype and the environment (which kernels run),
    evaluated for any convolution."""
    return _holds(name, *_ANY_CONV, dtype, env)


def bias_on_last_axis(spec: dict, input_shape) -> bool:
    """K2's shape condition (the catalogue's case fact ``bias_on_last_axis``): a bias under
    channels_first where, before the activation (glu halves the last axis after the bias), the
    last spatial extent equals the channel count (> 1)."""
    return bool(findings.facts(spec, list(input_shape)).get("bias_on_last_axis"))


def onednn_one_channel_corner(spec: dict, input_shape, gradient: bool = False) -> bool:
    """O1's shape condition (catalogue definitions ``onednn_one_channel_corner_forward`` and, with
    ``gradient``, ``onednn_one_channel_corner``): a 2-D or 3-D convolution (plain; at rank 2 also
    depthwise or separable) with one input channel, a last stride larger than the smallest of the
    others and an output extent of 1 along the last spatial axis, where oneDNN's float32 kernels
    dispatched to AVX-512 can return memory they never wrote; with ``gradient`` also a transposed
    convolution's input gradient (one filter, an input extent of 1 along the last axis). A
    necessary condition: not every such shape shows it."""
    name = "onednn_one_channel_corner" if gradient else "onednn_one_channel_corner_forward"
    return _holds(name, spec, input_shape)


def tf_conv3d_same_stride_beyond_kernel(spec: dict, input_shape, dtype: str) -> bool:
    """K14: Conv3D 'same' with a total padding (out - 1)*s + d*(k - 1) + 1 - n of -2 or less on
    some axis, in a dtype TensorFlow's native kernels compute (float64 and float16; float32 and
    bfloat16 where oneDNN is off): TensorFlow computes wrong values there."""
    return _holds("K14", spec, input_shape, dtype, environment_record("tensorflow"))


def conv3d_transpose_input_gradient_corner(spec: dict) -> bool:
    """K15: Conv3DTranspose's input gradient is wrong under padding='same' or an output_padding > 0."""
    return _holds("K15", spec, [])


def tf_onednn() -> bool:
    """TensorFlow runs its oneDNN kernels in this process (on by default where the CPU has
    AVX-512 VNNI/BF16 or AMX; TF_ENABLE_ONEDNN_OPTS overrides)."""
    return environment_record("tensorflow")["tensorflow"]["onednn"] == "True"


def tf_native_kernels(dtype: str) -> bool:
    """Definition ``tf_native_kernels``: TensorFlow's own (Eigen) CPU kernels compute this dtype
    (float64 and float16 always, float32 and bfloat16 when oneDNN is off): NHWC only, equal depthwise strides only, no
    dilated transposed convolution (K1, K4, K5, K7, T1, T7)."""
    return findings.load().holds("tf_native_kernels", {"class_name": "Conv2D", "config": {"filters": 1, "kernel_size": 1}},
                                 [1, 1, 1, 1], dtype, environment_record("tensorflow"))


def tf_depthwise_batch0_unwritten(spec: dict, input_shape, dtype: str) -> bool:
    """K17: TensorFlow's native DepthwiseConv2dNativeBackpropFilter (Keras DepthwiseConv1D/2D,
    SeparableConv1D/2D) on a batch of 0 leaves the depthwise kernel gradient unwritten."""
    return _holds("K17", spec, input_shape, dtype, environment_record("tensorflow"))


def tf_onednn_batch0_returns_input(spec: dict, input_shape, dtype: str, *, gradient: bool = False) -> bool:
    """O3: TensorFlow's oneDNN float32/bfloat16 convolution on a batch of 0 returns its (padded)
    input. The transposed convolutions meet it through their input gradient only, so they count
    with ``gradient``."""
    family = reference.LAYERS[reference.normalize(spec)["class_name"]].family
    return (gradient or family != "conv_transpose") and _holds("O3", spec, input_shape, dtype, environment_record("tensorflow"))


def tf_strided_1x1_kernel_gradient_unstable(spec: dict, input_shape, dtype: str) -> bool:
    """O4: TensorFlow's oneDNN below AVX-512, float32, 1x1 kernel, Conv2D with the last stride
    larger than the first or Conv2DTranspose with a stride above 1: the kernel gradient is wrong
    on some calls."""
    return _holds("O4", spec, input_shape, dtype, environment_record("tensorflow"))


def onednn_avx512(framework: str) -> bool:
    """Definition ``onednn_avx512`` for one framework: its oneDNN kernels run and dispatch to
    AVX-512 (the CPU has it and ONEDNN_MAX_CPU_ISA does not cap it): where O1 returns unwritten memory."""
    return definition_holds("onednn_avx512", "float32", environment_record(framework))


def tf_routes_to_onednn(dtype: str) -> bool:
    """TensorFlow's own test of the CPU for sending ``dtype`` ops to oneDNN
    (``IsDataTypeSupportedByOneDNNOnThisCPU`` in tensorflow/core/util/util.cc: bfloat16 with
    AVX512F or AVX_NE_CONVERT; float16 with AVX512BW and AVX512_FP16 or AMX_FP16, or with
    AVX_NE_CONVERT). The catalogue's definitions read the CPU flags a report records instead."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_utils

    return bool(_pywrap_utils.IsDataTypeSupportedByOneDNNOnThisCPU(tf.as_dtype(dtype).as_datatype_enum))


def onednn_low_precision_missing(dtype: str) -> bool:
    """O2's condition at ``dtype``: TensorFlow runs oneDNN, the CPU's flags made TF send ``dtype``
    convolutions to oneDNN (definitions ``onednn_bf16_missing``, ``onednn_f16_missing``) and
    ONEDNN_MAX_CPU_ISA caps oneDNN below AVX-512, where it has no such convolution. An AVX2-only
    CPU does not meet it."""
    return definition_holds("O2", dtype, environment_record("tensorflow"))


def xfail_where_onednn_lacks(request: Any, dtype: str, **kwargs: Any) -> None:
    """Mark the calling test a strict xfail where O2 holds at ``dtype`` (TensorFlow's oneDNN,
    capped below AVX-512, aborts the convolution); ``kwargs`` go to ``pytest.mark.xfail``."""
    if onednn_low_precision_missing(dtype):
        request.applymarker(pytest.mark.xfail(
            strict=True, reason=f"TF oneDNN below AVX-512 has no {dtype} convolution: AbortedError (O2)", **kwargs))


def keras2_depthwise_accepts_a_kernel_longer_than_the_input(adapter: str, spec: dict, input_shape) -> bool:
    """T10's condition for an invalid case scored through ``adapter``, with the installed tf_keras
    within the entry's version range."""
    catalogue = findings.load()
    versions = catalogue["T10"].versions
    if adapter not in catalogue["T10"].adapters:
        return False
    import tf_keras

    return (findings.version_in_range(tf_keras.__version__, versions["tf_keras"])
            and catalogue.holds("T10", spec, list(input_shape), "float32", {}, kind="invalid", adapter=adapter))


def environment_summary() -> str:
    """One line naming what the conditions above read, for test ids and messages."""
    return f"oneDNN ISA {environment.onednn_isa()}, CPU {environment.cpu_info()['vendor']}"

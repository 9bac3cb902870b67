"""Framework-independent conditions of divergences that more than one test table uses."""
from __future__ import annotations

from conv_conformance import reference
from conv_conformance.conformance import environment


def onednn_one_channel_corner(spec: dict, input_shape, gradient: bool = False) -> bool:
    """docs/divergences.md O1: a 2-D or 3-D convolution (plain; at rank 2 also depthwise or
    separable) with one input channel, a last stride larger than the smallest of the others and
    an output extent of 1 along the last spatial axis, where oneDNN's float32 kernels (TensorFlow
    and PyTorch CPU) dispatched to AVX-512 can return memory they never wrote. With ``gradient``
    also a transposed convolution's input gradient, which is such a convolution of the output
    gradient: one filter, and an input extent of 1 along the last spatial axis. A necessary
    condition: not every such shape shows it (no shape outside it did, of 446 one-channel
    shapes drawn for keras and torch)."""
    spec = reference.normalize(spec)
    layer, cfg = reference.LAYERS[spec["class_name"]], spec["config"]
    if layer.family not in ("conv", "depthwise", "separable", "conv_transpose") or layer.rank not in (2, 3) \
            or not cfg["strides"][-1] > min(cfg["strides"][:-1]):
        return False
    first = cfg["data_format"] == "channels_first"
    channels, last = (input_shape[1], input_shape[-1]) if first else (input_shape[-1], input_shape[-2])
    if layer.family in ("conv", "depthwise", "separable"):
        out = reference.output_shape(spec, input_shape)
        return channels == 1 and out[-1 if first else -2] == 1
    return gradient and layer.family == "conv_transpose" and cfg["filters"] == 1 and last == 1


def conv3d_same_stride_beyond_kernel(spec: dict, input_shape) -> bool:
    """docs/divergences.md K14: Conv3D with padding='same' where the total 'same' padding
    (out - 1)*s + d*(k - 1) + 1 - n of an axis is -2 or less (the stride exceeds the kernel's
    span by 2 or more); TensorFlow computes wrong values there at float64 and float16 (not
    float32). At -1 it is right (measured over n < 8, k < 4, s < 5: 6 wrong, all at <= -2;
    12 right at -1), as if half the negative total were taken as the leading padding."""
    spec = reference.normalize(spec)
    layer, cfg = reference.LAYERS[spec["class_name"]], spec["config"]
    if layer.family != "conv" or layer.rank != 3 or cfg["padding"] != "same":
        return False
    first = cfg["data_format"] == "channels_first"
    spatial = input_shape[2:] if first else input_shape[1:-1]
    return any((-(-n // s) - 1) * s + d * (k - 1) + 1 - n <= -2 for n, k, s, d in
               zip(spatial, cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]))


def conv3d_transpose_input_gradient_corner(spec: dict) -> bool:
    """docs/divergences.md K15: Conv3DTranspose's input gradient is wrong under padding='same'
    or with an output_padding > 0."""
    spec = reference.normalize(spec)
    cfg = spec["config"]
    return spec["class_name"] == "Conv3DTranspose" and (
        cfg["padding"] == "same" or max(cfg["output_padding"] or [0]) > 0)


# ---------------------------------------------------------------- the environment
# Which CPU kernels run decides several divergences. Each predicate below asks the
# framework itself (conformance.environment), so a condition holds on every machine:
# Intel or AMD, with or without AVX-512, oneDNN on or off (TF_ENABLE_ONEDNN_OPTS),
# and with oneDNN capped by ONEDNN_MAX_CPU_ISA.

def tf_onednn() -> bool:
    """TensorFlow runs its oneDNN kernels in this process (on by default where the CPU has
    AVX-512 VNNI/BF16 or AMX; TF_ENABLE_ONEDNN_OPTS overrides)."""
    import tensorflow  # noqa: F401 - the state is TensorFlow's own, read after import

    return bool(environment.tensorflow_onednn())


def tf_native_kernels(dtype: str) -> bool:
    """TensorFlow's own (Eigen) CPU kernels compute this dtype: float64 always, float32 when
    oneDNN is off. They take NHWC only, equal depthwise strides only and no dilated
    transposed convolution (docs/divergences.md K1, K4, K5, K7, T1, T7); oneDNN's float32
    kernels lift those limits."""
    return dtype == "float64" or (dtype == "float32" and not tf_onednn())


def tf_depthwise_batch0_unwritten(spec: dict, input_shape, dtype: str) -> bool:
    """docs/divergences.md K17: TensorFlow's native DepthwiseConv2dNativeBackpropFilter (Keras
    DepthwiseConv1D/2D, SeparableConv1D/2D) on a batch of 0 returns the depthwise kernel
    gradient without writing it (memory left by earlier work, not 0). The native kernel runs at
    float64 and float16 always, at float32 and bfloat16 when TensorFlow's oneDNN is off."""
    family = reference.LAYERS[reference.normalize(spec)["class_name"]].family
    native = dtype in ("float64", "float16") or (dtype in ("float32", "bfloat16") and not tf_onednn())
    return family in ("depthwise", "separable") and input_shape[0] == 0 and native


def tf_onednn_batch0_returns_input(spec: dict, input_shape, dtype: str, *, gradient: bool = False) -> bool:
    """docs/divergences.md O3: TensorFlow's oneDNN float32/bfloat16 convolution (Conv2D, Conv3D,
    DepthwiseConv2dNative: Keras Conv/Depthwise/Separable forward, ConvTranspose's input
    gradient) on a batch of 0 returns its (padded) input instead of an empty tensor of the output
    shape; what follows then raises or has the wrong shape. oneDNN on (any ISA); native kernels
    and float64/float16 are right."""
    family = reference.LAYERS[reference.normalize(spec)["class_name"]].family
    convs = ("conv", "depthwise", "separable") + (("conv_transpose",) if gradient else ())
    return (family in convs and input_shape[0] == 0 and dtype in ("float32", "bfloat16")
            and tf_onednn())


def onednn_avx512(framework: str) -> bool:
    """`framework`'s oneDNN kernels run and dispatch to AVX-512 (the CPU has it and
    ONEDNN_MAX_CPU_ISA does not cap it): the ISA where O1 returns unwritten memory."""
    if framework == "tensorflow":
        active = tf_onednn()
    else:
        import torch  # noqa: F401 - the state is PyTorch's own, read after import

        active = bool(environment.torch_mkldnn())
    return active and environment.onednn_isa() == "avx512"


def tf_routes_bf16_to_onednn() -> bool:
    """TensorFlow sends bfloat16 ops to oneDNN: its own test of the CPU (AVX512F or AVX_NE_CONVERT
    in TF 2.21's IsDataTypeSupportedByOneDNNOnThisCPU), which reads the CPU's features and not
    ONEDNN_MAX_CPU_ISA. Otherwise TF runs bfloat16 with its Eigen kernels."""
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_utils

    return bool(_pywrap_utils.IsDataTypeSupportedByOneDNNOnThisCPU(tf.bfloat16.as_datatype_enum))


def onednn_bf16_missing() -> bool:
    """docs/divergences.md O2: TensorFlow runs oneDNN, sends bfloat16 convolutions to it because the
    CPU has AVX-512 (tf_routes_bf16_to_onednn), and ONEDNN_MAX_CPU_ISA caps oneDNN below AVX-512,
    where it has no bfloat16 convolution: TF raises AbortedError ("could not create a primitive
    descriptor"). An AVX2-only CPU does not meet it: TF falls back to Eigen and the case runs."""
    return tf_onednn() and tf_routes_bf16_to_onednn() and environment.onednn_isa() != "avx512"


def environment_summary() -> str:
    """One line naming what the conditions above read, for test ids and messages."""
    return f"oneDNN ISA {environment.onednn_isa()}, CPU {environment.cpu_info()['vendor']}"

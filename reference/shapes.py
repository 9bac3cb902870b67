"""Config validation and output-shape arithmetic: the one source of truth.

Every package of the suite (the reference, the oracle, the harness, the
adapters) asks this module what a layer spec means: which arguments it takes,
their defaults, which values Keras rejects, and what shape comes out.

A *spec* is Keras's own serialization, ``{"class_name": ..., "config": ...}``.
:func:`normalize` returns the spec with every argument that affects the result
explicit (defaults filled in, tuples as lists, strings lower-cased), and raises
:class:`InvalidConfig` for every configuration Keras 3 rejects.

Shape rules, per spatial dimension with input length ``n``, kernel ``k``,
stride ``s``, dilation ``d`` and effective kernel ``K = d*(k-1) + 1``:

* convolution, ``valid``:  ``floor((n - K) / s) + 1`` (must be >= 1)
* convolution, ``same`` and ``causal``: ``ceil(n / s)``
* transposed convolution, ``valid``: ``(n-1)*s + K + op``, with
  ``op = max(K, s) - K`` when ``output_padding`` is None
* transposed convolution, ``same``: ``n*s`` when ``output_padding`` is None,
  else ``(n-1)*s + K % 2 + op``
* cropping ``n - a - b``; zero padding ``n + a + b``; upsampling ``n * size``
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from . import training_args
from .errors import InvalidConfig

__all__ = [
    "InvalidConfig",
    "ACTIVATIONS",
    "INTERPOLATIONS",
    "LAYERS",
    "Layer",
    "normalize",
    "layer_of",
    "output_shape",
    "check_input_shape",
    "weight_shapes",
    "checked_output_shape",
    "checked_weight_shapes",
    "same_padding",
    "causal_padding",
    "conv_padding",
    "transpose_crop",
    "upsampling_factors",
    "sample_points",
]


# Every name `keras.activations.get` resolves in Keras 3.15 and that can be
# called with one argument (`threshold` needs two, so Keras fails on it).
ACTIVATIONS = (
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu",
    "sigmoid", "hard_sigmoid", "sparse_sigmoid", "log_sigmoid", "tanh",
    "hard_tanh", "tanh_shrink", "softplus", "softsign", "sparse_plus",
    "squareplus", "silu", "swish", "hard_silu", "hard_swish", "mish",
    "exponential", "soft_shrink", "hard_shrink", "softmax", "log_softmax",
    "sparsemax", "glu",
)
# The values `keras.ops.image.resize` accepts (TensorFlow backend).
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")

DATA_FORMATS = ("channels_last", "channels_first")

# Keyword arguments Keras layers take that cannot change the computed value
# once the weights are given; a spec may carry them and normalize drops them.
_IGNORED = frozenset({
    "name", "trainable", "dtype", "autocast", "input_shape", "batch_input_shape",
    "lora_rank", "lora_alpha",
})  # the training-time arguments (initializers, ...) are arguments: see reference.training


@dataclass(frozen=True)
class Layer:
    """What a layer class is: its family, its spatial rank, its arguments."""

    name: str
    family: str  # conv | conv_transpose | depthwise | separable | cropping | zero_padding | upsampling
    rank: int
    arguments: tuple[str, ...]


def _family_arguments(family: str, rank: int) -> tuple[str, ...]:
    return _layer_arguments(family, rank) + training_args.training_arguments(family)


def _layer_arguments(family: str, rank: int) -> tuple[str, ...]:
    conv_common = ("kernel_size", "strides", "padding", "data_format", "dilation_rate")
    return {
        "conv": ("filters",) + conv_common + ("groups", "activation", "use_bias"),
        "conv_transpose": ("filters",) + conv_common[:3] + ("output_padding",)
        + conv_common[3:] + ("activation", "use_bias"),
        "depthwise": conv_common + ("depth_multiplier", "activation", "use_bias"),
        "separable": ("filters",) + conv_common + ("depth_multiplier", "activation", "use_bias"),
        "cropping": ("cropping",) if rank == 1 else ("cropping", "data_format"),
        "zero_padding": ("padding", "data_format"),
        "upsampling": ("size",) if rank == 1 else
        (("size", "data_format", "interpolation") if rank == 2 else ("size", "data_format")),
    }[family]


def _build_layers() -> dict[str, Layer]:
    table = {}
    for rank in (1, 2, 3):
        names = {
            f"Conv{rank}D": "conv",
            f"Conv{rank}DTranspose": "conv_transpose",
            f"Cropping{rank}D": "cropping",
            f"ZeroPadding{rank}D": "zero_padding",
            f"UpSampling{rank}D": "upsampling",
        }
        if rank < 3:
            names[f"DepthwiseConv{rank}D"] = "depthwise"
            names[f"SeparableConv{rank}D"] = "separable"
        for name, family in names.items():
            table[name] = Layer(name, family, rank, _family_arguments(family, rank))
    return table


LAYERS: dict[str, Layer] = _build_layers()
_CONV_FAMILIES = ("conv", "conv_transpose", "depthwise", "separable")


def layer_of(spec: dict) -> Layer:
    """The :class:`Layer` a spec names; InvalidConfig for an unknown class."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise InvalidConfig("spec", "class_name", "must be given in a dict "
                            '{"class_name": ..., "config": {...}}', spec)
    name = spec["class_name"]
    if name not in LAYERS:
        raise InvalidConfig(str(name), "class_name", f"must be one of {sorted(LAYERS)}", name)
    return LAYERS[name]


# ---------------------------------------------------------------- validators

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_tuple(layer: str, arg: str, value: Any, n: int, *, minimum: int) -> list[int]:
    """Keras's `standardize_tuple`: an int, or a sequence of n ints, each >= minimum."""
    rule = (f"must be an integer or a list of {n} integers, each >= {minimum}"
            if n > 1 else f"must be an integer >= {minimum} (or a list of one)")
    if _is_int(value):
        out = [value] * n
    elif isinstance(value, (list, tuple)) and len(value) == n and all(_is_int(v) for v in value):
        out = list(value)
    else:
        raise InvalidConfig(layer, arg, rule, value)
    if any(v < minimum for v in out):
        raise InvalidConfig(layer, arg, rule, value)
    return out


def _positive_int(layer: str, arg: str, value: Any) -> int:
    if not _is_int(value) or value <= 0:
        raise InvalidConfig(layer, arg, "must be a strictly positive integer", value)
    return value


def _choice(layer: str, arg: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in allowed:
        raise InvalidConfig(layer, arg, f"must be one of {', '.join(map(repr, allowed))}", value)
    return value.lower()


def _pairs(layer: str, arg: str, value: Any, rank: int) -> list[list[int]]:
    """Cropping/ZeroPadding amounts: int, `rank` ints (symmetric), or `rank` pairs."""
    rule = (f"must be a non-negative integer, a list of {rank} non-negative integers, "
            f"or a list of {rank} pairs of non-negative integers")
    if rank == 1:
        return [_int_tuple(layer, arg, value, 2, minimum=0)]
    if _is_int(value):
        if value < 0:
            raise InvalidConfig(layer, arg, rule, value)
        return [[value, value] for _ in range(rank)]
    if not isinstance(value, (list, tuple)) or len(value) != rank:
        raise InvalidConfig(layer, arg, rule, value)
    try:
        return [_int_tuple(layer, arg, v, 2, minimum=0) for v in value]
    except InvalidConfig:
        raise InvalidConfig(layer, arg, rule, value) from None


# -------------------------------------------------------------- normalize

def normalize(spec: dict) -> dict:
    """The spec with every result-affecting argument explicit and validated.

    Raises InvalidConfig for anything Keras 3 rejects at construction.
    """
    layer = layer_of(spec)
    config = spec.get("config", {}) or {}
    if not isinstance(config, dict):
        raise InvalidConfig(layer.name, "config", "must be a dict of keyword arguments", config)
    unknown = sorted(set(config) - set(layer.arguments) - _IGNORED)
    if unknown:
        raise InvalidConfig(layer.name, unknown[0],
                            f"is not an argument of {layer.name}; it takes {list(layer.arguments)}",
                            config[unknown[0]])
    L, r, get = layer.name, layer.rank, config.get
    out: dict[str, Any] = {}
    if "data_format" in layer.arguments:
        df = get("data_format")
        out["data_format"] = "channels_last" if df is None else _choice(L, "data_format", df, DATA_FORMATS)
    if layer.family in _CONV_FAMILIES:
        _normalize_conv(layer, config, out)
    elif layer.family == "cropping":
        default = {1: [1, 1], 2: 0, 3: 1}[r]
        out["cropping"] = _pairs(L, "cropping", get("cropping", default), r)
        if r == 1:
            out["cropping"] = out["cropping"][0]
    elif layer.family == "zero_padding":
        out["padding"] = _pairs(L, "padding", get("padding", 1), r)
        if r == 1:
            out["padding"] = out["padding"][0]
    else:  # upsampling
        size = get("size", 2)
        if r == 1:
            out["size"] = _positive_int(L, "size", size)
        else:
            out["size"] = _int_tuple(L, "size", size, r, minimum=1)
        if r == 2:
            out["interpolation"] = _choice(L, "interpolation", get("interpolation", "nearest"),
                                           INTERPOLATIONS)
    ordered = {k: out[k] for k in layer.arguments}
    return {"class_name": layer.name, "config": ordered}


def _normalize_conv(layer: Layer, config: dict, out: dict) -> None:
    L, r, fam, get = layer.name, layer.rank, layer.family, config.get
    if "filters" in layer.arguments:
        if "filters" not in config:
            raise InvalidConfig(L, "filters", "is required", None)
        out["filters"] = _positive_int(L, "filters", get("filters"))
    if "kernel_size" not in config:
        raise InvalidConfig(L, "kernel_size", "is required", None)
    out["kernel_size"] = _int_tuple(L, "kernel_size", get("kernel_size"), r, minimum=1)
    out["strides"] = _int_tuple(L, "strides", get("strides", 1), r, minimum=1)
    out["dilation_rate"] = _int_tuple(L, "dilation_rate", get("dilation_rate", 1), r, minimum=1)
    paddings = ("valid", "same", "causal") if fam == "conv" and r == 1 else ("valid", "same")
    out["padding"] = _choice(L, "padding", get("padding", "valid"), paddings)
    if fam == "conv":
        out["groups"] = _positive_int(L, "groups", get("groups", 1))
        if out["filters"] % out["groups"]:
            raise InvalidConfig(L, "groups", f"must divide filters={out['filters']}", out["groups"])
    if fam in ("depthwise", "separable"):
        out["depth_multiplier"] = _positive_int(L, "depth_multiplier", get("depth_multiplier", 1))
    if fam == "conv_transpose":
        op = get("output_padding")
        out["output_padding"] = None if op is None else _int_tuple(L, "output_padding", op, r, minimum=0)
        if op is not None and any(p >= s for p, s in zip(out["output_padding"], out["strides"])):
            raise InvalidConfig(L, "output_padding", f"must be strictly less than strides={out['strides']} "
                                "in every dimension", op)
    # Conv and ConvTranspose reject the combination in their constructors;
    # Depthwise and Separable accept it (Keras decomposes it on TensorFlow).
    if fam in ("conv", "conv_transpose") and max(out["strides"]) > 1 and max(out["dilation_rate"]) > 1:
        raise InvalidConfig(L, "dilation_rate", f"must be 1 when strides={out['strides']} has a value > 1",
                            out["dilation_rate"])
    act = get("activation")
    out["activation"] = "linear" if act is None else _choice(L, "activation", act, ACTIVATIONS)
    use_bias = get("use_bias", True)
    # Keras stores any value and tests its truth; a spec says what it means with a bool
    if not isinstance(use_bias, (bool, int)) or use_bias not in (0, 1):
        raise InvalidConfig(L, "use_bias", "must be True or False (or 1 or 0)", use_bias)
    out["use_bias"] = bool(use_bias)
    training_args.normalize_training(layer, config, out)


# --------------------------------------------------------- padding arithmetic

def same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding: total = max((ceil(n/s) - 1)*s + K - n, 0),
    the odd element at the end."""
    total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def causal_padding(k: int, d: int) -> tuple[int, int]:
    """'causal' pads d*(k-1) zeros before the sequence and none after."""
    return d * (k - 1), 0


def upsampling_factors(cfg: dict, rank: int) -> list[int]:
    """An UpSampling layer's size per spatial dimension (UpSampling1D has one int)."""
    return [cfg["size"]] if rank == 1 else list(cfg["size"])


def sample_points(n: int, scale: int) -> list[float]:
    """The input coordinate each of the n*scale outputs of an interpolating resize samples:
    half-pixel centres, (o + 0.5)/scale - 0.5 (Keras 3 / tf.image.resize)."""
    return [(o + 0.5) / scale - 0.5 for o in range(n * scale)]


def conv_padding(cfg: dict, spatial) -> list[tuple[int, int]]:
    """(before, after) zeros per spatial dimension of a convolution-family layer:
    none for 'valid', TensorFlow's split for 'same', d*(k-1) before for 'causal'."""
    k, s, d = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
    if cfg["padding"] == "valid":
        return [(0, 0)] * len(spatial)
    if cfg["padding"] == "causal":
        return [causal_padding(k[0], d[0])]
    return [same_padding(n, *ksd) for n, ksd in zip(spatial, zip(k, s, d))]


def transpose_crop(n: int, k: int, s: int, d: int, padding: str, op: int | None) -> tuple[int, int]:
    """(crop_before, out_length) of a transposed convolution.

    Output element o receives x[i]*w[t] where o = i*s + t*d - crop_before.
    Keras's own arithmetic (`backend_utils._convert_conv_transpose_padding_args_
    from_keras_to_jax`): the correlation form pads ``left = K-1-crop_before``.
    """
    K = d * (k - 1) + 1
    if padding == "valid":
        op = max(K, s) - K if op is None else op
        return 0, (n - 1) * s + K + op
    pad_len = s + K - 2 if op is None else K + K % 2 - 2 + op
    left = min(pad_len // 2 + pad_len % 2, K - 1)
    length = n * s if op is None else (n - 1) * s + K % 2 + op
    return K - 1 - left, length


# ------------------------------------------------------------- shapes

def _channel_axis(cfg: dict, ndim: int) -> int:
    return 1 if cfg.get("data_format") == "channels_first" else ndim - 1


def _spatial_axes(cfg: dict, ndim: int) -> list[int]:
    return list(range(2, ndim)) if cfg.get("data_format") == "channels_first" else list(range(1, ndim - 1))


def check_input_shape(spec: dict, input_shape: Sequence[int | None]) -> tuple[dict, list]:
    """Validate an input shape against a (normalized or raw) spec.

    Returns (normalized spec, input shape as a list). None is allowed in
    every dimension but the channel one.
    """
    nspec = normalize(spec)
    layer, cfg = LAYERS[nspec["class_name"]], nspec["config"]
    shape = list(input_shape)
    L = layer.name
    if len(shape) != layer.rank + 2:
        raise InvalidConfig(L, "inputs", f"must have rank {layer.rank + 2} (batch, {layer.rank} spatial, channels)",
                            tuple(shape))
    c_axis = _channel_axis(cfg, len(shape))
    for i, v in enumerate(shape):
        if v is None and i != c_axis:
            continue
        if not _is_int(v) or v < (0 if i == 0 else 1):
            what = "the channel dimension must be a known integer >= 1" if i == c_axis else \
                "dimensions must be integers >= 1 (batch >= 0) or None"
            raise InvalidConfig(L, "inputs", what, tuple(shape))
    if layer.family == "conv" and shape[c_axis] % cfg["groups"]:
        raise InvalidConfig(L, "groups", f"must divide the input channels ({shape[c_axis]})", cfg["groups"])
    return nspec, shape


def output_shape(spec: dict, input_shape: Sequence[int | None]) -> tuple:
    """The output shape of the layer on an input of this shape (Keras's rules).

    None in a spatial or batch dimension stays None in the output.
    """
    return checked_output_shape(*check_input_shape(spec, input_shape))


def checked_output_shape(nspec: dict, shape: list) -> tuple:
    """output_shape for the result of :func:`check_input_shape` (validated once)."""
    layer, cfg = LAYERS[nspec["class_name"]], nspec["config"]
    L, ndim = layer.name, len(shape)
    c_axis, axes = _channel_axis(cfg, ndim), _spatial_axes(cfg, ndim)
    out = list(shape)
    fam = layer.family
    for j, ax in enumerate(axes):
        n = shape[ax]
        if n is None:
            continue
        if fam in ("conv", "depthwise", "separable"):
            k, s, d = cfg["kernel_size"][j], cfg["strides"][j], cfg["dilation_rate"][j]
            if cfg["padding"] == "valid":
                m = (n - d * (k - 1) - 1) // s + 1
                if m <= 0:
                    raise InvalidConfig(L, "kernel_size", f"with dilation_rate={cfg['dilation_rate']} must fit in "
                                        f"the input (spatial length {n} in dimension {j}) under padding='valid'",
                                        cfg["kernel_size"])
            else:
                m = -(-n // s)
            out[ax] = m
        elif fam == "conv_transpose":
            op = None if cfg["output_padding"] is None else cfg["output_padding"][j]
            _, m = transpose_crop(n, cfg["kernel_size"][j], cfg["strides"][j], cfg["dilation_rate"][j],
                                  cfg["padding"], op)
            if m <= 0:
                raise InvalidConfig(L, "output_padding", f"gives an output length {m} <= 0 in dimension {j} "
                                    f"for input length {n}", cfg["output_padding"])
            out[ax] = m
        elif fam == "cropping":
            a, b = cfg["cropping"] if layer.rank == 1 else cfg["cropping"][j]
            if a + b >= n:
                raise InvalidConfig(L, "cropping", f"must total less than the input length ({n} in dimension {j})",
                                    cfg["cropping"])
            out[ax] = n - a - b
        elif fam == "zero_padding":
            a, b = cfg["padding"] if layer.rank == 1 else cfg["padding"][j]
            out[ax] = n + a + b
        else:
            size = cfg["size"] if layer.rank == 1 else cfg["size"][j]
            out[ax] = n * size
    if fam == "conv" or fam == "conv_transpose" or fam == "separable":
        out[c_axis] = cfg["filters"]
    elif fam == "depthwise":
        out[c_axis] = shape[c_axis] * cfg["depth_multiplier"]
    if cfg.get("activation") == "glu" and out[-1] is not None and out[-1] % 2:
        raise InvalidConfig(L, "activation", "'glu' halves the last axis of the output, which must be even "
                            f"(output shape {tuple(out)})", "glu")
    if cfg.get("activation") == "glu" and out[-1] is not None:
        out[-1] //= 2  # glu returns a * sigmoid(b) for the two halves of the last axis
    return tuple(out)


def weight_shapes(spec: dict, input_shape: Sequence[int | None]) -> dict[str, tuple[int, ...]]:
    """Keras 3 variable names and shapes for this layer on this input."""
    return checked_weight_shapes(*check_input_shape(spec, input_shape))


def checked_weight_shapes(nspec: dict, shape: list) -> dict[str, tuple[int, ...]]:
    """weight_shapes for the result of :func:`check_input_shape` (validated once)."""
    layer, cfg = LAYERS[nspec["class_name"]], nspec["config"]
    c = shape[_channel_axis(cfg, len(shape))]
    k = tuple(cfg.get("kernel_size", ()))
    fam = layer.family
    if fam == "conv":
        w = {"kernel": k + (c // cfg["groups"], cfg["filters"])}
        f = cfg["filters"]
    elif fam == "conv_transpose":
        w = {"kernel": k + (cfg["filters"], c)}
        f = cfg["filters"]
    elif fam == "depthwise":
        w = {"kernel": k + (c, cfg["depth_multiplier"])}
        f = c * cfg["depth_multiplier"]
    elif fam == "separable":
        w = {"depthwise_kernel": k + (c, cfg["depth_multiplier"]),
             "pointwise_kernel": (1,) * layer.rank + (c * cfg["depth_multiplier"], cfg["filters"])}
        f = cfg["filters"]
    else:
        return {}
    if cfg["use_bias"]:
        w["bias"] = (f,)
    return w


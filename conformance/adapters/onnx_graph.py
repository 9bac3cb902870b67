"""An ONNX graph for one Keras layer, as a converter would emit it (shared by
the `onnxruntime` and `openvino` adapters).

Built with the ``onnx.helper`` API, pinned to ``OPSET`` / ``IR_VERSION`` so a
runtime never sees a model newer than it knows. Every tensor is in the case's
dtype (float16 and bfloat16 graphs hold float16/bfloat16 inputs, weights and
outputs, as a converter's low-precision export does); a bfloat16 graph uses
``BFLOAT16_OPSET``, the first opset in which Conv accepts bfloat16. The graph is what tf2onnx-style
converters produce for a Keras layer, with every Keras rule made explicit:

* channels_last data is transposed to NC... on entry and back on exit; the
  activation is applied in the layer's own layout (so softmax/log_softmax act
  on the last axis, as in Keras);
* ``Conv`` with explicit ``pads`` (never ``auto_pad``): 'same' with the odd
  element at the end, 'causal' ``d*(k-1)`` before, both from
  ``reference.shapes``; the Keras kernel ``(k..., in/g, out)`` is permuted to
  ``(out, in/g, k...)`` and ``group = groups``;
* depthwise: ``Conv(group=C)`` with the kernel ``(k..., C, M)`` reshaped to
  ``(C*M, 1, k...)`` (output channel ``c*M + m``, Keras's order); separable:
  that depthwise Conv without bias, then a 1x1 Conv with the bias;
* ``ConvTranspose`` with Keras's kernel ``(k..., out, in)`` permuted to
  ``(in, out, k...)``; Keras's output window is expressed as ``pads`` (the crop
  at the start, the crop at the end) and ``output_padding`` (the zero extension
  at the end when the window is longer than the natural output);
* Cropping is ``Slice``; ZeroPadding is ``Pad`` (constant 0);
* UpSampling: nearest (and area, which equals nearest replication for Keras's
  integer factors) is ``Resize(nearest, asymmetric, floor)``; bilinear is
  ``Resize(linear, half_pixel)``; bicubic is ``Resize(cubic, half_pixel,
  cubic_coeff_a=-0.5, exclude_outside=1)`` (Keys a = -0.5 with weights
  renormalised inside the image, as Keras computes it); lanczos has no ONNX
  Resize mode and is declined;
* activations map to ONNX operators with Keras's constants set explicitly
  (``LeakyRelu(alpha=0.2)``, ``HardSigmoid(alpha=1/6, beta=0.5)``, silu as
  ``x*Sigmoid(x)`` since Swish is newer than the pinned opset; squareplus,
  sparse_plus and glu from elementary operators); sparsemax, which has no
  operator, is declined.

The spec is validated with ``reference.normalize`` / ``reference.output_shape``
first, so every configuration Keras rejects is rejected here (InvalidConfig).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported

from . import _geometry

__all__ = ["OPSET", "BFLOAT16_OPSET", "IR_VERSION", "Built", "build", "onnx_dtype", "opset"]

#: opset 21 has every operator used here (Conv/ConvTranspose-11, Resize-19, Pad-21, Gelu-20, Mish-18)
OPSET = 21
#: the first opset whose Conv, ConvTranspose and Elu/Selu/Softplus/HardSwish/Mish... admit bfloat16
#: (ONNX 1.17 added it to them as version 22); a bfloat16 graph at opset 21 is an invalid model
BFLOAT16_OPSET = 22
#: IR 10 goes with opsets 21 and 22 (onnx 1.16/1.17); ONNX Runtime >= 1.17 and OpenVINO 2024+ read it
IR_VERSION = 10

# TensorProto.FLOAT / FLOAT16 / DOUBLE / BFLOAT16
_ONNX_DTYPES = {"float32": 1, "float16": 10, "float64": 11, "bfloat16": 16}


def onnx_dtype(dtype: str) -> int:
    """The TensorProto element type of a NumPy dtype name (float32, float16, float64, bfloat16)."""
    if dtype not in _ONNX_DTYPES:
        raise Unsupported(f"the ONNX graph is built for {', '.join(_ONNX_DTYPES)}; received dtype {dtype}")
    return _ONNX_DTYPES[dtype]


def opset(dtype: str) -> int:
    """The opset a graph of this dtype is built at: OPSET, or BFLOAT16_OPSET for bfloat16."""
    return BFLOAT16_OPSET if dtype == "bfloat16" else OPSET


@dataclass
class Built:
    """A model and what it was built for."""

    model: Any  # onnx.ModelProto
    input_shape: tuple[int, ...]
    dtype: str
    output_shape: tuple[int, ...]


class _Graph:
    """Nodes and initializers being collected (names are unique by counter)."""

    def __init__(self, dtype: str) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.dtype = np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, value: Any, stem: str, dtype: Any = None) -> str:
        """An initializer holding `value` (in the graph's float dtype unless `dtype` is given)."""
        name = self.name(stem)
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


# ------------------------------------------------------------------ layers
# Each takes the graph, the normalized config, the NC... input name, its NC... shape and the
# weights (Keras layouts, case dtype) and returns the name of the pre-activation output (NC...).

def _conv_kernel(kernel: np.ndarray, rank: int) -> np.ndarray:
    """Keras (k..., a, b) -> ONNX (b, a, k...): Conv (out, in/g, k...), ConvTranspose (in, out, k...)."""
    return np.transpose(kernel, (rank + 1, rank, *range(rank)))


def _depthwise_kernel(kernel: np.ndarray) -> np.ndarray:
    """(k..., C, M) -> (k..., 1, C*M): output channel c*M + m of a group=C convolution."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def _conv_node(g: _Graph, x: str, kernel: np.ndarray, bias: np.ndarray | None, cfg: dict,
               spatial: tuple[int, ...], group: int, *, pointwise: bool = False) -> str:
    rank = len(spatial)
    if pointwise:
        strides, dilations, pads = [1] * rank, [1] * rank, [(0, 0)] * rank
    else:
        strides, dilations = list(cfg["strides"]), list(cfg["dilation_rate"])
        pads = _geometry.conv_pads(cfg, spatial)
    inputs = [x, g.const(_conv_kernel(kernel, rank), "W")]
    if bias is not None:
        inputs.append(g.const(bias, "B"))
    return g.op("Conv", inputs, kernel_shape=list(kernel.shape[:rank]), strides=strides, dilations=dilations,
                pads=[p[0] for p in pads] + [p[1] for p in pads], group=group)


def _conv(g, cfg, x, shape, w):
    return _conv_node(g, x, w["kernel"], w.get("bias"), cfg, shape[2:], cfg["groups"])


def _depthwise(g, cfg, x, shape, w):
    return _conv_node(g, x, _depthwise_kernel(w["kernel"]), w.get("bias"), cfg, shape[2:], shape[1])


def _separable(g, cfg, x, shape, w):
    h = _conv_node(g, x, _depthwise_kernel(w["depthwise_kernel"]), None, cfg, shape[2:], shape[1])
    return _conv_node(g, h, w["pointwise_kernel"], w.get("bias"), cfg, shape[2:], 1, pointwise=True)


def _conv_transpose(g, cfg, x, shape, w):
    kernel = w["kernel"]
    rank = kernel.ndim - 2
    k, s, d = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
    begin, end, extra = [], [], []
    for j, (crop, length) in enumerate(_geometry.transpose_windows(cfg, tuple(shape[2:]))):
        natural = (shape[2 + j] - 1) * s[j] + d[j] * (k[j] - 1) + 1
        if crop < 0:
            raise Unsupported(f"Keras's transposed-convolution window starts {-crop} before the natural output "
                              "(ConvTranspose pads cannot be negative)")
        tail = natural - crop - length  # > 0: cropped at the end; < 0: zero-extended there
        begin.append(crop)
        end.append(max(tail, 0))
        extra.append(max(-tail, 0))
    inputs = [x, g.const(_conv_kernel(kernel, rank), "W")]
    if "bias" in w:
        inputs.append(g.const(w["bias"], "B"))
    attrs: dict[str, Any] = {"kernel_shape": list(k), "strides": list(s), "dilations": list(d),
                             "pads": begin + end}
    if any(extra):
        attrs["output_padding"] = extra
    return g.op("ConvTranspose", inputs, **attrs)


def _cropping(g, cfg, x, shape, w):
    amounts = _geometry.amounts(cfg, "cropping", len(shape) - 2)
    starts = [a for a, _ in amounts]
    ends = [n - b for (_, b), n in zip(amounts, shape[2:])]
    axes = list(range(2, len(shape)))
    return g.op("Slice", [x, g.const(starts, "starts", np.int64), g.const(ends, "ends", np.int64),
                          g.const(axes, "axes", np.int64)])


def _zero_padding(g, cfg, x, shape, w):
    amounts = _geometry.amounts(cfg, "padding", len(shape) - 2)
    pads = [0, 0] + [a for a, _ in amounts] + [0, 0] + [b for _, b in amounts]
    return g.op("Pad", [x, g.const(pads, "pads", np.int64)], mode="constant")


def _upsampling(g, cfg, x, shape, w):
    factors = _geometry.sizes(cfg, len(shape) - 2)
    scales = g.const([1.0, 1.0] + [float(f) for f in factors], "scales", np.float32)
    method = cfg.get("interpolation", "nearest")
    if method in ("nearest", "area"):
        return g.op("Resize", [x, "", scales], mode="nearest", coordinate_transformation_mode="asymmetric",
                    nearest_mode="floor")
    if method == "bilinear":
        return g.op("Resize", [x, "", scales], mode="linear", coordinate_transformation_mode="half_pixel")
    if method == "bicubic":
        return g.op("Resize", [x, "", scales], mode="cubic", coordinate_transformation_mode="half_pixel",
                    cubic_coeff_a=-0.5, exclude_outside=1)
    raise Unsupported(f"ONNX Resize has no {method!r} mode (its modes are nearest, linear, cubic)")


_FAMILIES = {"conv": _conv, "conv_transpose": _conv_transpose, "depthwise": _depthwise,
             "separable": _separable, "cropping": _cropping, "zero_padding": _zero_padding,
             "upsampling": _upsampling}


# ------------------------------------------------------------------ activations

def _activation(g: _Graph, name: str, y: str) -> str:
    """The ONNX operators computing Keras's activation `name` on `y` (Keras's defaults)."""
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign", "exponential": "Exp", "mish": "Mish", "hard_silu": "HardSwish",
              "hard_swish": "HardSwish"}
    if name == "linear":
        return y
    if name in simple:
        return g.op(simple[name], [y])
    if name == "relu6":
        return g.op("Clip", [y, g.const(0.0, "lo"), g.const(6.0, "hi")])
    if name == "hard_tanh":
        return g.op("Clip", [y, g.const(-1.0, "lo"), g.const(1.0, "hi")])
    if name == "leaky_relu":
        return g.op("LeakyRelu", [y], alpha=0.2)
    if name == "elu":
        return g.op("Elu", [y], alpha=1.0)
    if name == "celu":
        if g.dtype != np.float32:
            raise Unsupported(f"ONNX Celu is defined for float32 only; received {g.dtype}")
        return g.op("Celu", [y], alpha=1.0)
    if name == "selu":  # Keras's constants (ONNX's defaults are the same values rounded to float32)
        return g.op("Selu", [y], alpha=1.6732632423543772, gamma=1.0507009873554805)
    if name == "gelu":
        return g.op("Gelu", [y], approximate="none")
    if name == "hard_sigmoid":
        return g.op("HardSigmoid", [y], alpha=1.0 / 6.0, beta=0.5)
    if name in ("silu", "swish"):
        return g.op("Mul", [y, g.op("Sigmoid", [y])])
    if name == "log_sigmoid":
        return g.op("Neg", [g.op("Softplus", [g.op("Neg", [y])])])
    if name == "soft_shrink":
        return g.op("Shrink", [y], lambd=0.5, bias=0.5)
    if name == "hard_shrink":
        return g.op("Shrink", [y], lambd=0.5, bias=0.0)
    if name == "tanh_shrink":
        return g.op("Sub", [y, g.op("Tanh", [y])])
    if name == "sparse_sigmoid":  # 0 below -1, 1 above 1, (x+1)/2 between: clip(x/2 + 1/2, 0, 1)
        return g.op("HardSigmoid", [y], alpha=0.5, beta=0.5)
    if name == "squareplus":  # (x + sqrt(x^2 + 4)) / 2
        root = g.op("Sqrt", [g.op("Add", [g.op("Mul", [y, y]), g.const(4.0, "b")])])
        return g.op("Div", [g.op("Add", [y, root]), g.const(2.0, "two")])
    if name == "sparse_plus":  # 0 for x <= -1, (x+1)^2/4 for -1 < x < 1, x for x >= 1
        shifted = g.op("Add", [y, g.const(1.0, "one")])
        middle = g.op("Mul", [g.op("Mul", [shifted, shifted]), g.const(0.25, "quarter")])
        upper = g.op("Where", [g.op("Less", [y, g.const(1.0, "one")]), middle, y])
        return g.op("Where", [g.op("LessOrEqual", [y, g.const(-1.0, "minus_one")]), g.const(0.0, "zero"), upper])
    if name == "glu":  # first half of the last axis times sigmoid of the second half
        a, b = g.name("glu_a"), g.name("glu_b")
        g.nodes.append(g.helper.make_node("Split", [y], [a, b], name=g.name("split"), axis=-1, num_outputs=2))
        return g.op("Mul", [a, g.op("Sigmoid", [b])])
    if name == "softmax":
        return g.op("Softmax", [y], axis=-1)
    if name == "log_softmax":
        return g.op("LogSoftmax", [y], axis=-1)
    raise Unsupported(f"no ONNX operator for Keras's activation {name!r} in opset {opset(g.dtype.name)}")


# ------------------------------------------------------------------ build

def build(spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> Built:
    """The ONNX model computing the layer on inputs of this shape and dtype, weights as initializers.

    Raises InvalidConfig for a configuration Keras rejects and Unsupported for
    what ONNX cannot express exactly.
    """
    from onnx import helper

    x_np = np.asarray(inputs)
    nspec = reference.normalize(spec)
    out_shape = tuple(reference.output_shape(nspec, x_np.shape))
    dtype = x_np.dtype.name
    elem = onnx_dtype(dtype)
    layer, cfg = reference.LAYERS[nspec["class_name"]], nspec["config"]
    activation = cfg.get("activation", "linear")
    g = _Graph(dtype)
    rank = x_np.ndim - 2
    channels_last = cfg.get("data_format", "channels_last") == "channels_last"
    x = "x"
    shape = x_np.shape
    if channels_last:
        x = g.op("Transpose", [x], perm=[0, rank + 1, *range(1, rank + 1)])
        shape = (shape[0], shape[-1], *shape[1:-1])
    w = {k: np.asarray(v, dtype=dtype) for k, v in (weights or {}).items()}
    y = _FAMILIES[layer.family](g, cfg, x, shape, w)
    if channels_last:
        y = g.op("Transpose", [y], perm=[0, *range(2, rank + 2), 1])
    y = _activation(g, activation, y)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="output"))
    graph = helper.make_graph(g.nodes, f"{nspec['class_name']}_layer",
                              [helper.make_tensor_value_info("x", elem, list(x_np.shape))],
                              [helper.make_tensor_value_info("y", elem, list(out_shape))], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset(dtype))], ir_version=IR_VERSION,
                              producer_name="conv-conformance")
    _check_types(g.nodes, dtype)
    return Built(model, tuple(x_np.shape), dtype, out_shape)


def _check_types(nodes: list, dtype: str) -> None:
    """Unsupported unless every node's operator admits `dtype` at the graph's opset (e.g. Shrink has no
    bfloat16): a converter cannot emit such a node, and a runtime rejects the model."""
    from onnx import defs

    wanted = "tensor({})".format({"float32": "float", "float64": "double"}.get(dtype, dtype))
    for node in nodes:
        schema = defs.get_schema(node.op_type, opset(dtype), "")
        admitted = set().union(*(c.allowed_type_strs for c in schema.type_constraints))
        if admitted and wanted not in admitted:
            float_types = sorted(t for t in admitted if "float" in t or "double" in t)
            raise Unsupported(f"ONNX {node.op_type}-{schema.since_version} (opset {opset(dtype)}) does not admit "
                              f"{dtype}; its floating types are {', '.join(float_types)}")

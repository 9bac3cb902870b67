"""The `torch` adapter: Keras layer semantics computed with torch.nn.functional.

What a careful integrator writes to get Keras's layers out of PyTorch: the
spec is validated with ``reference.normalize`` / ``reference.output_shape``
(so every configuration Keras rejects is rejected here too), the padding
amounts come from ``reference.shapes``, and every value is computed by torch:

* layout: channels_last data is moved to NC... on entry and back on exit;
* 'same' padding is TensorFlow's (odd element at the end) and 'causal' pads
  ``d*(k-1)`` before, both applied with ``F.pad`` ahead of an unpadded
  ``F.conv{1,2,3}d``;
* transposed convolutions run ``F.conv_transpose{1,2,3}d`` unpadded and are
  then cropped / zero-extended to Keras's output window (``F.pad`` with
  negative amounts crops), bias added last;
* depthwise convolution is a grouped convolution with ``groups=C`` and output
  channel ``c*depth_multiplier + m``; separable = depthwise, then a 1x1
  convolution;
* upsampling: nearest is ``repeat_interleave``; bilinear and area are
  ``F.interpolate`` (align_corners=False); bicubic and lanczos have no torch
  equivalent with TensorFlow's kernel and are declined.

Gradients come from torch.autograd.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.levels import declare
from conv_conformance.vocabulary import DTYPES
from . import _geometry
from . import torch_training

__all__ = ["TorchAdapter"]


@functools.cache
def _torch() -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F

    return torch, F


# ------------------------------------------------------------------ activations

def _activations() -> dict[str, Callable]:
    """Keras 3 activation name -> the torch function that computes it (Keras's defaults)."""
    torch, F = _torch()
    return {
        "linear": lambda x: x,
        "relu": F.relu,
        "relu6": F.relu6,
        "leaky_relu": lambda x: F.leaky_relu(x, negative_slope=0.2),
        "elu": F.elu,
        "selu": F.selu,
        "celu": F.celu,
        "gelu": F.gelu,
        "sigmoid": torch.sigmoid,
        "hard_sigmoid": F.hardsigmoid,
        "log_sigmoid": F.logsigmoid,
        "tanh": torch.tanh,
        "hard_tanh": F.hardtanh,
        "tanh_shrink": F.tanhshrink,
        "softplus": F.softplus,
        "softsign": F.softsign,
        "silu": F.silu,
        "swish": F.silu,
        "hard_silu": F.hardswish,
        "hard_swish": F.hardswish,
        "mish": F.mish,
        "exponential": torch.exp,
        "soft_shrink": lambda x: F.softshrink(x, 0.5),
        "hard_shrink": lambda x: F.hardshrink(x, 0.5),
        "softmax": lambda x: F.softmax(x, dim=-1),
        "log_softmax": lambda x: F.log_softmax(x, dim=-1),
        "glu": lambda x: F.glu(x, dim=-1),
    }


# ------------------------------------------------------------------ dtypes



def _to_torch(a: np.ndarray, requires_grad: bool = False):
    torch, _ = _torch()
    a = np.asarray(a)
    name = a.dtype.name
    if name not in DTYPES:
        raise Unsupported(f"torch adapter handles {', '.join(DTYPES)}; received dtype {name}")
    if name == "bfloat16":  # NumPy has no bfloat16 torch can read: go through float32
        t = torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    else:
        t = torch.from_numpy(np.array(a))
    return t.requires_grad_(requires_grad)


def _to_numpy(t) -> np.ndarray:
    """A NumPy copy; bfloat16 widens exactly to float32 (NumPy has no bfloat16 of its own)."""
    torch, _ = _torch()
    t = t.detach()
    return (t.to(torch.float32) if t.dtype == torch.bfloat16 else t).numpy()


# ------------------------------------------------------------------ layers
# Every function below takes x in (N, C, *spatial) and the weights as torch
# tensors in Keras layouts, and returns the pre-activation in (N, C, *spatial).

def _pad_args(pads: list[tuple[int, int]]) -> list[int]:
    """[(before, after) per spatial dim] -> F.pad's flat list, last dim first."""
    return [v for before_after in reversed(pads) for v in before_after]


def _conv_fn(rank: int, transpose: bool = False) -> Callable:
    _, F = _torch()
    return getattr(F, f"conv_transpose{rank}d" if transpose else f"conv{rank}d")


def _keras_to_torch_kernel(kernel, rank: int):
    """(k..., a, b) -> (b, a, k...): Keras's conv kernel to torch's (out, in/groups, k...)."""
    return kernel.permute(rank + 1, rank, *range(rank))


def _convolve(cfg: dict, x, kernel, groups: int = 1, bias=None):
    rank = x.ndim - 2
    x = _torch()[1].pad(x, _pad_args(_geometry.conv_pads(cfg, tuple(x.shape[2:]))))
    return _conv_fn(rank)(x, _keras_to_torch_kernel(kernel, rank), bias,
                          stride=cfg["strides"], dilation=cfg["dilation_rate"], groups=groups)


def _conv(cfg: dict, x, w: dict):
    return _convolve(cfg, x, w["kernel"], cfg["groups"], w.get("bias"))


def _depthwise_kernel(kernel):
    """(k..., C, dm) -> (k..., 1, C*dm): output channel c*dm + m of a groups=C convolution."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def _depthwise(cfg: dict, x, w: dict):
    return _convolve(cfg, x, _depthwise_kernel(w["kernel"]), x.shape[1], w.get("bias"))


def _separable(cfg: dict, x, w: dict):
    h = _convolve(cfg, x, _depthwise_kernel(w["depthwise_kernel"]), x.shape[1])
    rank = x.ndim - 2
    return _conv_fn(rank)(h, _keras_to_torch_kernel(w["pointwise_kernel"], rank), w.get("bias"))


def _conv_transpose(cfg: dict, x, w: dict):
    torch, F = _torch()
    rank = x.ndim - 2
    # Keras (k..., out, in) -> torch conv_transpose weight (in, out, k...); contiguous because
    # torch's CPU backward rejects a permuted view when in == 1 ("grad_weight needs to be contiguous")
    kernel = w["kernel"].permute(rank + 1, rank, *range(rank)).contiguous()
    full = _conv_fn(rank, transpose=True)(x, kernel, None, stride=cfg["strides"],
                                          dilation=cfg["dilation_rate"])
    window = [(-crop, crop + length - m) for (crop, length), m in
              zip(_geometry.transpose_windows(cfg, tuple(x.shape[2:])), full.shape[2:])]
    y = F.pad(full, _pad_args(window))
    if "bias" in w:
        y = y + w["bias"].reshape(-1, *([1] * rank))
    return y


def _cropping(cfg: dict, x, w: dict):
    amounts = _geometry.amounts(cfg, "cropping", x.ndim - 2)
    index = tuple(slice(a, n - b) for (a, b), n in zip(amounts, x.shape[2:]))
    return x[(slice(None), slice(None)) + index]


def _zero_padding(cfg: dict, x, w: dict):
    return _torch()[1].pad(x, _pad_args(_geometry.amounts(cfg, "padding", x.ndim - 2)))


def _upsampling(cfg: dict, x, w: dict):
    torch, F = _torch()
    size = _geometry.sizes(cfg, x.ndim - 2)
    method = cfg.get("interpolation", "nearest")
    if method == "nearest":
        for j, s in enumerate(size):
            x = torch.repeat_interleave(x, s, dim=2 + j)
        return x
    if method in ("bilinear", "area"):
        out = [n * s for n, s in zip(x.shape[2:], size)]
        kwargs = {"align_corners": False} if method == "bilinear" else {}
        return F.interpolate(x, size=out, mode=method, **kwargs)
    raise Unsupported(f"torch has no {method!r} resize with TensorFlow's kernel "
                      "(F.interpolate's bicubic uses a=-0.75, Keras's a=-0.5; torch has no lanczos)")


_FAMILIES = {"conv": _conv, "conv_transpose": _conv_transpose, "depthwise": _depthwise,
             "separable": _separable, "cropping": _cropping, "zero_padding": _zero_padding,
             "upsampling": _upsampling}


# ------------------------------------------------------------------ adapter

class TorchAdapter:
    """Keras layers computed with torch.nn.functional on the CPU."""

    name = "torch"
    #: torch has no bicubic/lanczos resize with TensorFlow's kernel and no sparse_sigmoid,
    #: sparse_plus, squareplus or sparsemax; float16/bfloat16 kernels are missing on the CPU
    declaration = declare(dtypes=("float32", "float64"),
                          exclude=("interpolation:bicubic", "interpolation:lanczos3", "interpolation:lanczos5",
                                   "activation:softplus", "activation:hard", "activation:axis",
                                   "initializer", "regularizer", "constraint"))

    def versions(self) -> dict[str, str]:
        """{"torch": ...}."""
        torch, _ = _torch()
        return {"torch": torch.__version__}

    def _run(self, spec: dict, inputs: np.ndarray, weights: dict, requires_grad: bool):
        """(output tensor, input tensor, weight tensors) in the layer's data_format."""
        nspec = reference.normalize(spec)
        x_np = np.asarray(inputs)
        reference.output_shape(nspec, x_np.shape)
        layer, cfg = reference.LAYERS[nspec["class_name"]], nspec["config"]
        activation = cfg.get("activation", "linear")
        act = _activations().get(activation)
        if act is None:
            raise Unsupported(f"torch has no activation equivalent to Keras's {activation!r}")
        x = _to_torch(x_np, requires_grad)
        w = {k: _to_torch(v, requires_grad) for k, v in (weights or {}).items()}
        channels_last = cfg.get("data_format", "channels_last") == "channels_last"
        xi = x.movedim(-1, 1) if channels_last else x
        try:
            z = _FAMILIES[layer.family](cfg, xi, w)
        except RuntimeError as e:
            if "not implemented for" in str(e):
                raise Unsupported(f"torch CPU: {e}") from e
            raise
        z = z.movedim(1, -1) if channels_last else z
        return act(z), x, w

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by torch in the inputs' dtype."""
        torch, _ = _torch()
        with torch.no_grad():
            y, _, _ = self._run(spec, inputs, weights, requires_grad=False)
        return _to_numpy(y)

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (torch.autograd)."""
        torch, _ = _torch()
        y, x, w = self._run(spec, inputs, weights, requires_grad=True)
        g = _to_torch(output_grad).to(y.dtype)
        names = ["inputs"] + list(w)
        sources = [x] + list(w.values())
        grads = torch.autograd.grad(y, sources, grad_outputs=g, allow_unused=True)
        return {n: _to_numpy(torch.zeros_like(s) if d is None else d)
                for n, s, d in zip(names, sources, grads)}

    # training-time arguments: torch.nn.init and torch ops with Keras's fans (torch_training)
    def initialize(self, spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
        """The weights drawn by torch.nn.init with Keras's fans and laws (float32)."""
        return torch_training.initialize(spec, input_shape, seed)

    def regularization(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, float]:
        """Keras's penalties of one call, in torch ops."""
        torch, _ = _torch()
        with torch.no_grad():
            y, _, w = self._run(spec, inputs, weights, requires_grad=False)
            return {k: float(v) for k, v in torch_training.penalties(torch, spec, y, w).items()}

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradient of the sum of the penalties (torch.autograd)."""
        torch, _ = _torch()
        y, x, w = self._run(spec, inputs, weights, requires_grad=True)
        terms = list(torch_training.penalties(torch, spec, y, w).values())
        names, sources = ["inputs"] + list(w), [x] + list(w.values())
        total = sum(terms) if terms else None
        if total is None or not total.requires_grad:  # nothing regularized, or an empty batch's activity
            return {n: _to_numpy(torch.zeros_like(s)) for n, s in zip(names, sources)}
        grads = torch.autograd.grad(total, sources, allow_unused=True)
        return {n: _to_numpy(torch.zeros_like(s) if d is None else d) for n, s, d in zip(names, sources, grads)}

    def constrain(self, spec: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Keras's constraint formulas in torch ops."""
        torch, _ = _torch()
        nspec = reference.normalize(spec)
        cfg = nspec["config"]
        out = {}
        for name, a in reference.weight_arguments(nspec).items():
            t = _to_torch(np.asarray(weights[name]))
            c = cfg[a["constraint"]]
            out[name] = _to_numpy(torch_training.constrain_tensor(torch, c, t) if c else t)
        return out

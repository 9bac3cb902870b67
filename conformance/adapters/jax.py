"""The `jax` adapter: Keras layer semantics computed with jax.lax and jax.image.

What a careful integrator writes to get Keras's layers out of JAX: the spec
is validated with ``reference.normalize`` / ``reference.output_shape``, the
padding amounts come from ``reference.shapes``, and every value is computed
by JAX, in a channels-last internal layout (channels_first data is moved on
entry and back on exit):

* convolutions: ``lax.conv_general_dilated`` with explicit (before, after)
  padding ('same' with the odd element at the end, 'causal' before),
  ``rhs_dilation`` for dilation and ``feature_group_count`` for groups;
* transposed convolutions: the same call with ``lhs_dilation = strides``, the
  kernel flipped and read (k..., out, in) as (spatial..., O, I), padded so the
  window is Keras's ``(crop_before, length)``;
* depthwise: ``feature_group_count = C`` with output channel c*dm + m;
  separable: depthwise, then a 1x1 convolution;
* upsampling: nearest is ``jnp.repeat``; bilinear, bicubic, lanczos3/5 and
  area are ``jax.image.resize`` (antialias=False, which Keras also uses).

Gradients come from ``jax.vjp``. x64 is enabled when the adapter is built so
float64 cases run in float64. Every call is one ``jax.jit`` of the whole
computation, as a JAX user's model runs: op-by-op dispatch compiles each op
for each new shape, and that compiling would be most of a case's time (a training
case: 2.5 s op by op against 1.6 s jit-compiled).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from conv_conformance import reference
from conv_conformance.conformance import Unsupported
from conv_conformance.conformance.levels import declare
from conv_conformance.vocabulary import DTYPES

from . import _geometry, _jax_cache
from . import jax_training

__all__ = ["JaxAdapter"]

_RESIZE_METHODS = {"bilinear": "linear", "bicubic": "cubic", "lanczos3": "lanczos3",
                   "lanczos5": "lanczos5", "area": "area"}


@functools.cache
def _jax() -> tuple[Any, Any, Any]:
    import jax

    jax.config.update("jax_enable_x64", True)
    _jax_cache.enable(jax)
    import jax.numpy as jnp
    from jax import lax

    return jax, jnp, lax


def _activations() -> dict[str, Callable]:
    """Keras 3 activation name -> the jax function that computes it (Keras's defaults)."""
    jax, jnp, _ = _jax()
    nn = jax.nn
    return {
        "linear": lambda x: x, "relu": nn.relu, "relu6": nn.relu6,
        "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=0.2),
        "elu": nn.elu, "selu": nn.selu, "celu": nn.celu,
        "gelu": lambda x: nn.gelu(x, approximate=False),
        "sigmoid": nn.sigmoid, "hard_sigmoid": nn.hard_sigmoid, "sparse_sigmoid": nn.sparse_sigmoid,
        "log_sigmoid": nn.log_sigmoid, "tanh": jnp.tanh, "hard_tanh": nn.hard_tanh,
        "softplus": nn.softplus, "softsign": nn.soft_sign, "sparse_plus": nn.sparse_plus,
        "squareplus": nn.squareplus, "silu": nn.silu, "swish": nn.swish, "hard_silu": nn.hard_silu,
        "hard_swish": nn.hard_swish, "mish": nn.mish, "exponential": jnp.exp,
        "softmax": lambda x: nn.softmax(x, axis=-1), "log_softmax": lambda x: nn.log_softmax(x, axis=-1),
        "glu": lambda x: nn.glu(x, axis=-1),
    }


# ------------------------------------------------------------------ layers
# Every function takes x in (N, *spatial, C) and the weights in Keras layouts
# and returns the pre-activation, bias included, in (N, *spatial, C).

def _dimension_numbers(rank: int, transpose: bool = False):
    """lhs/out channels-last; rhs a Keras kernel (k..., in, out), or (k..., out, in) if transpose."""
    lhs = (0, rank + 1) + tuple(range(1, rank + 1))
    rhs = ((rank, rank + 1) if transpose else (rank + 1, rank)) + tuple(range(rank))
    return _jax()[2].ConvDimensionNumbers(lhs, rhs, lhs)


def _convolve(cfg: dict, x, kernel, groups: int = 1):
    _, _, lax = _jax()
    rank = x.ndim - 2
    pads = _geometry.conv_pads(cfg, tuple(x.shape[1:-1]))
    return lax.conv_general_dilated(x, kernel, cfg["strides"], pads, rhs_dilation=cfg["dilation_rate"],
                                    dimension_numbers=_dimension_numbers(rank), feature_group_count=groups,
                                    precision=lax.Precision.HIGHEST)


def _depthwise_kernel(kernel):
    """(k..., C, dm) -> (k..., 1, C*dm): output channel c*dm + m of a groups=C convolution."""
    return kernel.reshape(*kernel.shape[:-2], 1, kernel.shape[-2] * kernel.shape[-1])


def _pointwise(h, kernel):
    _, _, lax = _jax()
    rank = h.ndim - 2
    return lax.conv_general_dilated(h, kernel, (1,) * rank, [(0, 0)] * rank,
                                    dimension_numbers=_dimension_numbers(rank),
                                    precision=lax.Precision.HIGHEST)


def _conv(cfg, x, w):
    return _convolve(cfg, x, w["kernel"], cfg["groups"])


def _depthwise(cfg, x, w):
    return _convolve(cfg, x, _depthwise_kernel(w["kernel"]), x.shape[-1])


def _separable(cfg, x, w):
    h = _convolve(cfg, x, _depthwise_kernel(w["depthwise_kernel"]), x.shape[-1])
    return _pointwise(h, w["pointwise_kernel"])


def _conv_transpose(cfg, x, w):
    _, jnp, lax = _jax()
    rank = x.ndim - 2
    k, s, d = cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"]
    pads = []
    for j, (crop, length) in enumerate(_geometry.transpose_windows(cfg, tuple(x.shape[1:-1]))):
        span = d[j] * (k[j] - 1) + 1
        before = span - 1 - crop
        pads.append((before, length - (x.shape[1 + j] - 1) * s[j] - 1 - before + span - 1))
    kernel = jnp.flip(w["kernel"], axis=tuple(range(rank)))
    return lax.conv_general_dilated(x, kernel, (1,) * rank, pads, lhs_dilation=s, rhs_dilation=d,
                                    dimension_numbers=_dimension_numbers(rank, transpose=True),
                                    precision=lax.Precision.HIGHEST)


def _cropping(cfg, x, w):
    index = tuple(slice(a, n - b) for (a, b), n in
                  zip(_geometry.amounts(cfg, "cropping", x.ndim - 2), x.shape[1:-1]))
    return x[(slice(None),) + index]


def _zero_padding(cfg, x, w):
    _, jnp, _ = _jax()
    return jnp.pad(x, [(0, 0)] + _geometry.amounts(cfg, "padding", x.ndim - 2) + [(0, 0)])


def _upsampling(cfg, x, w):
    jax, jnp, _ = _jax()
    size = _geometry.sizes(cfg, x.ndim - 2)
    method = cfg.get("interpolation", "nearest")
    if method == "nearest":
        for j, s in enumerate(size):
            x = jnp.repeat(x, s, axis=1 + j)
        return x
    shape = (x.shape[0], *(n * s for n, s in zip(x.shape[1:-1], size)), x.shape[-1])
    return jax.image.resize(x, shape, _RESIZE_METHODS[method], antialias=False)


_FAMILIES = {"conv": _conv, "conv_transpose": _conv_transpose, "depthwise": _depthwise,
             "separable": _separable, "cropping": _cropping, "zero_padding": _zero_padding,
             "upsampling": _upsampling}


# ------------------------------------------------------------------ adapter

class JaxAdapter:
    """Keras layers computed with jax.lax / jax.image on the CPU."""

    name = "jax"
    #: jax.nn has no tanh_shrink, soft_shrink, hard_shrink or sparsemax
    declaration = declare(dtypes=DTYPES,
                          exclude=("activation:sigmoid", "activation:hard", "activation:axis",
                                   "initializer", "regularizer", "constraint"))

    #: JAX keeps every executable it compiles for an eagerly run op, keyed by shapes; a case set
    #: has a new shape in almost every case, so a long run would hold gigabytes of them (3.8 GiB
    #: after 600 standard cases). The caches are cleared every this many calls instead.
    clear_caches_every = 32

    def __init__(self) -> None:
        _jax()  # enables x64 before any array is made
        self._calls = 0

    def versions(self) -> dict[str, str]:
        """{"jax": ..., "jaxlib": ...}."""
        import jaxlib

        return {"jax": _jax()[0].__version__, "jaxlib": jaxlib.__version__}

    def _function(self, spec: dict, inputs: np.ndarray) -> Callable:
        """f(x, weights) -> output, for this spec, validated as Keras validates it."""
        self._calls += 1
        if self._calls % self.clear_caches_every == 0:
            _jax()[0].clear_caches()
        nspec = reference.normalize(spec)
        reference.output_shape(nspec, np.shape(inputs))
        dtype = np.asarray(inputs).dtype.name
        if dtype not in DTYPES:
            raise Unsupported(f"jax adapter handles {', '.join(DTYPES)}; received dtype {dtype}")
        layer, cfg = reference.LAYERS[nspec["class_name"]], nspec["config"]
        activation = cfg.get("activation", "linear")
        act = _activations().get(activation)
        if act is None:
            raise Unsupported(f"jax.nn has no activation equivalent to Keras's {activation!r}")
        _, jnp, _ = _jax()
        channels_first = cfg.get("data_format") == "channels_first"

        def f(x, w):
            xi = jnp.moveaxis(x, 1, -1) if channels_first else x
            z = _FAMILIES[layer.family](cfg, xi, w)
            if "bias" in w:
                z = z + w["bias"]
            return act(jnp.moveaxis(z, -1, 1) if channels_first else z)

        return f

    def forward(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
        """The layer's output, computed by JAX in the inputs' dtype."""
        jax, jnp, _ = _jax()
        f = jax.jit(self._function(spec, inputs))
        return _geometry.plain_float(f(jnp.asarray(inputs), {k: jnp.asarray(v) for k, v in (weights or {}).items()}))

    def vjp(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """Gradient of sum(output * output_grad) w.r.t. the inputs and every weight (jax.vjp)."""
        jax, jnp, _ = _jax()
        f = self._function(spec, inputs)

        @jax.jit
        def pull(x, w, g):
            _, pullback = jax.vjp(f, x, w)
            return pullback(g)

        dx, dw = pull(jnp.asarray(inputs), {k: jnp.asarray(v) for k, v in (weights or {}).items()},
                      jnp.asarray(output_grad, dtype=np.asarray(inputs).dtype))
        return {"inputs": _geometry.plain_float(dx), **{k: _geometry.plain_float(v) for k, v in dw.items()}}

    # training-time arguments: jax.nn.initializers and jax.numpy (jax_training)
    def initialize(self, spec: dict, input_shape: tuple, seed: int) -> dict[str, np.ndarray]:
        """The weights drawn by jax.nn.initializers with Keras's laws (float32)."""
        return jax_training.initialize(spec, input_shape, seed)

    def _penalty_function(self, spec: dict, inputs: np.ndarray):
        _, jnp, _ = _jax()
        f = self._function(spec, inputs)
        return lambda x, w: jax_training.penalties(jnp, spec, f(x, w), w)

    def regularization(self, spec: dict, inputs: np.ndarray, weights: dict[str, np.ndarray]) -> dict[str, float]:
        """Keras's penalties of one call, in jax.numpy."""
        jax, jnp, _ = _jax()
        p = jax.jit(self._penalty_function(spec, inputs))(jnp.asarray(inputs),
                                                           {k: jnp.asarray(v) for k, v in weights.items()})
        return {k: float(v) for k, v in p.items()}

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradient of the sum of the penalties (jax.grad)."""
        jax, jnp, _ = _jax()
        p = self._penalty_function(spec, inputs)
        total = lambda x, w: sum(p(x, w).values(), jnp.zeros((), jnp.asarray(inputs).dtype))  # noqa: E731
        dx, dw = jax.jit(jax.grad(total, argnums=(0, 1)))(jnp.asarray(inputs), {k: jnp.asarray(v) for k, v in weights.items()})
        return {"inputs": _geometry.plain_float(dx), **{k: _geometry.plain_float(v) for k, v in dw.items()}}

    def constrain(self, spec: dict, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Keras's constraint formulas in jax.numpy."""
        jax, jnp, _ = _jax()
        nspec = reference.normalize(spec)
        cfg = nspec["config"]
        out = {}
        for name, a in reference.weight_arguments(nspec).items():
            w, c = jnp.asarray(weights[name]), cfg[a["constraint"]]
            out[name] = _geometry.plain_float(jax.jit(functools.partial(jax_training.constrain_array, jnp, c))(w)
                                              if c else w)
        return out

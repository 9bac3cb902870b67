"""Forward computations and their gradients, layer by layer, in float64.

Everything here works in one internal layout, ``(batch, *spatial, channels)``;
:func:`forward` and :func:`vjp` transpose channels_first data on entry and on
exit, so no formula below tests ``data_format``. Activations act on the
layer's own layout (Keras applies softmax & co. to the last axis of what the
layer returns), so they run outside the internal layout.

Notation, per spatial dimension: kernel tap ``t``, stride ``s``, dilation
``d``, output position ``o``. The three primitives are the convolution of
Keras (a correlation) and its two partial adjoints:

    _correlate:           y[n, o, f]  = sum_{t, c} xp[n, o*s + t*d, c] * w[t, c, f]
    _correlate_adjoint:   dxp[n, o*s + t*d, c] += sum_f dy[n, o, f] * w[t, c, f]
    _correlate_kernel:    dw[t, c, f] = sum_{n, o} xp[n, o*s + t*d, c] * dy[n, o, f]

A convolution pads, then correlates. A transposed convolution is the adjoint
of a convolution: it scatters with ``_correlate_adjoint`` (Keras's transposed
kernel layout ``(k..., out, in)`` is exactly a convolution kernel from ``out``
to ``in``), then crops. Each one's gradient is the other primitive.
"""
from __future__ import annotations

import math

import numpy as np

from . import shapes
from .activations import activate, activate_vjp
from .shapes import InvalidConfig

__all__ = ["forward", "vjp"]


# ------------------------------------------------------------------ windows

def _windows(x: np.ndarray, k, s, d, out, writeable: bool = False) -> np.ndarray:
    """The view W[n, *o, *t, c] = x[n, *(o*s + t*d), c], without copying."""
    sn, *sp, sc = x.strides
    shape = (x.shape[0], *out, *k, x.shape[-1])
    strides = (sn, *(a * b for a, b in zip(s, sp)), *(a * b for a, b in zip(d, sp)), sc)
    return np.lib.stride_tricks.as_strided(x, shape, strides, writeable=writeable)


def _valid_length(p, k, s, d) -> tuple[int, ...]:
    return tuple((pi - di * (ki - 1) - 1) // si + 1 for pi, ki, si, di in zip(p, k, s, d))


def _letters(r: int) -> tuple[str, str]:
    return "opq"[:r], "ijk"[:r]


# ---------------------------------------------------------------- primitives

def _rows(a, lead):
    """a as a matrix: the first `lead` axes flattened into rows, the rest into columns."""
    return a.reshape(math.prod(a.shape[:lead]), math.prod(a.shape[lead:]))


def _split(a, groups):
    """a[..., g*m + j] as a[..., g, j] (explicit sizes: a may be empty, e.g. batch 0)."""
    return a.reshape(*a.shape[:-1], groups, a.shape[-1] // groups)


def _merge(a):
    """The inverse of _split: the last two axes as one."""
    return a.reshape(*a.shape[:-2], a.shape[-2] * a.shape[-1])


def _correlate(xp, w, s, d, groups=1):
    """y[n, o, g*Fg + f] = sum_{t, c} xp[n, o*s + t*d, g*Cg + c] * w[t, c, g*Fg + f]."""
    r, k = xp.ndim - 2, w.shape[:-2]
    out = _valid_length(xp.shape[1:-1], k, s, d)
    win = _windows(xp, k, s, d, out)
    if groups == 1:  # one matrix product: rows (n, o), columns (t, c)
        return (_rows(win, r + 1) @ _rows(w, r + 1)).reshape(xp.shape[0], *out, w.shape[-1])
    O, K = _letters(r)
    wg = w.reshape(*k, w.shape[-2], groups, -1)
    y = np.einsum(f"n{O}{K}gc,{K}cgf->n{O}gf", _split(win, groups), wg)
    return _merge(y)


def _correlate_adjoint(dy, w, s, d, padded_shape, groups=1):
    """dxp[n, o*s + t*d, g*Cg + c] += sum_f dy[n, o, g*Fg + f] * w[t, c, g*Fg + f]."""
    r, k = dy.ndim - 2, w.shape[:-2]
    rows = _rows(dy, r + 1)
    dxp = np.zeros(padded_shape)
    win = _windows(dxp, k, s, d, dy.shape[1:-1], writeable=True)
    lead = (slice(None),) * (r + 1)
    taps, c, f = math.prod(k), w.shape[-2], w.shape[-1]
    if groups == 1:  # every tap's products in one matrix product: columns (t, c)
        cols = (rows @ w.reshape(taps, c, f).transpose(2, 0, 1).reshape(f, taps * c)).reshape(len(rows), taps, c)
    for i, t in enumerate(np.ndindex(*k)):  # positions of one tap never overlap, so += is exact
        if groups == 1:
            tap = cols[:, i]
        else:
            tap = _merge(np.einsum("mgf,cgf->mgc", _split(rows, groups),
                                   w[t].reshape(w.shape[-2], groups, -1)))
        win[lead + t] += tap.reshape(*dy.shape[:-1], tap.shape[-1])
    return dxp


def _correlate_kernel(xp, dy, k, s, d, groups=1):
    """dw[t, c, g*Fg + f] = sum_{n, o} xp[n, o*s + t*d, g*Cg + c] * dy[n, o, g*Fg + f]."""
    r = dy.ndim - 2
    win = _windows(xp, k, s, d, dy.shape[1:-1])
    if groups == 1:
        return (_rows(win, r + 1).T @ _rows(dy, r + 1)).reshape(*k, xp.shape[-1], dy.shape[-1])
    O, K = _letters(r)
    dw = np.einsum(f"n{O}{K}gc,n{O}gf->{K}cgf", _split(win, groups), _split(dy, groups))
    return dw.reshape(*dw.shape[:-2], -1)


def _pad(x, pads):
    return np.pad(x, [(0, 0), *pads, (0, 0)])


def _crop(x, pads):
    return x[(slice(None), *(slice(a, x.shape[i + 1] - b) for i, (a, b) in enumerate(pads)), slice(None))]


def _sum_but_channels(dz):
    return dz.sum(axis=tuple(range(dz.ndim - 1)))


# ------------------------------------------------------------- convolution

def _conv(cfg, x, w):
    """Conv: y = correlate(pad(x), kernel)."""
    xp = _pad(x, shapes.conv_padding(cfg, x.shape[1:-1]))
    return _correlate(xp, w["kernel"], cfg["strides"], cfg["dilation_rate"], cfg["groups"])


def _conv_vjp(cfg, x, w, dz):
    pads = shapes.conv_padding(cfg, x.shape[1:-1])
    xp, k, s, d, g = _pad(x, pads), cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"], cfg["groups"]
    return {"inputs": _crop(_correlate_adjoint(dz, w["kernel"], s, d, xp.shape, g), pads),
            "kernel": _correlate_kernel(xp, dz, k, s, d, g)}


def _depthwise_as_grouped(k):
    """Depthwise kernel (k..., C, m) as a grouped one (k..., 1, C*m): output channel c*m + j."""
    return k.reshape(*k.shape[:-2], 1, -1)


def _depthwise(cfg, x, w, name="kernel"):
    """Depthwise: a convolution with groups = C, output channel c*depth_multiplier + m."""
    xp = _pad(x, shapes.conv_padding(cfg, x.shape[1:-1]))
    return _correlate(xp, _depthwise_as_grouped(w[name]), cfg["strides"], cfg["dilation_rate"], x.shape[-1])


def _depthwise_vjp(cfg, x, w, dz, name="kernel"):
    pads = shapes.conv_padding(cfg, x.shape[1:-1])
    xp, k, s, d, c = _pad(x, pads), cfg["kernel_size"], cfg["strides"], cfg["dilation_rate"], x.shape[-1]
    wk = w[name]
    return {"inputs": _crop(_correlate_adjoint(dz, _depthwise_as_grouped(wk), s, d, xp.shape, c), pads),
            name: _correlate_kernel(xp, dz, k, s, d, c).reshape(wk.shape)}


def _separable(cfg, x, w):
    """Separable: depthwise, then a 1x1 pointwise convolution."""
    h = _depthwise(cfg, x, w, "depthwise_kernel")
    return np.tensordot(h, w["pointwise_kernel"].reshape(h.shape[-1], -1), axes=1)


def _separable_vjp(cfg, x, w, dz):
    h = _depthwise(cfg, x, w, "depthwise_kernel")
    wp = w["pointwise_kernel"]
    wp2 = wp.reshape(h.shape[-1], -1)
    dh = np.tensordot(dz, wp2, axes=([-1], [-1]))
    g = _depthwise_vjp(cfg, x, w, dh, "depthwise_kernel")
    g["pointwise_kernel"] = np.tensordot(h, dz, axes=(list(range(h.ndim - 1)),) * 2).reshape(wp.shape)
    return g


def _transpose_geometry(cfg, spatial):
    """Per dimension: (crop_before, output length, scatter length P)."""
    out = []
    for j, n in enumerate(spatial):
        k, s, d = cfg["kernel_size"][j], cfg["strides"][j], cfg["dilation_rate"][j]
        op = None if cfg["output_padding"] is None else cfg["output_padding"][j]
        crop, length = shapes.transpose_crop(n, k, s, d, cfg["padding"], op)
        out.append((crop, length, max((n - 1) * s + d * (k - 1) + 1, crop + length)))
    return out


def _conv_transpose(cfg, x, w):
    """ConvTranspose: y[n, i*s + t*d - crop, f] += sum_c x[n, i, c] * kernel[t, f, c], then crop.

    The kernel (k..., filters, in) read as a convolution kernel from `filters`
    to `in` makes this the adjoint of that convolution.
    """
    geo = _transpose_geometry(cfg, x.shape[1:-1])
    kernel = w["kernel"]
    full = _correlate_adjoint(x, kernel, cfg["strides"], cfg["dilation_rate"],
                              (x.shape[0], *(p for _, _, p in geo), kernel.shape[-2]))
    return full[(slice(None), *(slice(c, c + n) for c, n, _ in geo), slice(None))]


def _conv_transpose_vjp(cfg, x, w, dz):
    geo = _transpose_geometry(cfg, x.shape[1:-1])
    dzp = _pad(dz, [(c, p - c - n) for c, n, p in geo])
    s, d = cfg["strides"], cfg["dilation_rate"]
    return {"inputs": _correlate(dzp, w["kernel"], s, d),
            "kernel": _correlate_kernel(dzp, x, cfg["kernel_size"], s, d)}


# --------------------------------------------------- cropping, padding, resizing

def _amounts(cfg, key, rank):
    v = cfg[key]
    return [tuple(v)] if rank == 1 else [tuple(p) for p in v]


def _cropping(cfg, x, w):
    return _crop(x, _amounts(cfg, "cropping", x.ndim - 2))


def _cropping_vjp(cfg, x, w, dz):
    crops = _amounts(cfg, "cropping", x.ndim - 2)
    dx = np.zeros(x.shape)
    dx[(slice(None), *(slice(a, x.shape[i + 1] - b) for i, (a, b) in enumerate(crops)), slice(None))] = dz
    return {"inputs": dx}


def _zero_padding(cfg, x, w):
    return _pad(x, _amounts(cfg, "padding", x.ndim - 2))


def _zero_padding_vjp(cfg, x, w, dz):
    return {"inputs": _crop(dz, _amounts(cfg, "padding", x.ndim - 2))}


def _keys_cubic(x, a=-0.5):
    """Keys' cubic convolution kernel with a = -0.5 (TensorFlow's bicubic)."""
    x = np.abs(x)
    return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))


def _lanczos(x, radius):
    """sinc(x) * sinc(x / radius) on |x| < radius."""
    return np.where(np.abs(x) < radius, np.sinc(x) * np.sinc(x / radius), 0.0)


def _resize_matrix(n: int, scale: int, method: str) -> np.ndarray:
    """A with y = A @ x resizing a length-n axis to n*scale (Keras 3 / tf.image.resize).

    Half-pixel centres: output o samples input coordinate (o + 0.5)/scale - 0.5.
    """
    o = np.arange(n * scale)[:, None]
    i = np.arange(n)[None, :]
    src = np.array(shapes.sample_points(n, scale))[:, None]
    if method == "nearest":
        return (i == o // scale) * 1.0
    if method == "area":  # overlap of [o, o+1)/scale with [i, i+1), per unit output: in units of
        # 1/scale the overlap of [o, o+1) with [i*scale, (i+1)*scale), an integer, so exact
        return np.clip(np.minimum(o + 1, (i + 1) * scale) - np.maximum(o, i * scale), 0, None) * 1.0
    if method == "bilinear":  # taps clamped to the edge
        lo = np.floor(src)
        frac = src - lo
        return ((i == np.clip(lo, 0, n - 1)) * (1 - frac) + (i == np.clip(lo + 1, 0, n - 1)) * frac)
    if method == "bicubic":  # Keys a=-0.5; taps outside the input dropped, weights renormalised
        lo = np.floor(src)
        weights = np.where(np.abs(i - lo - 0.5) <= 2, _keys_cubic(i - src), 0.0)
    else:  # lanczos3, lanczos5 (scale_and_translate): taps inside the input, normalised
        radius = int(method[-1])
        weights = _lanczos(i - src, radius)
    return weights / weights.sum(axis=1, keepdims=True)


def _resize_matrices(cfg, spatial):
    rank = len(spatial)
    size = shapes.upsampling_factors(cfg, rank)
    method = cfg.get("interpolation", "nearest")
    return [_resize_matrix(n, f, method) for n, f in zip(spatial, size)]


def _apply_along(y, matrices):
    for ax, a in enumerate(matrices, start=1):
        y = np.moveaxis(np.tensordot(a, y, axes=([1], [ax])), 0, ax)
    return y


def _upsampling(cfg, x, w):
    """UpSampling: y = A_1 x_1 A_2 x_2 ... x (one resize matrix per spatial axis)."""
    return _apply_along(x, _resize_matrices(cfg, x.shape[1:-1]))


def _upsampling_vjp(cfg, x, w, dz):
    return {"inputs": _apply_along(dz, [a.T for a in _resize_matrices(cfg, x.shape[1:-1])])}


_FAMILIES = {
    "conv": (_conv, _conv_vjp),
    "conv_transpose": (_conv_transpose, _conv_transpose_vjp),
    "depthwise": (_depthwise, _depthwise_vjp),
    "separable": (_separable, _separable_vjp),
    "cropping": (_cropping, _cropping_vjp),
    "zero_padding": (_zero_padding, _zero_padding_vjp),
    "upsampling": (_upsampling, _upsampling_vjp),
}


# -------------------------------------------------------------- public API

def _to_internal(a, cfg):
    return np.moveaxis(a, 1, -1) if cfg.get("data_format") == "channels_first" else a


def _to_external(a, cfg):
    return np.moveaxis(a, -1, 1) if cfg.get("data_format") == "channels_first" else a


def _prepare(spec, inputs, weights):
    """Validate everything and convert to float64: (layer, config, x, weights, output shape)."""
    x = np.asarray(inputs, dtype=np.float64)
    nspec, shape = shapes.check_input_shape(spec, x.shape)
    out_shape = shapes.checked_output_shape(nspec, shape)
    layer, cfg = shapes.LAYERS[nspec["class_name"]], nspec["config"]
    want = shapes.checked_weight_shapes(nspec, shape)
    weights = {} if weights is None else weights
    got = {k: np.shape(v) for k, v in weights.items()}
    if got.keys() != want.keys() or any(tuple(got[k]) != want[k] for k in want):
        raise InvalidConfig(layer.name, "weights", f"must be {want} for inputs of shape {x.shape} "
                            "(Keras 3 names and layouts)", got)
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    return layer, cfg, x, w, out_shape


def _pre_activation(layer, cfg, x, w):
    """z in the layer's layout: the linear part plus bias, before the activation."""
    z = _FAMILIES[layer.family][0](cfg, _to_internal(x, cfg), w)
    if "bias" in w:
        z = z + w["bias"]
    return _to_external(z, cfg)


def forward(spec: dict, inputs, weights: dict | None = None) -> np.ndarray:
    """The layer's output, float64, in the layer's data_format.

    spec: Keras serialization {"class_name", "config"}; inputs: array in the
    layer's data_format; weights: Keras 3 names and layouts.
    """
    layer, cfg, x, w, out_shape = _prepare(spec, inputs, weights)
    z = _pre_activation(layer, cfg, x, w)
    y = activate(cfg["activation"], z) if "activation" in cfg else z
    assert y.shape == out_shape, (y.shape, out_shape)
    return np.ascontiguousarray(y)


def vjp(spec: dict, inputs, weights: dict | None, output_grad) -> dict[str, np.ndarray]:
    """Gradients of sum(forward(spec, inputs, weights) * output_grad).

    Returns {"inputs": d/dinputs, <weight name>: d/dweight, ...}, float64.
    """
    layer, cfg, x, w, out_shape = _prepare(spec, inputs, weights)
    g = np.asarray(output_grad, dtype=np.float64)
    if g.shape != out_shape:
        raise InvalidConfig(layer.name, "output_grad", f"must have the output shape {out_shape}", g.shape)
    if cfg.get("activation", "linear") != "linear":
        g = activate_vjp(cfg["activation"], _pre_activation(layer, cfg, x, w), g)
    dz = _to_internal(g, cfg)
    grads = _FAMILIES[layer.family][1](cfg, _to_internal(x, cfg), w, dz)
    if "bias" in w:
        grads["bias"] = _sum_but_channels(dz)
    grads["inputs"] = _to_external(grads["inputs"], cfg)
    return {k: np.ascontiguousarray(v) for k, v in grads.items()}

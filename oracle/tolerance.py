"""Allowed absolute errors from forward error bounds, element by element.

Inputs and weights are exactly representable in the case dtype (see
:mod:`oracle.cases`), so an implementation's only licit error is rounding in
its own arithmetic. With ``u`` the unit roundoff of the dtype and
``gamma(n) = n*u / (1 - n*u)`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, Lemma 3.1), the bound is built in three steps, each one run
through the reference (never through the system under test):

1. **Linear part** (convolution, transposed, depthwise, plus bias). An output
   element is a sum of ``N`` terms: ``n`` products ``x*w`` and the bias. Rounding
   the products costs at most ``u * sum |x*w|`` (nothing with fused multiply-adds);
   each of the ``N - 1`` additions, in any order or tree (blocked, vectorised), rounds
   a partial sum of a subset of the terms, whose magnitude is at most
   ``M = max(P+, P-)``, the larger of the sums of the positive and of the negative
   terms. Hence ``|fl(z) - z| <= u * sum|x*w| + gamma(N - 1) (1 + u)^2 M`` (the
   ``gamma`` and ``(1 + u)^2`` carry the errors already in the partial sums). ``M`` is
   ``sum |x*w|`` when all terms agree in sign and about half of it when they cancel;
   ``P+`` and ``P-`` are four reference runs on the positive and negative parts of
   ``x`` and ``w`` (plus the bias's part), ``sum|x*w|`` their sum without the bias, and ``n`` the
   reference on all-ones inputs and kernel (padding taps are exact zeros, adding one
   costs no rounding, so they are not counted). One more rounding of the stored result
   adds ``u*|z|``. A separable convolution is two such sums in sequence, bounded by the
   classical ``gamma(n + 1) * (sum|x*w| + |b|)`` (Higham, Lemma 3.1) with
   ``n = max n_depthwise + n_pointwise``.
   Copying layers (Cropping, ZeroPadding, nearest UpSampling) perform no
   arithmetic: ``gamma(n - 1)`` with ``n = 1`` is 0, compared exactly; the
   gradient of nearest UpSampling sums ``size**rank`` copies, so it gets
   ``gamma(n - 1)``. Interpolating UpSampling (bilinear, bicubic, lanczos,
   area) is ``y = A x`` per axis with weights computed in the dtype: the bound
   is ``gamma(n + 4*rank) * |A| |x|``, where ``|A|`` is read off the reference
   by resizing unit vectors, plus, per axis j, ``u * |A_1| .. E_j .. |A_r| |x|`` with
   ``E_j`` the error of each computed weight inside the kernel's radius (taps whose
   exact weight is 0 included): ``4(|src| + 1) + 2*taps``, ``src`` the sample
   coordinate (see ``_resize_weight_errors``).
2. **Activation**. An error ``e`` of the pre-activation ``z`` moves
   ``f(z)`` by at most ``max |f'(t)|, t in {z-e, z, z+e}`` times ``e``, plus the
   height of any jump of ``f`` itself inside ``[z - e, z + e]`` (hard_shrink at +-0.5); the
   activation's own evaluation adds ``4u(|f(z)| + c_f(z))``: a few roundings
   relative to the result, and ``c_f`` the size of what cancels where the
   formula subtracts nearly equal quantities (``|z|`` for ``z - tanh(z)``,
   squareplus and gelu; ``(|z| + 3)/6`` for ``relu6(z + 3)/6``; about 1 for
   ``exp(z) - 1`` and ``log(exp(z) + 1)`` as Keras documents elu and softplus; see
   ``_CANCELLING``; 0 elsewhere). softmax, from its Jacobian
   ``dp_i = p_i ((1 - p_i) dz_i - sum_{j != i} p_j dz_j)``:
   ``p_i ((1 - p_i) e_i + sum_{j != i} p_j e_j)``, so a saturated output (p_i near 1)
   keeps a relative bound; log_softmax: ``e_i + sum_j p_j e_j``; sparsemax is a
   projection, 1-Lipschitz in l2: ``||e_row||_2`` where some ``z +- e`` could change
   the support, else its Jacobian on the support S (``(1 - 1/|S|) e_i + sum_{j in S, j != i} e_j / |S|``,
   0 off S); glu ``a*sigmoid(b)``: ``sigmoid(b) e_a +
   |a| sigmoid'(b) e_b`` plus ``4u|y|``; the others plus ``(L + 4) u`` times
   the row's scale (``L`` the row length).
3. **Gradients**, through the VJP with absolute values. The activation's VJP
   ``g_z = f'(z) g`` has error ``|g| max_{t = z +- e} |f'(t) - f'(z)|`` plus
   evaluation ``4u|g|(|f'(z)| + 1 + |z|)`` (the derivatives of silu, mish and
   gelu add terms as large as ``|z| sigmoid'(z)``, each rounded). The first term is the *kink rule*: where
   ``z`` lies within its own allowed error (plus ``u``, so that an exactly
   computed ``z`` at the kink counts) of a kink (relu at 0, relu6 at 0 and
   6, the ends of hard_sigmoid, hard_tanh, soft/hard_shrink, ...), the
   derivative is undefined and the allowance widens by the jump of ``f'``;
   sparsemax rows whose support is ambiguous allow ``2 max|g|``. Each gradient
   of the linear part is again a sum of products: ``gamma(N) * VJP(|x|, |w|,
   |g_z|)`` with ``N`` from the VJP of all ones, plus the error of ``g_z``
   carried through ``VJP(|x|, |w|, err(g_z))``.

Every rounding term (the linear part's bound, each activation's evaluation error, each
gradient's sum) is multiplied by the safety factor :data:`SAFETY` (= 2), once: an error
carried through an activation is not multiplied again. The bound is rigorous for any
summation order and for fused multiply-adds; it does not cover Winograd or FFT
convolution algorithms, whose error is larger (an implementation using them should run
float64 or say so).

At float16 and bfloat16 a third, **strict low-precision class** (:func:`bounds_strict_scale`,
:func:`_low_precision_strict`) states what careful kernels do, exact products accumulated in
float32 and a counted number of roundings to the dtype, and bounds that; a result outside it and
inside the run's bound is a quality warning (conformance.scoring).
"""
from __future__ import annotations

import copy
import functools

import numpy as np

from conv_conformance import reference
from conv_conformance.reference.activations import activate, activate_vjp
from conv_conformance.vocabulary import DTYPES, TOLERANCE_MODES

__all__ = ["SAFETY", "DTYPES", "MODES", "FALSE_ALARM", "unit_roundoff", "underflow", "gamma", "gamma_tilde", "lambda_for",
           "allowed_errors", "allowed_errors_modes", "LOW_PRECISION", "STRICT_ROUNDINGS", "bounds_strict_scale"]

SAFETY = 2.0
MODES = TOLERANCE_MODES
#: The probabilistic bound's false-alarm probability per case (all its elements together),
#: under the model of Higham & Mary (2019): see lambda_for and docs/tolerance.md.
FALSE_ALARM = 1e-6
_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}
_U32 = _ROUNDOFF["float32"]
#: The dtypes with a low-precision strict class (float32 accumulation, counted roundings): a product
#: of two of their values has at most 2 * 11 significant bits, exact in float32's 24.
LOW_PRECISION = ("float16", "bfloat16")
#: Activations whose value at a number of the dtype is a number of the dtype (no rounding) and no
#: larger than the pre-activation: the strict class counts no rounding for them.
_EXACT = ("linear", "relu", "relu6")
_LAST_AXIS = ("softmax", "log_softmax", "sparsemax", "glu")
_COPY_FAMILIES = ("cropping", "zero_padding")


#: Half the smallest subnormal of each dtype: the absolute error of one rounding that underflows
#: (the standard model with underflow, fl(a op b) = (a op b)(1 + delta) + eta, |eta| <= this;
#: Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 2.1).
_UNDERFLOW = {"float64": 2.0 ** -1075, "float32": 2.0 ** -150, "float16": 2.0 ** -25, "bfloat16": 2.0 ** -134}
#: Roundings that can underflow besides the products of a sum: the bias add, the activation's own
#: operations and the rounding of the result to the dtype.
_UNDERFLOW_EXTRA = 8


def underflow(dtype: str) -> float:
    """eta: half the smallest subnormal of ``dtype`` (2**-25 for float16: 3.0e-8)."""
    unit_roundoff(dtype)  # the same check of the argument
    return _UNDERFLOW[dtype]


def unit_roundoff(dtype: str) -> float:
    """u = 2**-p for a dtype with p bits of precision: 2**-53, 2**-24, 2**-11, 2**-8."""
    if dtype not in _ROUNDOFF:
        raise ValueError(f"Argument `dtype` must be one of {', '.join(map(repr, DTYPES))}. "
                         f"Received: dtype={dtype!r}")
    return _ROUNDOFF[dtype]


def gamma(n, u: float):
    """gamma_n = n*u / (1 - n*u), elementwise over n (0 where n <= 0; inf where n*u >= 1/2: a sum
    that long has no useful rigorous bound, e.g. 3*3*512 terms in float16, and only the
    probabilistic mode can check it)."""
    nu = np.maximum(np.asarray(n, dtype=np.float64), 0.0) * u
    ok = nu < 0.5
    return np.divide(nu, 1.0 - nu, out=np.full(nu.shape, np.inf), where=ok)


def lambda_for(terms: float, elements: int, u: float, false_alarm: float = FALSE_ALARM) -> float:
    """lambda such that every element of a case, each a sum of at most ``terms`` terms, stays
    within gamma_tilde(n, lambda) * sum|terms| with probability at least 1 - false_alarm.

    Higham & Mary (2019, Theorem 3.1 / 4.6): with rounding errors delta_k independent, of mean
    zero and |delta_k| <= u, |prod (1 + delta_k) - 1| <= gamma_tilde(n, lambda) fails with
    probability at most 2 exp(-lambda^2 (1-u)^2 / 2) per product of n factors; a sum of n terms
    has n such products, a case ``elements`` sums: union bound over all of them.
    """
    count = max(float(terms), 1.0) * max(int(elements), 1)
    return float(np.sqrt(2.0 * np.log(2.0 * count / false_alarm))) / (1.0 - u)


def gamma_tilde(n, u: float, lam: float):
    """Higham & Mary's probabilistic gamma: exp(lambda sqrt(n) u + n u^2 / (1 - u)) - 1, elementwise
    (about lambda sqrt(n) u; 0 where n <= 0)."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 0.0)
    return np.expm1(lam * np.sqrt(n) * u + n * u * u / (1.0 - u))


# ------------------------------------------------------------ helpers

def _with(spec: dict, **config) -> dict:
    out = copy.deepcopy(spec)
    out["config"].update(config)
    return out


def _abs(weights: dict) -> dict:
    return {k: np.abs(np.asarray(v, dtype=np.float64)) for k, v in weights.items()}


def _ones(weights: dict) -> dict:
    return {k: np.ones(np.shape(v)) for k, v in weights.items()}


def _no_bias(spec: dict, weights: dict) -> tuple[dict, dict]:
    if "use_bias" not in spec["config"]:
        return spec, weights
    return _with(spec, use_bias=False), {k: v for k, v in weights.items() if k != "bias"}


def _abs_resize_matrices(spec: dict, spatial: tuple[int, ...]) -> list[np.ndarray]:
    """|A_j| for each spatial axis of an UpSampling layer, read off the reference.

    Resizing the unit vectors of axis j (batch of n_j one-hot inputs, the other
    axes of length 1, their size 1) returns the columns of A_j.
    """
    cfg = spec["config"]
    rank = len(spatial)
    size = reference.shapes.upsampling_factors(cfg, rank)
    mats = []
    for j, n in enumerate(spatial):
        probe = _with(spec, size=size[j] if rank == 1 else [size[i] if i == j else 1 for i in range(rank)],
                      data_format="channels_last") if rank > 1 else spec
        shape = [n] + [n if i == j else 1 for i in range(rank)] + [1]
        x = np.zeros(shape)
        for b in range(n):
            x[(b,) + tuple(b if i == j else 0 for i in range(rank)) + (0,)] = 1.0
        y = reference.forward(probe, x, {})
        cols = y.reshape(n, -1)  # [b, o] = A[o, b]
        mats.append(np.abs(cols.T))
    return mats


def _apply_along(a: np.ndarray, mats: list[np.ndarray], transpose: bool = False) -> np.ndarray:
    for ax, m in enumerate(mats, start=1):
        a = np.moveaxis(np.tensordot(m.T if transpose else m, a, axes=([1], [ax])), 0, ax)
    return a


_KERNEL_RADIUS = {"bilinear": 1, "bicubic": 2, "lanczos3": 3, "lanczos5": 5}


def _resize_weight_errors(cfg: dict, spatial: tuple[int, ...], mats: list[np.ndarray]) -> list[np.ndarray]:
    """Per axis, a bound (in units of u) on the error of each resize weight computed in the dtype.

    Output o samples the input at src = (o + 0.5)/size - 0.5 (half-pixel centres), computed
    with an error of about 2u(|src| + 1); a weight is a kernel of (i - src) with slope at most
    2 (linear, Keys cubic, lanczos), evaluated to a few u, then normalised by the sum of the
    taps: 4(|src| + 1) + 2*taps, for every tap inside the kernel's radius, including those whose
    exact weight is 0 (lanczos at integer offsets, bilinear at frac = 0), which the
    implementation still computes. area weights are exact fractions of the scale: none.
    """
    method = cfg.get("interpolation", "nearest")
    rank = len(spatial)
    size = reference.shapes.upsampling_factors(cfg, rank)
    out = []
    for n, scale, a in zip(spatial, size, mats):
        if method not in _KERNEL_RADIUS:
            out.append(np.zeros_like(a))
            continue
        src = np.array(reference.shapes.sample_points(n, scale))[:, None]
        # <=: a tap at exactly the radius (bilinear at frac = 0) gets a weight of the size of the
        # sample coordinate's rounding error when that coordinate is computed in the dtype
        inside = (np.abs(np.arange(n)[None, :] - src) <= _KERNEL_RADIUS[method]) | (a > 0)
        taps = inside.sum(axis=1, keepdims=True)
        out.append(inside * (4 * (np.abs(src) + 1) + 2 * taps))
    return out


def _weight_error_sum(a: np.ndarray, mats: list[np.ndarray], errors: list[np.ndarray],
                      transpose: bool = False) -> np.ndarray:
    """First-order effect of the weight errors of y = A_1 A_2 ... a: sum over the axes j of
    the product with |A_j| replaced by its error bound."""
    total = np.zeros(_apply_along(a, mats, transpose).shape)
    for j in range(len(mats)):
        total += _apply_along(a, [errors[k] if k == j else mats[k] for k in range(len(mats))], transpose)
    return total


def _internal(a: np.ndarray, cfg: dict) -> np.ndarray:
    return np.moveaxis(a, 1, -1) if cfg.get("data_format") == "channels_first" else a


def _external(a: np.ndarray, cfg: dict) -> np.ndarray:
    return np.moveaxis(a, -1, 1) if cfg.get("data_format") == "channels_first" else a


# -------------------------------------------------- activation error bounds

# Evaluating an elementwise f at a given z in the dtype costs a few roundings relative to
# |f(z)| (libm-accurate exp, tanh, erf; products and quotients of them). Where the formula
# subtracts nearly equal quantities, the rounding of what cancels stays as an absolute error:
_CANCELLING = {
    "tanh_shrink": np.abs,                                       # z - tanh(z)
    "squareplus": np.abs,                                        # (z + sqrt(z*z + 4)) / 2
    "gelu": np.abs,                                              # z/2 * (1 + erf(z / sqrt 2))
    "hard_sigmoid": lambda z: (np.abs(z) + 3) / 6,               # relu6(z + 3) / 6
    "hard_silu": lambda z: np.abs(z) * (np.abs(z) + 3) / 6,      # z * relu6(z + 3) / 6
    "hard_swish": lambda z: np.abs(z) * (np.abs(z) + 3) / 6,
    "sparse_sigmoid": lambda z: (np.abs(z) + 1) / 2,             # (z + 1) / 2
    "sparse_plus": lambda z: (np.abs(z) + 1) ** 2 / 2,           # (z + 1)^2 / 4
    "soft_shrink": lambda z: np.abs(z) + 0.5,                    # z -+ 0.5
    # Keras documents these as exp(z) - 1 and log(exp(z) + 1): evaluated as written (TensorFlow's
    # elu does), the rounding of exp(z) near 1 stays as an absolute error (elu(-1e-3) in float64
    # is off by 3e-17, 270 units of its own roundoff, through tf.nn.elu)
    "elu": lambda z: np.exp(np.minimum(z, 0)),
    "celu": lambda z: np.exp(np.minimum(z, 0)),
    "selu": lambda z: 1.0507009873554805 * 1.6732632423543772 * np.exp(np.minimum(z, 0)),
    "softplus": lambda z: np.ones_like(z),
    "log_sigmoid": lambda z: np.ones_like(z),
    # Keras documents mish as z * tanh(softplus(z)): softplus's absolute error (1 above, tanh' <= 1)
    # times |z| (in float32 at z = -20, log(exp(z) + 1) is 0 and the documented mish -0.0)
    "mish": np.abs,
}


# Activations whose value jumps, not only their slope: hard_shrink is 0 on [-0.5, 0.5] and z
# outside it, so a pre-activation within its allowed error of +-0.5 may land on either side of the
# jump (a float16 rounding of -0.50020 is -0.5, which hard_shrink maps to 0). (point, height):
_JUMPS = {"hard_shrink": ((-0.5, 0.5), (0.5, 0.5))}


def _sparsemax_support(z: np.ndarray, norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(support, ambiguous): the support of sparsemax(z), and per row whether some z - e with
    ||e||_2 <= norm can have another support (an element within 2*norm of the threshold:
    tau moves by at most max|e| <= norm, each z_i by at most norm)."""
    y = activate("sparsemax", z)
    on = y > 0
    tau = np.where(on, z - y, np.inf).min(-1, keepdims=True)
    near = (on & (y <= 2 * norm)) | (~on & (z - tau > -2 * norm))
    return on, near.any(-1, keepdims=True)


def _activation_forward(name: str, z: np.ndarray, e: np.ndarray, u: float, safety: float = 1.0) -> np.ndarray:
    """Bound on |f^(z^) - f(z)| given |z^ - z| <= e, f evaluated in the dtype.

    Two parts: ``e`` carried through f (first order, with the slope's supremum over
    [z - e, z + e] or a 1% margin for the second-order terms of the row functions), and
    the rounding of evaluating f itself, multiplied by ``safety``.
    """
    if name == "linear":
        return e
    y = activate(name, z)
    if name == "softmax":
        # dp_i = p_i ((1 - p_i) dz_i - sum_{j != i} p_j dz_j)
        L = z.shape[-1]
        return y * ((1 - y) * e + (y * e).sum(-1, keepdims=True) - y * e) * 1.01 + safety * (L + 4) * u * y
    if name == "log_softmax":
        L = z.shape[-1]
        p = activate("softmax", z)
        lse = z - y
        return e + (p * e).sum(-1, keepdims=True) + safety * (L + 4) * u * (np.abs(z) + np.abs(lse) + 1)
    if name == "sparsemax":
        # a projection, 1-Lipschitz in l2; where no z - e can change the support S, it is the
        # linear map y_S = z_S - mean(z_S) + 1/|S|, y elsewhere 0, and the error is that map's
        L = z.shape[-1]
        norm = np.sqrt((e * e).sum(-1, keepdims=True))
        on, ambiguous = _sparsemax_support(z, norm)
        k = on.sum(-1, keepdims=True)
        linear = on * ((1 - 1 / k) * e + ((e * on).sum(-1, keepdims=True) - e) / k) * 1.01
        scale = np.abs(z).max(-1, keepdims=True) + 1
        return np.where(ambiguous, norm, linear) + safety * (L + 4) * u * scale
    if name == "glu":
        a, b = np.split(z, 2, axis=-1)
        ea, eb = np.split(e, 2, axis=-1)
        s = activate("sigmoid", b)
        return s * ea + np.abs(a) * s * (1 - s) * eb * 1.01 + safety * 4 * u * np.abs(y)  # a product: relative
    ones = np.ones_like(z)
    slope = np.maximum.reduce([np.abs(activate_vjp(name, t, ones)) for t in (z - e, z, z + e)])
    cancel = _CANCELLING.get(name)
    jumps = sum((np.where(np.abs(z - point) <= e, height, 0.0) for point, height in _JUMPS.get(name, ())), 0.0)
    return slope * e + jumps + safety * 4 * u * (np.abs(y) + (cancel(z) if cancel else 0))


def _activation_vjp(name: str, z: np.ndarray, e: np.ndarray, g: np.ndarray, u: float) -> np.ndarray:
    """Bound on the error of g_z = J_f(z)^T g when z is known to within e."""
    if name == "linear":
        return np.zeros_like(z)
    ag = np.abs(g)
    if name in ("softmax", "log_softmax"):
        L = z.shape[-1]
        p = activate("softmax", z)
        dp = _activation_forward("softmax", z, e, u)
        if name == "log_softmax":
            sg = np.abs(g.sum(-1, keepdims=True))
            return dp * sg + (L + 4) * u * (ag + p * sg)
        gp = np.abs((g * p).sum(-1, keepdims=True))
        return dp * (ag + gp) + p * (dp * ag).sum(-1, keepdims=True) + (L + 4) * u * p * (ag + gp)
    if name == "sparsemax":
        L = z.shape[-1]
        _, ambiguous = _sparsemax_support(z, np.sqrt((e * e).sum(-1, keepdims=True)))
        gmax = ag.max(-1, keepdims=True)
        return np.where(ambiguous, 2 * gmax, (L + 4) * u * gmax) + np.zeros_like(z)
    if name == "glu":
        a, b = np.split(z, 2, axis=-1)
        ea, eb = np.split(e, 2, axis=-1)
        s = activate("sigmoid", b)
        ds = s * (1 - s)
        ga = ag * ds * eb * 1.01 + 4 * u * ag * s
        gb = ag * (ds * ea + np.abs(a) * 0.1 * eb) + 4 * u * ag * (np.abs(a) * ds + 1)
        return np.concatenate([ga, gb], axis=-1)
    ones = np.ones_like(z)
    d0 = activate_vjp(name, z, ones)
    jump = np.maximum.reduce([np.abs(activate_vjp(name, t, ones) - d0) for t in (z - e, z + e)])
    # f'(z) of silu, mish, gelu is a sum of terms as large as |z| * f''-like factors (e.g.
    # z * sigmoid(z) * (1 - sigmoid(z))), each rounded: hence the |z| in the evaluation error.
    return ag * jump + 4 * u * ag * (np.abs(d0) + 1 + np.abs(z))


# ---------------------------------------------------------- linear parts

def _linear_bounds(spec, x, weights, u):
    """(linear spec, pre-activation z, z's allowed error, term count n, |x|,|w| sum S, the error of the
    sum alone when accumulated in float32) of a conv-family layer."""
    lin = _with(spec, activation="linear")
    z = reference.forward(lin, x, weights)
    nb_spec, nb_w = _no_bias(lin, weights)
    family = reference.LAYERS[spec["class_name"]].family
    if family == "separable":
        cfg = spec["config"]
        dw_spec = {"class_name": spec["class_name"].replace("Separable", "Depthwise"),
                   "config": {k: cfg[k] for k in ("kernel_size", "strides", "padding", "data_format",
                                                  "dilation_rate", "depth_multiplier")}
                   | {"activation": "linear", "use_bias": False}}
        n_dw = reference.forward(dw_spec, np.ones(x.shape), {"kernel": np.ones(np.shape(weights["depthwise_kernel"]))})
        n = np.full(z.shape, n_dw.max(initial=0) + np.shape(weights["pointwise_kernel"])[-2])
        n = n + ("bias" in weights)
        s = reference.forward(lin, np.abs(x), _abs(weights))
        return lin, z, SAFETY * gamma(n, u) * s + u * np.abs(z), n, s, SAFETY * gamma(n, _U32) * s
    # One sum of N = n products (+ the bias): rounding each product costs u*sum|x*w|; each of
    # the N - 1 additions, in whatever order or tree, rounds a partial sum of a subset of the
    # terms, which lies in [-P-, P+] (P+- the sums of the positive and of the negative terms).
    n = reference.forward(nb_spec, np.ones(x.shape), _ones(nb_w)) + ("bias" in weights)
    positive, negative = _signed_products(nb_spec, x, nb_w)  # sum|x*w| = positive + negative
    plus, minus = positive, negative
    if "bias" in weights:
        bias = weights["bias"]
        plus = plus + _along_channels(np.maximum(bias, 0), plus, spec["config"])
        minus = minus + _along_channels(np.maximum(-bias, 0), minus, spec["config"])
    def summed(uu):  # the sum's own rounding with unit roundoff uu, whatever the order
        return SAFETY * (uu * (positive + negative) + gamma(n - 1, uu) * (1 + uu) ** 2 * np.maximum(plus, minus))

    return lin, z, summed(u) + u * np.abs(z), n, plus + minus, summed(_U32)


def _signed_products(unbiased: dict, x: np.ndarray, kernels: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per output element, the sum of its positive products x*w and of its negative ones
    (magnitudes), from four reference runs on the signs' parts."""
    xp, xn = np.maximum(x, 0), np.maximum(-x, 0)
    kp = {k: np.maximum(v, 0) for k, v in kernels.items()}
    kn = {k: np.maximum(-v, 0) for k, v in kernels.items()}
    run = functools.partial(reference.forward, unbiased)
    return run(xp, kp) + run(xn, kn), run(xp, kn) + run(xn, kp)


def _along_channels(per_channel: np.ndarray, like: np.ndarray, cfg: dict) -> np.ndarray:
    """A per-channel vector broadcast to an output of the layer (the channel axis by data_format)."""
    return _external(np.broadcast_to(per_channel, _internal(like, cfg).shape), cfg)


def allowed_errors(spec: dict, inputs, weights: dict | None, output_grad, dtype: str, *,
                   mode: str = "rigorous") -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """Allowed absolute error of every output element and every gradient element.

    Returns ``(allowed_output, allowed_gradients)``; ``allowed_gradients`` is
    None when ``output_grad`` is None, else keyed like ``reference.vjp``.
    ``mode``: ``"rigorous"`` (holds for every summation order) or ``"probabilistic"``
    (holds with probability 1 - FALSE_ALARM per case under Higham & Mary's model; never
    larger than the rigorous one). The derivation is in this module's docstring.
    """
    if mode not in MODES:
        raise ValueError(f"Argument `mode` must be one of {', '.join(map(repr, MODES))}. Received: mode={mode!r}")
    return allowed_errors_modes(spec, inputs, weights, output_grad, dtype)[mode]


def allowed_errors_modes(spec: dict, inputs, weights: dict | None, output_grad, dtype: str
                         ) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray] | None]]:
    """``{mode: (allowed_output, allowed_gradients)}`` for both MODES, sharing the reference runs.

    Only the sums of products (convolution families) differ between the modes; copying and
    resizing layers get the same (rigorous) bound in both.
    """
    return bounds_and_scale(spec, inputs, weights, output_grad, dtype)[0]


def bounds_and_scale(spec: dict, inputs, weights: dict | None, output_grad, dtype: str
                     ) -> tuple[dict[str, tuple[np.ndarray, dict[str, np.ndarray] | None]], np.ndarray | None]:
    """(:func:`allowed_errors_modes`, the term scale ``sum|x*w| + |b|`` of every pre-activation
    output element: None for layers that compute no sums of products). The scale is what
    :mod:`conformance.precision` measures errors against."""
    modes, _, scale = _bounds(spec, inputs, weights, output_grad, dtype)
    return modes, scale


def bounds_strict_scale(spec: dict, inputs, weights: dict | None, output_grad, dtype: str):
    """(:func:`allowed_errors_modes`, the strict class's ``(allowed_output, allowed_gradients)``, the
    term scale), sharing the reference runs. The strict class is the low-precision class
    (:func:`_low_precision_strict`) for sums of products at float16 and bfloat16, else the
    probabilistic bound."""
    modes, strict, scale = _bounds(spec, inputs, weights, output_grad, dtype)
    return modes, strict if strict is not None else modes["probabilistic"], scale


def _bounds(spec, inputs, weights, output_grad, dtype):
    u = unit_roundoff(dtype)
    spec = reference.normalize(spec)
    x = np.asarray(inputs, dtype=np.float64)
    weights = {k: np.asarray(v, dtype=np.float64) for k, v in (weights or {}).items()}
    layer = reference.LAYERS[spec["class_name"]]
    cfg = spec["config"]
    g = None if output_grad is None else np.asarray(output_grad, dtype=np.float64)

    if layer.family in _COPY_FAMILIES or (layer.family == "upsampling" and cfg.get("interpolation", "nearest") == "nearest"):
        out = np.zeros(reference.output_shape(spec, x.shape))
        if g is None:
            return dict.fromkeys(MODES, (out, None)), None, None
        n = reference.vjp(spec, np.ones(x.shape), {}, np.ones(g.shape))["inputs"]
        return dict.fromkeys(MODES, (out, {"inputs": SAFETY * gamma(n - 1, u)
                                           * reference.vjp(spec, x, {}, np.abs(g))["inputs"]})), None, None

    if layer.family == "upsampling":
        xi = _internal(x, cfg)
        mats = _abs_resize_matrices(spec, xi.shape[1:-1])
        weight_errors = _resize_weight_errors(cfg, xi.shape[1:-1], mats)
        extra = 4 * layer.rank
        y = np.abs(reference.forward(spec, x, {}))
        n = _apply_along(np.ones(xi.shape), [(m > 0) * 1.0 for m in mats])
        eta = underflow(dtype)  # each product of a weight and a value may underflow, and the result
        out = _external(SAFETY * (gamma(n + extra, u) * _apply_along(np.abs(xi), mats)
                                  + u * _weight_error_sum(np.abs(xi), mats, weight_errors))
                        + eta * (n + extra + 1), cfg) + u * y
        if g is None:
            return dict.fromkeys(MODES, (out, None)), None, None
        gi = _internal(g, cfg)
        n = _apply_along(np.ones(gi.shape), [(m > 0) * 1.0 for m in mats], transpose=True)
        dx = _external(SAFETY * (gamma(n + extra, u) * _apply_along(np.abs(gi), mats, transpose=True)
                                 + u * _weight_error_sum(np.abs(gi), mats, weight_errors, transpose=True))
                       + eta * (n + extra + 1), cfg)
        return dict.fromkeys(MODES, (out, {"inputs": dx})), None, None

    lin, z, ez, n, s, e32 = _linear_bounds(spec, x, weights, u)
    act = cfg["activation"]
    aw = _abs(weights)
    counts = sums = None
    if g is not None:
        gz = activate_vjp(act, z, g)
        sums = reference.vjp(lin, np.abs(x), aw, np.abs(gz))
        counts = reference.vjp(lin, np.ones(x.shape), _ones(weights), np.ones(gz.shape))
    # one lambda per case: the longest sum and every element of the output and the gradients
    terms = max([float(n.max(initial=1))] + ([float(c.max(initial=1)) for c in counts.values()] if g is not None else []))
    elements = z.size + (sum(c.size for c in counts.values()) if g is not None else 0)
    lam = lambda_for(terms, elements, u)
    bounds = {"rigorous": ez, "probabilistic": np.minimum(ez, gamma_tilde(n, u, lam) * s + u * np.abs(z))}
    out = {}
    for mode, e in bounds.items():
        with np.errstate(invalid="ignore"):  # an infinite rigorous e (gamma) gives inf * 0: NaN, made inf below
            out[mode] = _through_activation(act, lin, x, aw, z, e, g, u, mode, lam, counts, sums) if g is not None \
                else (_activation_forward(act, z, e, u, safety=SAFETY), None)  # e carries SAFETY already
    # a rigorous bound that is infinite (gamma: n*u >= 1/2) stays infinite through the activation;
    # every product, and every rounding after the sum, may underflow by eta (absolute)
    eta = underflow(dtype)
    longest = float(np.max(n, initial=0))  # per output element n would not fit glu's halved last axis
    out = {mode: (_inf_for_nan(a) + eta * (longest + _UNDERFLOW_EXTRA),
                  None if gr is None else {k: _inf_for_nan(v) + eta * (counts[k] + _UNDERFLOW_EXTRA)
                                           for k, v in gr.items()})
           for mode, (a, gr) in out.items()}
    strict = None
    if dtype in LOW_PRECISION:
        lam32 = lambda_for(terms, elements, _U32)
        e32 = np.minimum(e32, gamma_tilde(n, _U32, lam32) * s)
        strict = _low_precision_strict(spec, lin, x, weights, z, e32, s, g, dtype, counts, sums, lam32)
    return out, strict, s


def _through_activation(act, lin, x, aw, z, e, g, u, mode, lam, counts, sums):
    """(allowed output, allowed gradients) of one mode, from the pre-activation's bound e."""
    allowed = _activation_forward(act, z, e, u, safety=SAFETY)  # e carries SAFETY already
    # + u: a pre-activation computed exactly at a kink (e.g. z == 0) still has no defined derivative
    egz = SAFETY * _activation_vjp(act, z, e + u, g, u)
    carried = reference.vjp(lin, np.abs(x), aw, egz) if np.any(egz) else {k: 0.0 for k in sums}
    factor = {k: SAFETY * gamma(counts[k], u) for k in sums} if mode == "rigorous" else \
        {k: np.minimum(SAFETY * gamma(counts[k], u), gamma_tilde(counts[k], u, lam)) for k in sums}
    return allowed, {k: factor[k] * sums[k] + carried[k] for k in sums}


def _inf_for_nan(a: np.ndarray) -> np.ndarray:
    nan = np.isnan(a)
    return np.where(nan, np.inf, a) if nan.any() else a


# ------------------------------------------------ the low-precision strict class

#: Roundings to the storage dtype the strict class allows between the convolution and the stored
#: output: after the convolution, after the bias, and the activation's own (counted in its
#: evaluation term); a separable layer also stores its depthwise stage.
STRICT_ROUNDINGS = ("convolution", "bias", "activation")


def _low_precision_strict(spec, lin, x, weights, z, e32, s, g, dtype, counts, sums, lam32):
    """The strict class at float16 / bfloat16: (allowed output, allowed gradients).

    Assumes what oneDNN, cuDNN, XNNPACK, MLAS and PyTorch's CPU kernels do: products of two values
    of the dtype are exact in float32, the sum is accumulated in float32 or better (in any order:
    ``e32``, the smaller of the rigorous and the probabilistic bound with float32's unit roundoff,
    ``lam32`` the case's lambda at float32), and the result is rounded to the dtype
    at most once after the convolution, once after the bias (``u|c| + u|z|``, ``c = z - b``; a
    separable layer once more after its depthwise stage, ``u * S``) and by the activation's own
    evaluation in the dtype (``4u(|f(z)| + c_f(z))`` as in the rigorous bound, without the safety
    factor; none for linear, relu and relu6, whose value at a number of the dtype is one). No
    product or float32 sum underflows; each rounding to the dtype may (``eta`` each; an intermediate
    of the activation's formula, ``4 eta (1 + |z|)``: silu's sigmoid(z) times z). Gradients: the
    same float32 accumulation of the VJP's sums, one rounding of the result, and the error of
    ``f'(z) g`` carried as in the rigorous bound.
    """
    u, eta = unit_roundoff(dtype), underflow(dtype)
    act = spec["config"]["activation"]
    family = reference.LAYERS[spec["class_name"]].family
    c = z - _along_channels(weights["bias"], z, spec["config"]) if "bias" in weights else z
    ez = e32 + u * np.abs(c)
    if "bias" in weights:
        ez = ez + u * (np.abs(z) + ez)
    if family == "separable":
        ez = ez + u * s
    with np.errstate(invalid="ignore"):
        if act in _EXACT:
            ones = np.ones_like(z)
            slope = np.maximum.reduce([np.abs(activate_vjp(act, t, ones)) for t in (z - ez, z, z + ez)])
            out = slope * ez
        else:  # + the underflow of the formula's intermediates, carried by factors as large as |z| (silu)
            size = np.abs(z).max(-1, keepdims=True) if act in _LAST_AXIS else np.abs(z)  # glu halves the axis
            out = _activation_forward(act, z, ez, u) + 4 * eta * (1 + size)
        out = _inf_for_nan(out) + eta * len(STRICT_ROUNDINGS) * 2
        if g is None:
            return out, None
        aw = _abs(weights)
        egz = _activation_vjp(act, z, ez + u, g, u)
        carried = reference.vjp(lin, np.abs(x), aw, egz) if np.any(egz) else {k: 0.0 for k in sums}
        expected = reference.vjp(lin, x, weights, activate_vjp(act, z, g))
        accumulated = {k: np.minimum(SAFETY * gamma(counts[k], _U32), gamma_tilde(counts[k], _U32, lam32)) * sums[k]
                       for k in sums}
        grads = {k: accumulated[k] + u * np.abs(expected[k]) + carried[k]
                 + (u * sums[k] if family == "separable" else 0.0) + eta * 2 for k in sums}
    return out, {k: _inf_for_nan(v) for k, v in grads.items()}

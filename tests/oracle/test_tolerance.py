"""The tolerance model: hand-computed bounds, simulated low-precision arithmetic stays
inside them, and plausible bugs do not."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.oracle import cases, tolerance


def test_unit_roundoff():
    assert [tolerance.unit_roundoff(d) for d in tolerance.DTYPES] == [2.0 ** -53, 2.0 ** -24, 2.0 ** -11, 2.0 ** -8]
    with pytest.raises(ValueError, match="float64.*bfloat16.*Received: dtype='int8'"):
        tolerance.unit_roundoff("int8")


def test_conv1d_bound_by_hand():
    # y[j] = x_j w0 + x_{j+1} w1 + b: rounding the 2 products costs u * sum|x w|; the 2 additions
    # round partial sums of subsets of the 3 terms, each at most max(P+, P-) in magnitude:
    # 2 * (u * sum|x w| + gamma_2 (1 + u)^2 max(P+, P-)) + u|y|
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 2}}
    x = np.array([[[0.5], [-1.0], [0.75]]])          # (1, 3, 1)
    w = {"kernel": np.array([[[2.0]], [[0.25]]]), "bias": np.array([-0.5])}
    u = 2.0 ** -24
    g2 = 2 * u / (1 - 2 * u)
    allowed, _ = tolerance.allowed_errors(spec, x, w, None, "float32")
    # terms: (1, -0.25, -0.5) and (-2, 0.1875, -0.5)
    products = np.array([1 + 0.25, 2 + 0.1875])
    largest_side = np.array([max(1, 0.25 + 0.5), max(0.1875, 2 + 0.5)])
    y = np.array([1 - 0.25 - 0.5, -2 + 0.1875 - 0.5])
    np.testing.assert_allclose(allowed[0, :, 0], 2 * (u * products + g2 * (1 + u) ** 2 * largest_side) + u * np.abs(y),
                               rtol=1e-12)


@pytest.mark.parametrize("act", ["softmax", "sparsemax"])
def test_row_activation_bound_holds_for_every_perturbation_within_e(act):
    """|f(z + d) - f(z)| <= bound(z, e) for |d| <= e (the bound's propagated part; the float64
    evaluation of the difference itself may be off by a few units of 2**-53)."""
    from conv_conformance.oracle.tolerance import _activation_forward
    from conv_conformance.reference.activations import activate

    rng = np.random.default_rng(3)
    worst = 0.0
    for trial in range(300):
        z = rng.normal(0, [0.3, 3, 10][trial % 3], (4, 5))
        z[0] = [9.0, 0.5, 0.25, -1.0, 2.0]         # one saturated row (single sparsemax support)
        e = rng.uniform(0, 1e-3, z.shape) * [1, 1e-3][trial % 2]
        d = e * rng.choice([-1.0, 1.0], z.shape)
        bound = _activation_forward(act, z, e, 0.0)
        y = activate(act, z)
        moved = np.maximum(np.abs(activate(act, z + d) - y) - 2.0 ** -50 * (np.abs(y) + 1), 0)
        worst = max(worst, float((moved / np.maximum(bound, 1e-300)).max()))
    assert 0 < worst <= 1, worst


@pytest.mark.parametrize("layer", ["Cropping2D", "ZeroPadding3D", "UpSampling1D"])
def test_copying_layers_are_exact(layer):
    case = next(c for c in cases.case_set("smoke", layers=[layer]) if c.kind == "valid")
    m = cases.materialize(case, "float16")
    assert not m.allowed_output.any()


def test_nearest_upsampling_gradient_sums_copies():
    spec = {"class_name": "UpSampling1D", "config": {"size": 3}}
    x, g = np.ones((1, 2, 1)), np.full((1, 6, 1), 0.5)
    _, allowed = tolerance.allowed_errors(spec, x, {}, g, "float32")
    u = 2.0 ** -24
    np.testing.assert_allclose(allowed["inputs"], 2 * (2 * u / (1 - 2 * u)) * 1.5)


def _float_conv1d(x, k, dtype, order):
    """A naive Conv1D ('valid', no bias) accumulating in dtype, taps in the given order."""
    n, length, c = x.shape
    taps, _, f = k.shape
    out = np.zeros((n, length - taps + 1, f), dtype=dtype)
    terms = [(t, ci) for t in range(taps) for ci in range(c)]
    for t, ci in (terms[i] for i in order(len(terms))):
        out = (out + (x[:, t:t + out.shape[1], ci, None].astype(dtype) * k[t, ci].astype(dtype)).astype(dtype)).astype(dtype)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_simulated_low_precision_stays_within_bound(dtype):
    spec = {"class_name": "Conv1D", "config": {"filters": 3, "kernel_size": 5, "use_bias": False}}
    rng = np.random.default_rng(0)
    worst = 0.0
    for trial in range(20):
        x = cases.draw_array(rng, (2, 40, 6), dtype)
        w = {"kernel": cases.draw_array(rng, (5, 6, 3), dtype)}
        order = (lambda n: range(n)) if trial % 2 else (lambda n: np.random.default_rng(trial).permutation(n))
        actual = _float_conv1d(x, w["kernel"], dtype, order).astype(np.float64)
        expected = reference.forward(spec, x, w)
        allowed, _ = tolerance.allowed_errors(spec, x, w, None, dtype)
        worst = max(worst, float((np.abs(actual - expected) / allowed).max()))
    assert 0 < worst <= 1, worst


def _float32_bilinear_fma(x: np.ndarray, scale: int) -> np.ndarray:
    """Bilinear resize along axis 1 in float32 at half-pixel centres, the sample coordinate
    computed as one fused multiply-add of the float32 reciprocal of the scale (as a compiler that
    contracts `(o + 0.5) * (1 / scale) - 0.5` computes it): a product of two float32 values is
    exact in float64, so one rounding to float32 of the float64 expression is the FMA."""
    n = x.shape[1]
    inverse = np.float32(1 / scale)
    out = np.empty((x.shape[0], n * scale) + x.shape[2:], np.float32)
    for o in range(n * scale):
        src = np.float32(np.float64(inverse) * (o + 0.5) - 0.5)
        lo = int(np.floor(src))
        frac = np.float32(src - np.float32(lo))
        left, right = x[:, min(max(lo, 0), n - 1)], x[:, min(max(lo + 1, 0), n - 1)]
        out[:, o] = (np.float32(1) - frac) * left + frac * right
    return out


def test_a_sample_coordinate_computed_in_float32_is_allowed_at_integer_positions():
    """At scale 3 output 1 samples input 0 exactly (src = 0), but the fused multiply-add of
    float32(1/3) gives src = 1.5e-8, so the next input gets that weight: with a tiny first value
    and a large second one the error is far above u times the exact result, within the bound's
    allowance for the weights' errors (the tap at exactly the kernel's radius included)."""
    spec = {"class_name": "UpSampling2D", "config": {"size": [3, 1], "interpolation": "bilinear"}}
    x = np.array([-2.8617019e-4, 0.71], np.float32).reshape(1, 2, 1, 1)
    actual = _float32_bilinear_fma(x, 3).astype(np.float64)
    expected = reference.forward(spec, x.astype(np.float64), {})
    allowed, _ = tolerance.allowed_errors(spec, x.astype(np.float64), {}, None, "float32")
    error = np.abs(actual - expected)
    assert error[0, 1, 0, 0] > 100 * 2.0 ** -24 * abs(expected[0, 1, 0, 0])  # src is not 0 here
    assert (error <= allowed).all(), (error.ravel(), allowed.ravel())


def test_perturbation_and_missing_tap_are_caught_at_float32():
    spec = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "padding": "same"}}
    rng = np.random.default_rng(1)
    x = cases.draw_array(rng, (2, 6, 6, 8), "float32")
    w = {k: cases.draw_array(rng, s, "float32") for k, s in reference.weight_shapes(spec, x.shape).items()}
    y = reference.forward(spec, x, w)
    allowed, _ = tolerance.allowed_errors(spec, x, w, None, "float32")
    i = np.unravel_index(np.argmax(np.abs(y)), y.shape)
    assert 1e-4 * abs(y[i]) > allowed[i]
    missing = y.copy()
    missing[0, 0, 0, :] -= x[0, 0, 0, :] @ w["kernel"][1, 1]   # drop the centre tap's contribution at a corner
    assert (np.abs(missing - y) > allowed).any()


def test_kink_widens_the_gradient_allowance():
    # relu at z == 0 exactly: TF's f'(0) = 0, another implementation's 1; both must pass
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "relu", "use_bias": False}}
    x, w, g = np.array([[[0.0], [1.0]]]), {"kernel": np.array([[[0.75]]])}, np.array([[[0.5], [0.5]]])
    _, allowed = tolerance.allowed_errors(spec, x, w, g, "float32")
    assert allowed["inputs"][0, 0, 0] >= 0.5 * 0.75
    assert allowed["inputs"][0, 1, 0] < 1e-6


@pytest.mark.parametrize("act", ["softmax", "log_softmax", "glu", "sparsemax", "tanh_shrink"])
def test_last_axis_activation_bounds_are_finite_and_positive(act):
    spec = {"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 2, "activation": act}}
    rng = np.random.default_rng(2)
    x = cases.draw_array(rng, (2, 5, 3), "float32")
    w = {k: cases.draw_array(rng, s, "float32") for k, s in reference.weight_shapes(spec, x.shape).items()}
    g = cases.draw_array(rng, reference.output_shape(spec, x.shape), "float32")
    allowed, grads = tolerance.allowed_errors(spec, x, w, g, "float32")
    assert np.all(np.isfinite(allowed)) and np.all(allowed > 0)
    assert all(np.all(np.isfinite(v)) and np.all(v > 0) for v in grads.values())


@pytest.mark.parametrize("mode", tolerance.MODES)
def test_a_correctly_rounded_subnormal_result_is_allowed(mode):
    """Rounding to float16 below its smallest normal (6.1e-5) errs by up to half the subnormal
    spacing, absolutely: sigmoid(-16) = 1.1254e-7 rounds to 1.1921e-7 (6% relative, 120x u). The
    bound carries that eta (the standard model with underflow); without it TensorFlow's and
    PyTorch's correctly rounded float16 results failed."""
    spec = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "sigmoid"}}
    x = np.array([[[-16.0], [-14.0], [-12.0]]])
    w = {"kernel": np.ones((1, 1, 1)), "bias": np.zeros(1)}
    y = reference.forward(spec, x, w)
    rounded = y.astype(np.float16).astype(np.float64)
    allowed, _ = tolerance.allowed_errors(spec, x, w, None, "float16", mode=mode)
    assert np.abs(rounded - y)[0, 0, 0] > tolerance.unit_roundoff("float16") * y[0, 0, 0]  # the premise
    assert np.all(np.abs(rounded - y) <= allowed)
    assert np.all(allowed < 1e-6)  # and a result of 0 (J1) is still caught at sigmoid(-12) = 6.1e-6

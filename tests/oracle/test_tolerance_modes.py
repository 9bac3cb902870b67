"""The probabilistic tolerance (Higham & Mary 2019) next to the rigorous one."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.oracle import cases, materialize, tolerance


def _materialized(spec: dict, shape, dtype: str = "float32"):
    case = cases.make_case(reference.normalize(spec), shape, "valid")
    return case, cases.materialize(case, dtype)


def test_lambda_from_the_false_alarm_probability():
    # 2 * n * E * exp(-lambda^2 (1-u)^2 / 2) = p  <=>  lambda = sqrt(2 ln(2 n E / p)) / (1 - u)
    u = 2.0 ** -24
    lam = tolerance.lambda_for(576, 1000, u, false_alarm=1e-6)
    assert lam == pytest.approx(math.sqrt(2 * math.log(2 * 576 * 1000 / 1e-6)) / (1 - u))
    assert 2 * 576 * 1000 * math.exp(-(lam * (1 - u)) ** 2 / 2) == pytest.approx(1e-6)
    assert tolerance.lambda_for(576, 10 ** 6, u) > lam  # more elements: a larger lambda


def test_gamma_tilde_is_about_lambda_sqrt_n_u():
    u = 2.0 ** -11
    g = tolerance.gamma_tilde(np.array([0, 4, 4608]), u, 7.0)
    assert g[0] == 0
    assert g[1] == pytest.approx(7 * 2 * u, rel=0.01)
    assert g[2] == pytest.approx(math.expm1(7 * math.sqrt(4608) * u + 4608 * u * u / (1 - u)))
    assert tolerance.gamma(4608, u) == np.inf  # n*u > 1/2: no rigorous bound at all


def test_the_mode_is_validated():
    with pytest.raises(ValueError, match="Argument `mode` must be one of 'rigorous', 'probabilistic'. "
                                         "Received: mode='loose'"):
        tolerance.allowed_errors({"class_name": "Cropping1D", "config": {}}, np.ones((1, 3, 1)), {}, None,
                                 "float32", mode="loose")
    with pytest.raises(ValueError, match="Argument `tolerance` must be one of"):
        materialize.check_tolerance_mode("strictest")


@pytest.mark.parametrize("spec, shape", [
    ({"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 3, "activation": "relu"}}, (1, 9, 9, 64)),
    ({"class_name": "SeparableConv2D", "config": {"filters": 8, "kernel_size": 3}}, (1, 8, 8, 32)),
    ({"class_name": "Conv1DTranspose", "config": {"filters": 8, "kernel_size": 4, "strides": 2}}, (2, 9, 16)),
    ({"class_name": "DepthwiseConv2D", "config": {"kernel_size": 5, "activation": "tanh"}}, (1, 9, 9, 8)),
])
def test_probabilistic_is_never_looser_and_much_tighter_for_long_sums(spec, shape):
    case, m = _materialized(spec, shape, "float16")
    modes = tolerance.allowed_errors_modes(case.spec, m.inputs, m.weights, m.output_grad, "float16")
    (rig, rig_g), (prob, prob_g) = modes["rigorous"], modes["probabilistic"]
    assert np.all(prob <= rig) and all(np.all(prob_g[k] <= rig_g[k]) for k in rig_g)
    assert np.all(np.isfinite(prob)) and np.count_nonzero(prob) > prob.size // 3
    np.testing.assert_array_equal(m.allowed_output, rig)  # the default mode
    # at float16 the strict class is the low-precision one (float32 accumulation), tighter still
    assert np.median(m.strict_output / prob) < 0.1
    if case.layer == "Conv2D":  # 577 terms: sqrt(n) against n
        assert np.median(prob / rig) < 0.5


def test_copying_layers_get_the_same_bound_in_both_modes():
    case, m = _materialized({"class_name": "UpSampling2D", "config": {"size": 2, "interpolation": "bilinear"}},
                            (1, 5, 5, 3))
    modes = tolerance.allowed_errors_modes(case.spec, m.inputs, m.weights, m.output_grad, "float32")
    np.testing.assert_array_equal(modes["rigorous"][0], modes["probabilistic"][0])
    assert m.output_scale is None


def test_the_argument_selects_the_mode_and_the_environment_does_not(monkeypatch):
    case = cases.make_case(reference.normalize({"class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 3}}),
                           (1, 12, 64), "valid")
    monkeypatch.setenv("CONV_CONFORMANCE_TOLERANCE", "probabilistic")  # the variable an earlier version read
    default = cases.materialize(case, "float32")
    probabilistic = cases.materialize(case, "float32", "probabilistic")
    np.testing.assert_array_equal(probabilistic.allowed_output, probabilistic.strict_output)
    np.testing.assert_array_equal(default.allowed_output, cases.materialize(case, "float32", "rigorous").allowed_output)
    assert not np.array_equal(default.allowed_output, probabilistic.allowed_output)


def _float32_sequential(x, w):
    """Conv1D 'valid' in float32, term by term (the order with the largest partial sums)."""
    k, c, f = w.shape
    out = x.shape[1] - k + 1
    acc = np.zeros((x.shape[0], out, f), np.float32)
    for t in range(k):
        for ch in range(c):
            acc = acc + (x[:, t:t + out, ch, None].astype(np.float32) * w[t, ch].astype(np.float32))
    return acc


def test_float32_arithmetic_stays_inside_the_probabilistic_bound_and_a_small_error_does_not():
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 16, "kernel_size": 3, "use_bias": False}})
    case = cases.make_case(spec, (2, 40, 256), "valid")  # 768 terms per element
    m = cases.materialize(case, "float32")
    got = _float32_sequential(m.inputs, m.weights["kernel"]).astype(np.float64)
    err = np.abs(got - m.expected_output)
    assert np.max(err / m.strict_output) < 1.0  # sound on real float32 arithmetic
    # power: a relative error of 2e-4 on the largest element is caught by the strict bound, not the rigorous one
    i = np.unravel_index(np.argmax(np.abs(m.expected_output)), got.shape)
    bumped = err[i] + 2e-4 * abs(m.expected_output[i])
    assert bumped > m.strict_output[i] and bumped < m.allowed_output[i]

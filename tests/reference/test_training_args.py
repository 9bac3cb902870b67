"""The reference's training-time arguments: hand-computed values and properties."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.reference import InvalidConfig
from conv_conformance.reference.constraints import apply_constraint, normalize_constraint
from conv_conformance.reference.initializers import normalize_initializer
from conv_conformance.reference.regularizers import normalize_regularizer


def _spec(cls, **config):
    return reference.normalize({"class_name": cls, "config": config})


# ------------------------------------------------------------------ fans and distributions

@pytest.mark.parametrize("cls, config, shape, weight, fans", [
    ("Conv2D", {"filters": 32, "kernel_size": 3}, (1, 5, 5, 16), "kernel", (144, 288)),
    ("Conv2D", {"filters": 32, "kernel_size": 3, "groups": 4}, (1, 5, 5, 16), "kernel", (36, 288)),
    ("Conv2DTranspose", {"filters": 32, "kernel_size": 3}, (1, 5, 5, 16), "kernel", (288, 144)),
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, (1, 5, 5, 16), "kernel", (144, 18)),
    ("SeparableConv2D", {"filters": 64, "kernel_size": 3, "depth_multiplier": 2}, (1, 5, 5, 16),
     "pointwise_kernel", (32, 64)),
    ("Conv1D", {"filters": 7, "kernel_size": 2}, (1, 5, 3), "bias", (7, 7)),
])
def test_fans_per_kernel_layout(cls, config, shape, weight, fans):
    assert reference.weight_fans(_spec(cls, **config), shape)[weight] == fans


def test_worked_limits():
    conv = _spec("Conv2D", filters=32, kernel_size=3, kernel_initializer="he_normal")
    d = reference.initializer_distributions(conv, (1, 5, 5, 16))["kernel"]
    assert d.kind == "truncated_normal" and d.std == pytest.approx(math.sqrt(2 / 144), rel=1e-15)
    assert d.sigma == pytest.approx(0.133979, abs=1e-6)  # research note 1.1: pre-truncation sigma
    assert d.high == pytest.approx(2 * math.sqrt(2 / 144) / 0.87962566103423978, rel=1e-15)
    glorot = reference.initializer_distributions(_spec("Conv2D", filters=32, kernel_size=3), (1, 5, 5, 16))
    assert glorot["kernel"].high == pytest.approx(0.117851, abs=1e-6)
    assert glorot["bias"].kind == "constant" and glorot["bias"].mean == 0.0
    pw = reference.initializer_distributions(_spec("SeparableConv2D", filters=64, kernel_size=3,
                                                   depth_multiplier=2), (1, 5, 5, 16))
    assert pw["pointwise_kernel"].high == pytest.approx(0.25, rel=1e-15)


def test_truncation_constant_is_the_std_of_the_truncated_standard_normal():
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    big_phi2 = 0.5 * (1 + math.erf(2 / math.sqrt(2)))
    assert reference.TRUNCATION_STD == pytest.approx(math.sqrt(1 - 4 * phi2 / (2 * big_phi2 - 1)), rel=1e-15)


@pytest.mark.parametrize("init", ["glorot_normal", "he_uniform", "lecun_normal", "random_normal",
                                  "truncated_normal", "random_uniform",
                                  {"class_name": "VarianceScaling",
                                   "config": {"scale": 3.0, "mode": "fan_out", "distribution": "untruncated_normal"}}])
def test_sampler_matches_the_distribution(init):
    spec = _spec("Conv2D", filters=8, kernel_size=3, kernel_initializer=init)
    init = spec["config"]["kernel_initializer"]
    d = reference.distribution(init, (200, 100, 10))
    x = reference.sample(init, (200, 100, 10), seed=3).ravel()
    assert x.min() >= d.low and x.max() <= d.high
    assert abs(x.mean() - d.mean) < 6 * d.std / math.sqrt(x.size)
    assert x.std() == pytest.approx(d.std, rel=0.01)
    xs = np.sort(x)
    ks = np.max(np.abs(d.cdf(xs) - np.arange(1, xs.size + 1) / xs.size))
    assert ks < math.sqrt(math.log(2 / 1e-6) / (2 * xs.size))


def test_cdf_endpoints_and_median():
    d = reference.distribution({"class_name": "TruncatedNormal", "config": {"mean": 1.0, "stddev": 0.5, "seed": None}},
                               (3, 3))
    assert d.cdf(d.low) == 0.0 and d.cdf(d.high) == pytest.approx(1.0, abs=1e-15)
    assert d.cdf(1.0) == pytest.approx(0.5, abs=1e-15)
    assert d.std == pytest.approx(0.5 * 0.87962566103423978)


def test_orthogonal_sample_has_orthonormal_filters():
    init = normalize_initializer("Conv2D", "kernel_initializer", {"class_name": "Orthogonal",
                                                                  "config": {"gain": 2.0}})
    w = reference.sample(init, (3, 3, 4, 8), seed=1).reshape(36, 8)
    np.testing.assert_allclose(w.T @ w, 4.0 * np.eye(8), atol=1e-12)


# ------------------------------------------------------------------ normalization

def test_none_initializer_is_glorot_uniform_and_absent_bias_is_zeros():
    spec = _spec("Conv1D", filters=2, kernel_size=1, bias_initializer=None)
    assert spec["config"]["bias_initializer"]["class_name"] == "GlorotUniform"
    assert _spec("Conv1D", filters=2, kernel_size=1)["config"]["bias_initializer"]["class_name"] == "Zeros"


@pytest.mark.parametrize("arg, value, rule", [
    ("kernel_initializer", "identity", "rank-2"),
    ("kernel_initializer", "Identity", "rank-2"),
    ("kernel_initializer", "glorot", "must name one of"),
    ("kernel_initializer", {"class_name": "VarianceScaling", "config": {"scale": 0}}, "> 0"),
    ("kernel_initializer", {"class_name": "VarianceScaling", "config": {"mode": "fan_sum"}}, "fan_avg"),
    ("kernel_initializer", {"class_name": "HeNormal", "config": {"gain": 2}}, "unknown"),
    ("kernel_regularizer", "l1_l2", "l1_l2"),
    ("kernel_regularizer", "orthogonal_regularizer", "rank-2"),
    ("kernel_regularizer", {"class_name": "L2", "config": {"l2": -0.1}}, "non-negative"),
    ("bias_regularizer", {"class_name": "L1", "config": {"l1": float("nan")}}, "non-negative"),
    ("activity_regularizer", {"class_name": "L1L2", "config": {"l2": float("inf")}}, "non-negative"),
    ("kernel_constraint", "radial_constraint", "must name one of"),
    ("kernel_constraint", {"class_name": "MaxNorm", "config": {"axis": "rows"}}, "integer"),
])
def test_rejected_training_arguments_name_the_rule(arg, value, rule):
    with pytest.raises(InvalidConfig, match=rule) as info:
        _spec("Conv2D", filters=2, kernel_size=1, **{arg: value})
    assert info.value.argument.startswith(arg)


def test_identifiers_and_defaults_as_keras3():
    assert normalize_regularizer("C", "r", "l2") == {"class_name": "L2", "config": {"l2": 0.01}}
    assert normalize_regularizer("C", "r", "l1l2") == {"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.0}}
    assert normalize_regularizer("C", "r", {"class_name": "L1", "config": {"l1": None}})["config"] == {"l1": 0.01}
    assert normalize_initializer("C", "i", {"class_name": "VarianceScaling",
                                            "config": {"distribution": "Normal"}})["config"]["distribution"] \
        == "truncated_normal"
    assert normalize_constraint("C", "c", "max_norm") == {"class_name": "MaxNorm",
                                                          "config": {"max_value": 2.0, "axis": 0}}
    assert normalize_initializer("C", "i", "normal")["class_name"] == "RandomNormal"


def test_normalize_is_idempotent_with_every_argument():
    spec = _spec("SeparableConv2D", filters=2, kernel_size=2, depthwise_initializer="he_uniform",
                 pointwise_regularizer="l1", activity_regularizer="l2", depthwise_constraint="unit_norm",
                 pointwise_constraint={"class_name": "MinMaxNorm", "config": {"axis": [0, 1, 2], "rate": 0.5}},
                 bias_constraint="non_neg")
    assert reference.normalize(spec) == spec
    assert spec["config"]["pointwise_constraint"]["config"] == {"min_value": 0.0, "max_value": 1.0, "rate": 0.5,
                                                                "axis": [0, 1, 2]}


# ------------------------------------------------------------------ regularizers

def test_penalties_hand_computed():
    spec = _spec("Conv1D", filters=1, kernel_size=2, kernel_regularizer={"class_name": "L1L2",
                                                                         "config": {"l1": 0.5, "l2": 0.25}},
                 bias_regularizer="l2", activity_regularizer={"class_name": "L2", "config": {"l2": 0.1}})
    x = np.ones((4, 2, 1)) * 2.0
    w = {"kernel": np.array([[[1.0]], [[-3.0]]]), "bias": np.array([0.5])}
    p = reference.regularization(spec, x, w)
    assert p["kernel"] == 0.5 * 4 + 0.25 * 10
    assert p["bias"] == 0.01 * 0.25
    # y = 2*1 + 2*(-3) + 0.5 = -3.5 per sample; activity = 0.1 * 4 * 12.25 / batch 4
    assert p["activity"] == pytest.approx(0.1 * 12.25, rel=1e-15)


def test_regularization_vjp_matches_central_differences():
    rng = np.random.default_rng(0)
    spec = _spec("Conv2D", filters=3, kernel_size=2, activation="tanh", kernel_regularizer="l1",
                 bias_regularizer={"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.2}},
                 activity_regularizer={"class_name": "L1L2", "config": {"l1": 0.03, "l2": 0.05}})
    x = rng.uniform(0.5, 1, (2, 4, 4, 2)) * rng.choice([-1, 1], (2, 4, 4, 2))
    w = {"kernel": rng.uniform(0.5, 1, (2, 2, 2, 3)) * rng.choice([-1, 1], (2, 2, 2, 3)),
         "bias": rng.uniform(0.5, 1, 3)}
    g = reference.regularization_vjp(spec, x, w)

    def total(x, w):
        return sum(reference.regularization(spec, x, w).values())

    for name in ("inputs", "kernel", "bias"):
        arr = x if name == "inputs" else w[name]
        d = rng.normal(size=arr.shape)
        h = 1e-6

        def at(t):
            a = arr + t * d
            return total(a, w) if name == "inputs" else total(x, {**w, name: a})

        fd = (at(h) - at(-h)) / (2 * h)
        assert float(np.sum(g[name] * d)) == pytest.approx(fd, rel=1e-6, abs=1e-9), name


def test_activity_penalty_of_an_empty_batch_is_zero():
    spec = _spec("Conv1D", filters=1, kernel_size=1, activity_regularizer="l1")
    assert reference.regularization(spec, np.zeros((0, 3, 1)), {"kernel": np.ones((1, 1, 1)),
                                                                 "bias": np.zeros(1)}) == {"activity": 0.0}


# ------------------------------------------------------------------ constraints

def test_max_norm_epsilon_sits_outside_the_root():
    c = normalize_constraint("C", "c", {"class_name": "MaxNorm", "config": {"max_value": 2, "axis": 0}})
    w = np.array([[3.0, 0.3], [4.0, 0.4]])
    out = apply_constraint(c, w)
    np.testing.assert_array_equal(out[:, 0], w[:, 0] * (2.0 / (1e-7 + 5.0)))
    np.testing.assert_array_equal(out[:, 1], w[:, 1] * (0.5 / (1e-7 + 0.5)))  # inside the bound: not identity
    assert out[0, 1] != w[0, 1]


def test_unit_norm_min_max_norm_and_non_neg():
    w = np.array([[3.0, -1.0], [4.0, 0.0]])
    u = apply_constraint(normalize_constraint("C", "c", {"class_name": "UnitNorm", "config": {"axis": 1}}), w)
    np.testing.assert_array_equal(u[0], w[0] / (1e-7 + math.sqrt(10.0)))
    mm = normalize_constraint("C", "c", {"class_name": "MinMaxNorm",
                                         "config": {"min_value": 6, "max_value": 7, "rate": 0.5, "axis": 0}})
    np.testing.assert_array_equal(apply_constraint(mm, w)[:, 0], w[:, 0] * ((0.5 * 6 + 0.5 * 5) / (1e-7 + 5)))
    nn = apply_constraint(normalize_constraint("C", "c", "non_neg"), w)
    np.testing.assert_array_equal(nn, [[3.0, 0.0], [4.0, 0.0]])
    assert not np.signbit(nn[0, 1])  # maximum(w, 0): +0.0 (Keras >= 3.15)


def test_constrain_uses_the_users_axis_per_layout():
    spec = _spec("Conv2DTranspose", filters=2, kernel_size=2,
                 kernel_constraint={"class_name": "MaxNorm", "config": {"max_value": 0.5, "axis": [0, 1, 3]}})
    w = {"kernel": np.ones((2, 2, 2, 3)), "bias": np.ones(2)}
    out = reference.constrain(spec, w)
    norms = np.sqrt(np.sum(out["kernel"] ** 2, axis=(0, 1, 3)))
    np.testing.assert_allclose(norms, 0.5, rtol=1e-6)
    np.testing.assert_array_equal(out["bias"], w["bias"])
    with pytest.raises(InvalidConfig, match="axis"):
        reference.constrain(_spec("Conv1D", filters=1, kernel_size=1,
                                  kernel_constraint={"class_name": "UnitNorm", "config": {"axis": 5}}),
                            {"kernel": np.ones((1, 1, 1)), "bias": np.ones(1)})

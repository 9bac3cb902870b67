"""The initializer, regularizer and constraint categories (conformance.training):
the reference passes, the false-alarm rate is what is stated, and each known way of getting
them wrong is caught."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance import training
from conv_conformance.conformance.adapters.reference import ReferenceAdapter
from conv_conformance.conformance.scoring import check
from conv_conformance.oracle import cases


def _case(cls, input_shape, **config):
    spec = reference.normalize({"class_name": cls, "config": config})
    return cases.make_case(spec, input_shape, "valid")


def _run(adapter, case, dtype="float32"):
    return check(adapter, case, cases.materialize(case, dtype), dtype)


SPECS = [
    ("Conv2D", (2, 5, 5, 4), dict(filters=6, kernel_size=3, groups=2, kernel_initializer="he_normal",
                                  bias_initializer="random_uniform", kernel_regularizer="l2",
                                  activity_regularizer={"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}},
                                  kernel_constraint={"class_name": "MaxNorm", "config": {"max_value": 1.0,
                                                                                         "axis": [0, 1, 2]}})),
    ("Conv1DTranspose", (2, 4, 3), dict(filters=5, kernel_size=2, strides=2, kernel_initializer="lecun_uniform",
                                        bias_initializer=None, bias_regularizer="l1", activation="tanh",
                                        activity_regularizer="l2", kernel_constraint="unit_norm")),
    ("DepthwiseConv2D", (1, 4, 4, 3), dict(kernel_size=2, depth_multiplier=2, depthwise_initializer="orthogonal",
                                           depthwise_regularizer="l1l2", activation="softmax",
                                           activity_regularizer="l1", bias_constraint="non_neg")),
    ("SeparableConv1D", (2, 6, 2), dict(filters=4, kernel_size=3, depthwise_initializer="glorot_normal",
                                        pointwise_initializer={"class_name": "TruncatedNormal",
                                                               "config": {"stddev": 0.3}},
                                        pointwise_regularizer="l2", activation="glu", activity_regularizer="l2",
                                        pointwise_constraint={"class_name": "MinMaxNorm",
                                                              "config": {"min_value": 0.5, "max_value": 0.8,
                                                                         "rate": 0.7,
                                                         "axis": [0, 1]}})),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls, shape, config", SPECS, ids=[s[0] for s in SPECS])
def test_the_reference_passes_every_training_category(cls, shape, config, dtype):
    r = _run(ReferenceAdapter(), _case(cls, shape, **config), dtype)
    assert {k: r.verdicts[k] for k in training.CATEGORIES} == dict.fromkeys(training.CATEGORIES, "pass"), r.message


class _NoTraining:
    name = "plain"

    def forward(self, spec, inputs, weights):
        return reference.forward(spec, inputs, weights)


def test_an_adapter_without_the_methods_is_unsupported():
    r = _run(_NoTraining(), _case(*SPECS[0][:2], **SPECS[0][2]))
    assert {k: r.verdicts[k] for k in training.CATEGORIES} == dict.fromkeys(training.CATEGORIES, "unsupported")
    assert r.verdicts["output"] == "pass"


# ------------------------------------------------------------------ false alarms

def test_dkw_critical_value_is_calibrated_by_simulation():
    """Draws of the reference's own sampler over 400 seeds: the rate at which the KS statistic
    exceeds the DKW-Massart critical value for alpha in {0.2, 0.05, 0.01} stays below alpha
    (plus three binomial standard deviations): the bound is conservative at every n."""
    init = {"class_name": "HeNormal", "config": {"seed": None, "input_axes": None, "output_axes": None}}
    shape = (3, 3, 8, 16)
    d = reference.distribution(init, shape)
    stats = []
    for seed in range(400):
        x = reference.sample(init, shape, seed).astype(np.float32)
        stats.append(training.ks_statistic(x, d, 2 ** -24 * (np.abs(x.astype(np.float64)) + d.std)))
    stats = np.array(stats)
    for alpha in (0.2, 0.05, 0.01):
        rate = np.mean(stats > training.ks_critical(int(np.prod(shape)), 1, alpha))
        assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / stats.size), (alpha, rate)
    # and at the suite's 1e-6 none of them fails
    assert np.all(stats <= training.ks_critical(int(np.prod(shape)), 1, training.ALPHA))


@pytest.mark.parametrize("init", ["glorot_uniform", "he_normal", "random_normal", "truncated_normal",
                                  {"class_name": "VarianceScaling",
                                   "config": {"distribution": "untruncated_normal", "mode": "fan_avg"}}])
def test_the_reference_passes_over_many_seeds(init):
    spec = _case("Conv2D", (1, 4, 4, 3), filters=4, kernel_size=2, kernel_initializer=init).spec
    for seed in range(12):
        v = training.score_initializer(ReferenceAdapter(), spec, (1, 4, 4, 3), seed)
        assert v.verdict == "pass", v.messages


@pytest.mark.parametrize("kind, n_max", [("uniform", 20_000), ("normal", 80_000), ("truncated_normal", 80_000)])
def test_draws_needed_for_a_ten_percent_std_error(kind, n_max):
    d = {"uniform": reference.Distribution("uniform", 0, 1 / math.sqrt(3), -1, 1),
         "normal": reference.Distribution("normal", 0, 1, -math.inf, math.inf, 1.0),
         "truncated_normal": reference.Distribution("truncated_normal", 0, 0.8796, -2, 2, 1.0)}[kind]
    n = training.draws_needed(d, 2 ** -24, tests=3)
    assert 1000 < n < n_max


# ------------------------------------------------------------------ what is caught

class _Wrong(ReferenceAdapter):
    """The reference adapter with one thing wrong in `initialize`."""

    def __init__(self, how):
        self.how = how

    def initialize(self, spec, input_shape, seed):
        nspec = reference.normalize(spec)
        shapes = reference.weight_shapes(nspec, input_shape)
        args = reference.weight_arguments(nspec)
        out = {}
        for i, name in enumerate(sorted(shapes)):
            init = nspec["config"][args[name]["initializer"]]
            d = reference.distribution(init, shapes[name])
            rng = np.random.default_rng([seed, i])
            if self.how in ("std+10%", "std-10%") and d.random:
                w = reference.sample(init, shapes[name], [seed, i]) * (1.1 if self.how == "std+10%" else 0.9)
            elif self.how == "no truncation constant" and d.kind == "truncated_normal":
                w = reference.sample(init, shapes[name], [seed, i]) * reference.TRUNCATION_STD
            elif self.how == "swapped fans" and d.random:
                fi, fo = reference.fans(shapes[name])
                s = 2.0 / max(1.0, fo)  # He uniform with fan_out in place of fan_in
                w = rng.uniform(-math.sqrt(3 * s), math.sqrt(3 * s), shapes[name])
            elif self.how == "torch depthwise fan" and d.random:
                k = shapes[name]
                fan_in = int(np.prod(k[:-2]))  # true connectivity: rf, not rf*C
                limit = math.sqrt(6.0 / (fan_in + fan_in * k[-1]))
                w = rng.uniform(-limit, limit, k)
            elif self.how == "normal for uniform" and d.kind == "uniform":
                w = rng.normal(0, d.std, shapes[name])
            elif self.how == "seed ignored on the second call" and d.random:
                w = reference.sample(init, shapes[name], [seed, i, self.__dict__.setdefault("calls", 0)])
                self.calls += 1
            elif self.how == "seed ignored" and d.random:
                w = reference.sample(init, shapes[name], [0, i])
            else:
                w = reference.sample(init, shapes[name], [seed, i])
            out[name] = w.astype(np.float32)
        return out


@pytest.mark.parametrize("how, cls, shape, config", [
    ("std+10%", "Conv2D", (1, 4, 4, 3), dict(filters=4, kernel_size=2, kernel_initializer="he_normal")),
    ("std-10%", "Conv2D", (1, 4, 4, 3), dict(filters=4, kernel_size=2, kernel_initializer="glorot_normal")),
    ("std+10%", "Conv1D", (1, 4, 3), dict(filters=2, kernel_size=1, bias_initializer="lecun_uniform")),
    ("std-10%", "Conv1D", (1, 4, 3), dict(filters=2, kernel_size=1, kernel_initializer="random_normal")),
    ("no truncation constant", "Conv2D", (1, 4, 4, 3), dict(filters=4, kernel_size=2, kernel_initializer="he_normal")),
    ("swapped fans", "Conv2DTranspose", (1, 3, 3, 2), dict(filters=6, kernel_size=3, kernel_initializer="he_uniform")),
    ("torch depthwise fan", "DepthwiseConv2D", (1, 4, 4, 3), dict(kernel_size=2)),
    ("normal for uniform", "Conv1D", (1, 4, 3), dict(filters=2, kernel_size=2)),
    ("seed ignored on the second call", "Conv1D", (1, 4, 3), dict(filters=2, kernel_size=2)),
    ("seed ignored", "Conv1D", (1, 4, 3), dict(filters=2, kernel_size=2)),
])
def test_wrong_initializers_fail(how, cls, shape, config):
    v = training.score_initializer(_Wrong(how), _case(cls, shape, **config).spec, shape, seed=7)
    assert v.verdict == "fail", (how, v.messages)


def test_a_constant_off_by_one_ulp_and_an_out_of_bound_value_fail():
    class Off(ReferenceAdapter):
        def initialize(self, spec, input_shape, seed):
            w = super().initialize(spec, input_shape, seed)
            w["bias"] = np.nextafter(np.float32(w["bias"]), np.float32(2))
            w["kernel"] = w["kernel"].astype(np.float32)
            w["kernel"].flat[0] = 1.25  # glorot limit of a (1, 3, 1) kernel: sqrt(6 / (3 + 1)) = 1.2247
            return w

    spec = _case("Conv1D", (1, 4, 3), filters=1, kernel_size=1, bias_initializer="ones").spec
    v = training.score_initializer(Off(), spec, (1, 4, 3), seed=1)
    assert v.verdict == "fail" and any("constant" in m for m in v.messages) \
        and any("outside" in m for m in v.messages), v.messages


# ------------------------------------------------------------------ regularizers and constraints

class _WrongPenalty(ReferenceAdapter):
    def __init__(self, how):
        self.how = how

    def regularization(self, spec, inputs, weights):
        p = super().regularization(spec, inputs, weights)
        if self.how == "half L2":
            p = {k: v / 2 if k == "kernel" else v for k, v in p.items()}
        if self.how == "activity not divided by the batch":
            p["activity"] *= inputs.shape[0]
        return p

    def regularization_vjp(self, spec, inputs, weights):
        g = super().regularization_vjp(spec, inputs, weights)
        if self.how == "no activity gradient":
            g["inputs"] = np.zeros_like(g["inputs"])
        return g


@pytest.mark.parametrize("how", ["half L2", "activity not divided by the batch", "no activity gradient"])
def test_wrong_penalties_fail(how):
    case = _case("Conv2D", (3, 4, 4, 2), filters=2, kernel_size=2, kernel_regularizer="l2",
                 activity_regularizer="l2")
    v = training.score_regularizer(_WrongPenalty(how), case.spec, cases.materialize(case), "float32")
    assert v.verdict == "fail", v.messages


class _WrongConstraint(ReferenceAdapter):
    def __init__(self, how):
        self.how = how

    def constrain(self, spec, weights):
        w = {k: np.asarray(v, np.float64) for k, v in weights.items()}
        c = reference.normalize(spec)["config"]["kernel_constraint"]
        axes = tuple(c["config"]["axis"])
        n = np.sqrt(np.sum(w["kernel"] ** 2, axis=axes, keepdims=True))
        if self.how == "eps inside the root":
            w["kernel"] = w["kernel"] * np.clip(n, 0, c["config"]["max_value"]) / np.sqrt(n * n + 1e-7)
        elif self.how == "axis 0":
            n0 = np.sqrt(np.sum(w["kernel"] ** 2, axis=0, keepdims=True))
            w["kernel"] = w["kernel"] * np.clip(n0, 0, c["config"]["max_value"]) / (1e-7 + n0)
        return w


@pytest.mark.parametrize("how", ["eps inside the root", "axis 0"])
def test_wrong_constraints_fail_in_float64(how):
    case = _case("Conv2D", (1, 3, 3, 2), filters=3, kernel_size=2,
                 kernel_constraint={"class_name": "MaxNorm", "config": {"max_value": 1.5, "axis": [0, 1, 2]}})
    v = training.score_constraint(_WrongConstraint(how), case.spec, cases.materialize(case, "float64"), "float64")
    assert v.verdict == "fail", v.messages
    assert training.score_constraint(ReferenceAdapter(), case.spec, cases.materialize(case, "float64"),
                                     "float64").verdict == "pass"


class _PenaltiesOnly(ReferenceAdapter):
    """Right penalties, no gradient of them, and no claim to the regularizer category."""

    regularization_vjp = None
    declaration = None


class _DeclaredPenaltiesOnly(ReferenceAdapter):
    """The same, declaring the regularizer category (as the reference does)."""

    regularization_vjp = None


class _ForwardAndPenaltiesOnly:
    """A forward-only adapter that also gives the right penalties."""

    def forward(self, spec, inputs, weights):
        return ReferenceAdapter().forward(spec, inputs, weights)

    def regularization(self, spec, inputs, weights):
        return ReferenceAdapter().regularization(spec, inputs, weights)


def test_penalties_without_their_gradients_are_declined_where_the_adapter_has_gradients():
    case = _case("Conv2D", (3, 4, 4, 2), filters=2, kernel_size=2, kernel_regularizer="l2", activity_regularizer="l2")
    m = cases.materialize(case)
    declined = training.score_regularizer(_PenaltiesOnly(), case.spec, m, "float32")
    assert declined.verdict == "unsupported" and "regularization_vjp" in declined.messages[-1]
    assert _run(_PenaltiesOnly(), case).verdicts["regularizer"] == "unsupported"
    assert _run(_DeclaredPenaltiesOnly(), case).verdicts["regularizer"] == "fail"  # claimed, then declined
    forward_only = training.score_regularizer(_ForwardAndPenaltiesOnly(), case.spec, m, "float32")
    assert forward_only.verdict == "pass", forward_only.messages

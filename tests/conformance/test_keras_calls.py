"""The `keras` adapter's shared layer call and reused layers give what separate Keras calls give.

conformance.adapters.keras_calls serves the penalties and their gradient from the forward's
layer call, draws initial weights from a layer already built, and constrains weights on it; each
result is checked here against oracle.tf_training, which calls or builds Keras anew every time.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.fresh_process import run_json

pytest.importorskip("tensorflow")

from conv_conformance import reference  # noqa: E402
from conv_conformance.conformance.adapters import keras_calls  # noqa: E402
from conv_conformance.oracle import tf_layers, tf_training  # noqa: E402

pytestmark = pytest.mark.tensorflow

_REGULARIZED = {"kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.02}},
                "bias_regularizer": {"class_name": "L2", "config": {"l2": 0.03}},
                "activity_regularizer": {"class_name": "L1", "config": {"l1": 0.05}},
                "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": 0.5, "axis": [0, 1, 2]}},
                "bias_constraint": {"class_name": "NonNeg", "config": {}}}
CASES = [
    ("Conv2D", {"filters": 4, "kernel_size": [3, 3], **_REGULARIZED}, (2, 6, 6, 3)),
    # grouped: Keras compiles it with XLA on every call
    ("Conv2D", {"filters": 4, "kernel_size": [2, 2], "groups": 2, **_REGULARIZED}, (2, 5, 5, 4)),
    ("Conv1DTranspose", {"filters": 3, "kernel_size": [3], "strides": [2], **_REGULARIZED}, (2, 5, 2)),
    # without an activity penalty the call and the penalties are recorded on two tapes
    ("Conv2D", {"filters": 4, "kernel_size": [2, 2], "groups": 2, **_REGULARIZED, "activity_regularizer": None},
     (2, 5, 5, 4)),
]


def _arrays(cls: str, config: dict, shape: tuple, seed: int = 0) -> tuple[dict, np.ndarray, dict]:
    spec = {"class_name": cls, "config": config}
    rng = np.random.default_rng(seed)
    weights = {k: rng.standard_normal(s).astype(np.float32)
               for k, s in reference.weight_shapes(spec, shape).items()}
    return spec, rng.standard_normal(shape).astype(np.float32), weights


FLAVOURS = [pytest.param("keras3", id="keras3"), pytest.param("keras2", marks=pytest.mark.tf_keras, id="keras2")]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("cls,config,shape", CASES)
def test_penalties_from_the_forward_call_match_a_call_of_their_own(cls, config, shape, flavour, monkeypatch):
    if flavour == "keras2":
        pytest.importorskip("tf_keras")
    spec, x, w = _arrays(cls, config, shape)
    expected = tf_training.regularization(spec, x, w, flavour=flavour)
    expected_g = tf_training.regularization_vjp(spec, x, w, flavour=flavour)
    keras_calls.forward(spec, x, w, flavour=flavour)
    calls = []
    for name in ("regularization", "regularization_vjp"):  # a separate call would show here
        monkeypatch.setattr(tf_training, name, lambda *a, _n=name, **k: calls.append(_n))
    got = keras_calls.regularization(spec, x, w, flavour=flavour)
    got_g = keras_calls.regularization_vjp(spec, x, w, flavour=flavour)
    assert calls == []
    assert sorted(got) == sorted(expected) == sorted(
        name for name in ("activity", "bias", "kernel") if config[f"{name}_regularizer"] is not None)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-6)
    assert sorted(got_g) == sorted(expected_g)
    for key in expected_g:
        # the weights' penalties do not depend on the inputs: only an activity penalty does
        depends = key != "inputs" or config["activity_regularizer"] is not None
        assert np.any(expected_g[key] != 0) == depends
        np.testing.assert_allclose(got_g[key], expected_g[key], rtol=1e-5, atol=1e-7)


def test_other_arguments_or_a_second_request_make_a_call_of_their_own(monkeypatch):
    cls, config, shape = CASES[0]
    spec, x, w = _arrays(cls, config, shape)
    keras_calls.forward(spec, x, w, flavour="keras3")
    calls = []
    monkeypatch.setattr(tf_training, "regularization", lambda *a, **k: calls.append(a) or {})
    other = {**w, "bias": w["bias"] + 1}
    keras_calls.regularization(spec, x, other, flavour="keras3")
    assert len(calls) == 1  # other weights: not the forward's call
    keras_calls.regularization(spec, x, w, flavour="keras3")
    assert len(calls) == 1  # the forward's call, once
    keras_calls.regularization(spec, x, w, flavour="keras3")
    assert len(calls) == 2


def test_each_vjp_of_a_rechecked_forward_takes_a_call_of_its_own(monkeypatch):
    """A failing forward is called three times, then its VJP three times: each VJP takes the
    tape of one of the forward's calls, and a fourth makes a call of its own."""
    cls, config, shape = CASES[1]
    spec, x, w = _arrays(cls, config, shape)
    for _ in range(3):
        keras_calls.forward(spec, x, w, flavour="keras3")
    made = []
    record = keras_calls._record
    monkeypatch.setattr(keras_calls, "_record", lambda *a: made.append(record(*a)) or made[-1])
    g = np.ones(keras_calls._calls[-1]["y"].shape, np.float32)
    taken = [keras_calls._take("vjp", spec, x, w, "keras3") for _ in range(3)]
    assert made == [] and len({id(call) for call in taken}) == 3
    for call in taken:
        call["unused"].add("vjp")
    grads = [keras_calls.vjp(spec, x, w, g, flavour="keras3") for _ in range(4)]
    assert len(made) == 1
    expected = tf_layers.vjp(spec, x, w, g, flavour="keras3")
    for got in grads:
        assert sorted(got) == sorted(expected)
        for key in expected:  # one Keras call's gradient each, as a new call gives it
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6)


_INITIALIZERS = [{"class_name": "GlorotUniform", "config": {"seed": 3}},
                 {"class_name": "HeNormal", "config": {"seed": 3}},
                 {"class_name": "TruncatedNormal", "config": {"mean": 0.1, "stddev": 0.2, "seed": 3}},
                 {"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_avg",
                                                             "distribution": "uniform", "seed": 3}},
                 {"class_name": "Orthogonal", "config": {"gain": 1.5, "seed": 3}},
                 {"class_name": "Constant", "config": {"value": 0.25}}]
_LAYOUTS = [("Conv2D", {"filters": 4, "kernel_size": [3, 2], "groups": 2}, (2, 6, 6, 4), "kernel"),
            ("DepthwiseConv2D", {"kernel_size": [2, 2], "depth_multiplier": 2}, (2, 5, 5, 3), "kernel"),
            ("SeparableConv1D", {"filters": 5, "kernel_size": [3]}, (2, 7, 3), "pointwise_kernel"),
            ("Conv3DTranspose", {"filters": 2, "kernel_size": [2, 2, 2]}, (1, 3, 3, 3, 3), "kernel")]


@pytest.mark.parametrize("init", _INITIALIZERS, ids=lambda i: i["class_name"])
@pytest.mark.parametrize("cls,config,shape,weight", _LAYOUTS, ids=lambda v: v if isinstance(v, str) else "")
def test_draws_from_a_built_layer_equal_a_new_build(cls, config, shape, weight, init):
    prefix = reference.weight_arguments({"class_name": cls, "config": config})[weight]["initializer"]
    spec = {"class_name": cls, "config": {**config, prefix: init,
                                          "bias_initializer": {"class_name": "RandomUniform", "config": {"seed": 5}}}}
    _, x, w = _arrays(cls, spec["config"], shape)
    keras_calls.forward(spec, x, w, flavour="keras3")  # the layer the draws reuse
    assert keras_calls._built_for(spec, shape, "float32") is not None
    for seed in (11, 12):
        built = tf_training.initialize(spec, shape, seed, flavour="keras3")
        drawn = keras_calls.initialize(spec, shape, seed, flavour="keras3")
        assert sorted(drawn) == sorted(built)
        for name in built:
            assert drawn[name].dtype == built[name].dtype and drawn[name].shape == built[name].shape
            np.testing.assert_array_equal(drawn[name], built[name], err_msg=f"{name}, seed {seed}")
    assert not np.array_equal(keras_calls.initialize(spec, shape, 11, flavour="keras3")["bias"],
                              keras_calls.initialize(spec, shape, 12, flavour="keras3")["bias"])


def _pending_variables():
    from keras.src.backend.common import global_state

    pending = global_state.get_global_attribute("uninitialized_variables")
    return None if pending is None else list(pending)


@pytest.mark.parametrize("init", _INITIALIZERS[:3] + _INITIALIZERS[4:5], ids=lambda i: i["class_name"])
@pytest.mark.parametrize("cls,config,shape,weight", _LAYOUTS, ids=lambda v: v if isinstance(v, str) else "")
def test_draws_at_an_input_shape_never_called_equal_a_new_build(cls, config, shape, weight, init, monkeypatch):
    # the statistical test's larger layers: more input channels, or (for a bias) more filters
    prefix = reference.weight_arguments({"class_name": cls, "config": config})[weight]["initializer"]
    wide = {**config, prefix: init, "bias_initializer": {"class_name": "RandomNormal", "config": {"seed": 5}}}
    if "filters" in wide:
        wide["filters"] = 4 * wide["filters"]
    spec = {"class_name": cls, "config": wide}
    big = (*shape[:-1], 3 * shape[-1])
    expected = {seed: tf_training.initialize(spec, big, seed, flavour="keras3") for seed in (21, 22)}
    before = _pending_variables()
    monkeypatch.setattr(tf_training, "initialize", lambda *a, **k: pytest.fail("built a layer with values"))
    for seed, built in expected.items():
        drawn = keras_calls.initialize(spec, big, seed, flavour="keras3")
        assert sorted(drawn) == sorted(built)
        for name in built:
            assert drawn[name].dtype == built[name].dtype and drawn[name].shape == built[name].shape
            np.testing.assert_array_equal(drawn[name], built[name], err_msg=f"{name}, seed {seed}")
    # the shapes come from a build in a StatelessScope; its variables are not left for Keras to
    # initialize later
    assert _pending_variables() == before


def test_constraints_use_the_forward_layer_after_draws_at_another_shape(monkeypatch):
    cls, config, shape = CASES[0]
    spec, x, w = _arrays(cls, config, shape)
    other = {k: 3 * v for k, v in w.items()}
    expected = tf_training.constrain(spec, other, flavour="keras3")
    keras_calls.forward(spec, x, w, flavour="keras3")
    keras_calls.initialize(spec, (2, 6, 6, 30), 7, flavour="keras3")  # the statistical test's wider layer
    monkeypatch.setattr(tf_training, "constrain", lambda *a, **k: pytest.fail("built a layer to constrain"))
    got = keras_calls.constrain(spec, other, flavour="keras3")
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.mark.parametrize("cls,config,shape", CASES)
def test_constraints_on_the_forward_layer_equal_a_new_build(cls, config, shape):
    spec, x, w = _arrays(cls, config, shape)
    keras_calls.forward(spec, x, w, flavour="keras3")
    other = {k: 3 * v for k, v in w.items()}  # not the weights the forward loaded
    expected = tf_training.constrain(spec, other, flavour="keras3")
    got = keras_calls.constrain(spec, other, flavour="keras3")
    assert sorted(got) == sorted(expected)
    assert np.any(expected["kernel"] != other["kernel"]) and np.all(expected["bias"] >= 0)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])



@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_penalties_are_read_at_low_precision(flavour, dtype, request):
    import ml_dtypes

    from tests.framework_corners import xfail_where_onednn_lacks

    xfail_where_onednn_lacks(request, dtype)

    spec, x, weights = _arrays(*CASES[0])
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float16
    x = x.astype(np_dtype)
    weights = {k: v.astype(np_dtype) for k, v in weights.items()}
    keras_calls.forward(spec, x, weights, flavour=flavour)
    penalties = keras_calls.regularization(spec, x, weights, flavour=flavour)
    k = weights["kernel"].astype(np.float64)
    exact = 0.01 * np.abs(k).sum() + 0.02 * (k * k).sum()
    assert set(penalties) == {"kernel", "bias", "activity"}
    # summed in the dtype by Keras: within a few percent of the exact L1L2 penalty
    assert abs(penalties["kernel"] - exact) <= 0.05 * exact, (penalties["kernel"], exact)


_XLA_CASE = """
import json
import numpy as np
from conv_conformance.conformance.adapters import keras_calls
from conv_conformance.conformance.adapters.keras import KerasAdapter
a = KerasAdapter()
# grouped: Keras compiles it with XLA on every call
spec = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [2, 2], "groups": 2}}
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 5, 5, 4)).astype("float32")
w = {"kernel": rng.standard_normal((2, 2, 2, 4)).astype("float32"), "bias": np.ones(4, "float32")}
y = a.forward(spec, x, w)
g = a.vjp(spec, x, w, np.ones_like(y))
print(json.dumps({"dir": keras_calls.xla_cache_directory(), "y": y.tobytes().hex(),
                  "g": g["kernel"].tobytes().hex()}))
"""


def _run_fresh(cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    return run_json(_XLA_CASE, {**env, "CONV_CONFORMANCE_XLA_CACHE": cache, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_a_second_process_loads_the_xla_compilations_and_gets_the_same_bits(tmp_path):
    cache = tmp_path / "xla"
    first = _run_fresh(str(cache))
    directory = Path(first["dir"])
    assert directory.parent == cache  # a subdirectory per TensorFlow version, CPU and XLA flags
    entries = sorted(p.name for p in directory.iterdir())
    assert len(entries) >= 2, entries  # the forward and its gradient
    second = _run_fresh(str(cache))
    assert sorted(p.name for p in directory.iterdir()) == entries  # nothing compiled anew
    assert (second["y"], second["g"]) == (first["y"], first["g"])


def test_xla_cache_off_means_none(tmp_path):
    assert _run_fresh("off")["dir"] is None

"""The reference cross-checked against tf.keras (Keras 3) and tf-keras (Keras 2) at float64.

Hypothesis draws configurations over every layer, argument form, data format
and activation; values are compared within the float64 allowed error of
oracle.tolerance. Configurations with a known TensorFlow divergence (see
tf_crosscheck_util.divergence) are routed to the strict xfails of
test_tf_divergences.py. Conv and ConvTranspose channels_first run through the
transposed channels_last equivalent, since TF's CPU kernels reject NCHW.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, note

pytest.importorskip("tensorflow")

from conv_conformance import reference  # noqa: E402
from conv_conformance.oracle import strategies, tf_layers, tolerance  # noqa: E402
from tf_crosscheck_util import assert_within, divergence, shape_divergence, tf_forward, tf_vjp  # noqa: E402

pytestmark = pytest.mark.kernels
FLAVOURS = [pytest.param("keras3", marks=pytest.mark.tensorflow, id="keras3"),
            pytest.param("keras2", marks=pytest.mark.tf_keras, id="keras2")]


@pytest.fixture(params=FLAVOURS, scope="module")
def flavour(request):
    if request.param == "keras2":
        pytest.importorskip("tf_keras")
    return request.param


def _label(case) -> str:
    return f"{case.spec['class_name']}({case.spec['config']}) on {case.input_shape}"


@given(case=strategies.valid_cases(dtype="float64"))
def test_forward_matches_reference(flavour, case):
    assume(divergence(case.spec, case.input_shape, "float64", flavour) is None)
    note(_label(case))
    expected = reference.forward(case.spec, case.inputs, case.weights)
    allowed, _ = tolerance.allowed_errors(case.spec, case.inputs, case.weights, None, "float64")
    actual = tf_forward(case.spec, case.inputs, case.weights, flavour)
    assert_within(actual, expected, allowed, f"{flavour} forward of {_label(case)}")


@given(case=strategies.valid_cases(dtype="float64"))
def test_gradients_match_reference(flavour, case):
    assume(divergence(case.spec, case.input_shape, "float64", flavour, gradient=True) is None)
    note(_label(case))
    expected = reference.vjp(case.spec, case.inputs, case.weights, case.output_grad)
    _, allowed = tolerance.allowed_errors(case.spec, case.inputs, case.weights, case.output_grad, "float64")
    actual = tf_vjp(case.spec, case.inputs, case.weights, case.output_grad, flavour)
    assert set(actual) == set(expected), f"{flavour} gradient names {sorted(actual)} != {sorted(expected)}"
    for name in expected:
        assert_within(actual[name], expected[name], allowed[name], f"{flavour} d/d{name} of {_label(case)}")


@given(case=strategies.valid_cases(dtype="float64"))
def test_output_shape_matches_keras(flavour, case):
    assume(divergence(case.spec, case.input_shape, "float64", flavour) is None)
    assume(shape_divergence(case.spec) is None)
    expected = reference.output_shape(case.spec, case.input_shape)
    declared = tf_layers.compute_output_shape(case.spec, case.input_shape, flavour=flavour, dtype="float64")
    assert tuple(declared) == expected, f"compute_output_shape={declared}, but should be {expected} [{_label(case)}]"
    unknown_batch = (None,) + tuple(case.input_shape[1:])
    declared = tf_layers.compute_output_shape(case.spec, unknown_batch, flavour=flavour, dtype="float64")
    assert tuple(declared) == (None,) + expected[1:], f"with batch None: {declared} [{_label(case)}]"
    returned = tf_forward(case.spec, case.inputs, case.weights, flavour).shape
    assert returned == expected, f"out.shape={returned}, but should be {expected} [{_label(case)}]"


def _rejects(spec, shape, flavour) -> bool:
    x = np.zeros(shape)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layer = tf_layers.construct(spec, flavour=flavour, dtype="float64")
            layer(x)
    except Exception:  # noqa: BLE001 - any exception counts as a rejection
        return True
    return False


@given(case=strategies.invalid_cases())
def test_invalid_configurations_rejected_by_keras(flavour, case):
    with pytest.raises(reference.InvalidConfig):
        reference.output_shape(case.spec, case.input_shape)
    if flavour == "keras2":
        assume(not case.reason.startswith(("negative cropping", "cropping as large")))
        assume(not (case.spec["class_name"] == "ZeroPadding1D"))
        # Keras 2 does not check that the kernel fits the input under 'valid' (docs/keras2-vs-keras3.md)
        assume(not case.reason.startswith("kernel larger"))
        # Keras 2 Depthwise layers accept depth_multiplier=0 and return an empty channel axis
        assume(not (case.reason.startswith("depth_multiplier") and case.spec["class_name"].startswith("Depthwise")))
        # Keras 2 SeparableConv1D takes padding='causal' (docs/keras2-vs-keras3.md)
        assume(not (case.spec["class_name"] == "SeparableConv1D" and case.reason == "padding='causal'"))
    assert _rejects(case.spec, case.input_shape, flavour), \
        f"{flavour} accepted {case.spec} on {case.input_shape}, which breaks: {case.reason}"

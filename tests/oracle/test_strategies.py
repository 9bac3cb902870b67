"""The Hypothesis strategies draw what Keras accepts (and, separately, what it rejects)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from conv_conformance import reference
from conv_conformance.oracle import cases, materialize, strategies


@given(case=strategies.valid_cases(dtype="bfloat16"))
def test_valid_cases_are_accepted_and_exact_in_dtype(case):
    out = reference.output_shape(case.spec, case.input_shape)
    assert case.inputs.shape == case.input_shape and case.output_grad.shape == out
    assert {k: v.shape for k, v in case.weights.items()} == reference.weight_shapes(case.spec, case.input_shape)
    for a in [case.inputs, case.output_grad, *case.weights.values()]:
        assert np.array_equal(materialize.round_to(a, "bfloat16"), a)


@given(case=strategies.invalid_cases())
def test_invalid_cases_are_rejected(case):
    with pytest.raises(reference.InvalidConfig):
        reference.output_shape(case.spec, case.input_shape)


@given(case=strategies.valid_cases(layers=["Conv2DTranspose"], activations=["relu"], data_formats=["channels_first"]))
def test_restrictions_are_honoured(case):
    config = reference.normalize(case.spec)["config"]
    assert case.spec["class_name"] == "Conv2DTranspose"
    assert config["activation"] == "relu" and config["data_format"] == "channels_first"


@pytest.mark.parametrize("kwargs, message", [({"layers": ["Conv4D"]}, "Conv2D"), ({"max_strides": 0}, "max_strides"),
                                             ({"dtype": "int8"}, "bfloat16")])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        strategies.valid_cases(**kwargs).example()

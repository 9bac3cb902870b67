"""Deterministic case sets: pinned corpus ids, stable ids, shape corners, materialization."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.oracle import cases, materialize

# Pinned deliberately: a change to the generator or to reference.shapes changes these.
# The training-time arguments are factors and spec keys too, so a change to oracle.training_factors changes them.
CORPUS_IDS = {"smoke": "087ab1447546a41b", "standard": "48d9c44c74bfd319", "exhaustive": "467a1b0a35e01d23",
              "networks": "f54881cc7ed91538"}


@pytest.mark.parametrize("profile", cases.PROFILES)
def test_corpus_id_is_pinned(profile):
    assert cases.corpus_id(cases.case_set(profile)) == CORPUS_IDS[profile]


def test_standard_holds_the_case_o1_was_found_on():
    """O1 (docs/divergences.md) needs one input channel, strides[0] < strides[1] and an output
    width of 1, and not every such shape shows it: the standard profile holds the shape it was
    found on (tests/conformance/test_adapters.py pins its outcome per kernel, as for O1's other
    cases), besides what its pairwise cover meets by chance."""
    from tests.framework_corners import onednn_one_channel_corner

    found = [c for c in cases.case_set("standard") if c.layer == "DepthwiseConv2D" and c.kind == "valid"
             and c.input_shape == (2, 6, 4, 1) and c.spec["config"]["strides"] == [1, 2]
             and c.spec["config"]["kernel_size"] == [3, 3] and c.spec["config"]["depth_multiplier"] == 2]
    assert len(found) == 1, found
    assert onednn_one_channel_corner(found[0].spec, found[0].input_shape)
    assert found[0].id not in {c.id for c in cases.case_set("smoke")}


def test_profile_sizes_and_invalid_share():
    sizes = {p: len(cases.case_set(p)) for p in ("smoke", "standard")}
    assert 100 <= sizes["smoke"] <= 200 and 1200 <= sizes["standard"] <= 2000, sizes
    for profile in ("smoke", "standard"):
        cs = cases.case_set(profile)
        share = sum(c.kind == "invalid" for c in cs) / len(cs)
        assert 0.05 <= share <= 0.2, (profile, share)
        assert {c.layer for c in cs} == set(reference.LAYERS)


def test_batch_zero_cases():
    """Keras accepts a batch of 0: smoke has one such case per layer; standard meets every value
    of every argument at batch 0 (strength 1), next to its pairwise cover of non-empty batches."""
    smoke = [c for c in cases.case_set("smoke") if c.kind == "valid" and c.input_shape[0] == 0]
    assert sorted(c.layer for c in smoke) == sorted(reference.LAYERS)
    for layer in ("Conv2D", "SeparableConv1D", "Conv3DTranspose", "UpSampling2D"):
        empty = [c for c in cases.case_set("standard", layers=[layer]) if c.input_shape[0] == 0]
        dom = {k: v for k, v in cases.domains(layer).items() if k != "shape"}
        for factor, values in dom.items():
            seen = {json.dumps(c.spec["config"].get(factor)) for c in empty if c.kind == "valid"}
            wanted = {json.dumps(v) for v in values if cases.compatible(layer, {factor: v, "shape": "empty"})}
            assert wanted <= seen, (layer, factor, wanted - seen)


def test_ids_are_the_same_in_another_process():
    code = ("from conv_conformance.oracle import cases; print(cases.corpus_id(cases.case_set('smoke')), "
            "cases.case_set('smoke')[7].id)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.split()
    assert out == [CORPUS_IDS["smoke"], cases.case_set("smoke")[7].id]


def test_case_json_round_trip():
    for case in cases.case_set("smoke")[:20]:
        assert cases.Case.from_json(json.loads(json.dumps(case.to_json()))) == case


@pytest.mark.parametrize("kwargs, words", [({"profile": "nightly"}, ["smoke", "standard", "exhaustive"]),
                                           ({"profile": "smoke", "layers": ["Conv4D"]}, ["Conv2D", "Cropping1D"])])
def test_unknown_profile_or_layer_lists_what_is_available(kwargs, words):
    profile = kwargs.pop("profile")
    with pytest.raises(ValueError) as info:
        cases.case_set(profile, **kwargs)
    assert all(w in str(info.value) for w in words)


def test_valid_cases_are_accepted_and_invalid_ones_rejected():
    for case in cases.case_set("standard"):
        if case.kind == "valid":
            assert reference.normalize(case.spec) == case.spec
            reference.output_shape(case.spec, case.input_shape)
        else:
            with pytest.raises(reference.InvalidConfig):
                reference.output_shape(case.spec, case.input_shape)


def _spatial(case):
    first = case.spec["config"].get("data_format") == "channels_first"
    return case.input_shape[2:] if first else case.input_shape[1:-1]


def test_shape_corners_are_present():
    valid = [c for c in cases.case_set("standard") if c.kind == "valid"]
    convs = [c for c in valid if reference.LAYERS[c.layer].family in ("conv", "depthwise", "separable")]
    assert any(1 in _spatial(c) for c in valid), "size-1 dimension"
    assert any(c.spec["config"]["padding"] == "valid" and list(_spatial(c)) == [
        d * (k - 1) + 1 for k, d in zip(c.spec["config"]["kernel_size"], c.spec["config"]["dilation_rate"])]
        and max(c.spec["config"]["kernel_size"]) > 1 for c in convs), "kernel equal to the input"
    assert any(min(np.subtract(c.spec["config"]["strides"], c.spec["config"]["kernel_size"])) > 0 for c in convs)
    assert any(max(c.spec["config"]["dilation_rate"]) >= 4 for c in convs), "large dilation"
    same = [c for c in convs if c.spec["config"]["padding"] == "same" and max(c.spec["config"]["strides"]) > 1]
    assert {n % 2 for c in same for n in _spatial(c)} == {0, 1}, "odd and even lengths under 'same' with stride"
    transposes = [c.spec["config"] for c in valid if reference.LAYERS[c.layer].family == "conv_transpose"]
    assert any(c["output_padding"] and max(np.subtract(c["strides"], c["output_padding"])) == 1 and
               min(c["output_padding"]) > 0 for c in transposes), "output_padding at its limit strides - 1"


@pytest.mark.parametrize("dtype", cases.DTYPES)
def test_materialized_arrays_are_exact_in_dtype_and_deterministic(dtype):
    for case in cases.case_set("smoke")[::9]:
        m, again = cases.materialize(case, dtype), cases.materialize(case, dtype)
        arrays = [m.inputs, *m.weights.values()] + ([m.output_grad] if m.output_grad is not None else [])
        for a in arrays:
            assert a.dtype == np.float64
            assert np.array_equal(materialize.round_to(a, dtype), a), f"{case.id}: values not exact in {dtype}"
            assert np.all((np.abs(a) >= 0.5) & (np.abs(a) <= 1))
        assert np.array_equal(m.inputs, again.inputs)
        if case.kind == "valid":
            assert np.array_equal(m.expected_output, reference.forward(case.spec, m.inputs, m.weights))
            assert m.allowed_output.shape == m.expected_output.shape
            assert set(m.allowed_gradients) == set(m.expected_gradients)


def test_bfloat16_rounding_is_round_to_nearest_even():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(0).normal(size=10000) * 10.0 ** np.random.default_rng(1).integers(-5, 5, 10000)
    x32 = x.astype(np.float32).astype(np.float64)
    expected = x32.astype(ml_dtypes.bfloat16).astype(np.float64)
    assert np.array_equal(materialize.round_to(x32, "bfloat16"), expected)


def test_invalid_cases_get_plausible_arrays():
    for case in [c for c in cases.case_set("smoke") if c.kind == "invalid"]:
        m = cases.materialize(case)
        assert m.inputs.shape == case.input_shape and m.expected_output is None
        if reference.LAYERS[case.layer].family in ("conv", "conv_transpose", "depthwise", "separable"):
            assert m.weights, case.id

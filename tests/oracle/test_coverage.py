"""Coverage of argument values and pairs by the case sets."""
from __future__ import annotations

import json

import pytest

from conv_conformance import reference
from conv_conformance.oracle import cases, coverage


@pytest.mark.parametrize("layer", sorted(reference.LAYERS))
def test_standard_covers_every_compatible_pair(layer):
    cov = coverage.coverage(cases.case_set("standard", layers=[layer]), layer)
    assert cov.required_pairs > 0 or len(reference.LAYERS[layer].arguments) == 1
    assert not cov.missing_pairs, cov.missing_pairs[:5]
    assert cov.pairs == cov.required_pairs


def test_smoke_covers_every_argument_value():
    smoke = cases.case_set("smoke")
    seen_activations = set()
    for layer in reference.LAYERS:
        cov = coverage.coverage(smoke, layer)
        missing = {k: v for k, v in cov.missing_values.items() if v and k != "activation"}
        assert not missing, (layer, missing)
        seen_activations |= {json.loads(v) for v in cov.values.get("activation", ())}
    assert seen_activations == set(reference.ACTIVATIONS)
    assert not coverage.coverage(smoke, "Conv2D").missing_values["activation"]


def test_coverage_notices_a_missing_pair():
    standard = cases.case_set("standard", layers=["Conv1D"])
    dropped = [c for c in standard if not (c.kind == "valid" and c.spec["config"]["activation"] == "relu"
                                           and c.spec["config"]["padding"] == "causal")]
    cov = coverage.coverage(dropped, "Conv1D")
    assert (("padding", '"causal"'), ("activation", '"relu"')) in cov.missing_pairs


def test_summary_is_json():
    out = coverage.summary(cases.case_set("smoke", layers=["Cropping2D", "UpSampling2D"]))
    assert set(out) == {"Cropping2D", "UpSampling2D"}
    json.dumps(out)

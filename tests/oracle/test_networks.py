"""The networks profile: real networks' seed-layer configurations read from oracle/data/networks.json."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance.scoring import check
from conv_conformance.oracle import cases, networks

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("networks_corpus", ROOT / "scripts" / "networks_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _by_occurrence() -> dict[str, cases.Case]:
    return {occ: c for c in cases.case_set("networks") for occ in c.meta["occurrences"]}


def test_the_profile_is_wired_in_everywhere():
    from conv_conformance.cli import build_parser
    from conv_conformance.vocabulary import PROFILES

    assert "networks" in PROFILES and cases.PROFILES is PROFILES
    assert build_parser().parse_args(["run", "--adapter", "reference", "--profile", "networks"]).profile == "networks"


def test_the_data_file_records_its_keras_version_and_every_model_of_the_issue():
    doc = networks.corpus()
    assert doc["keras_version"].count(".") == 2
    models = {occ.split("/")[0] for r in doc["layers"] for occ in r["occurrences"]}
    for name in ("ResNet50", "MobileNetV2", "EfficientNetB0", "Xception", "DenseNet121", "U-Net",
                 "DCGAN-generator", "WaveNet", "3D-U-Net", "C3D", "YOLOv3-downsampling", "DeepLabV3-ASPP",
                 "ESRGAN-upsampling"):
        assert name in models, name


def test_cases_are_deterministic_distinct_and_name_model_and_layer():
    first = cases.case_set("networks")
    again = [cases.make_case(c.spec, c.input_shape, "valid") for c in first]
    assert len({c.id for c in first}) == len(first) > 300
    assert cases.corpus_id(first) == cases.corpus_id(cases.case_set("networks"))
    assert cases.corpus_id(first) not in {cases.corpus_id(cases.case_set(p)) for p in ("smoke", "standard")}
    for c, plain in zip(first, again):
        model, layer = c.meta["occurrences"][0].split("/")
        assert c.id.startswith(f"{c.layer}-{model}.{layer}-".replace("/", "."))
        assert c.id.endswith(plain.id.rsplit("-", 1)[1])  # the digest of (spec, shape, kind, seed)
        assert c.seed == plain.seed and c.kind == "valid" and c.gradient
        assert reference.normalize(c.spec) == c.spec
        reference.output_shape(c.spec, c.input_shape)  # raises on an invalid configuration
        assert c.input_shape[0] in (1, 2)


def test_the_layers_filter_and_the_json_round_trip_keep_meta():
    conv3d = cases.case_set("networks", layers=["Conv3D", "Conv3DTranspose"])
    assert conv3d and {c.layer for c in conv3d} == {"Conv3D", "Conv3DTranspose"}
    case = conv3d[0]
    assert cases.Case.from_json(json.loads(json.dumps(case.to_json()))) == case
    assert "meta" not in cases.case_set("smoke")[0].to_json()


@pytest.mark.parametrize("occurrence, cls, config", [
    ("EfficientNetB0/block2a_dwconv", "DepthwiseConv2D", {"kernel_size": [3, 3], "strides": [2, 2]}),
    ("EfficientNetB0/block3a_dwconv", "DepthwiseConv2D", {"kernel_size": [5, 5], "strides": [2, 2]}),
    ("Xception/block2_sepconv1", "SeparableConv2D", {"kernel_size": [3, 3], "filters": 128}),
    ("ResNet50/conv1_conv", "Conv2D", {"kernel_size": [7, 7], "strides": [2, 2], "filters": 64}),
    ("WaveNet/dilated512_gate", "Conv1D", {"kernel_size": [2], "dilation_rate": [512], "padding": "causal",
                                           "activation": "sigmoid"}),
    ("YOLOv3-downsampling/down1_pad", "ZeroPadding2D", {"padding": [[1, 0], [1, 0]]}),
    ("YOLOv3-downsampling/down1_conv", "Conv2D", {"kernel_size": [3, 3], "strides": [2, 2], "padding": "valid",
                                                  "use_bias": False}),
    ("DeepLabV3-ASPP/aspp_atrous18", "Conv2D", {"dilation_rate": [18, 18], "padding": "same", "filters": 256}),
    ("U-Net/dec0_upconv", "Conv2DTranspose", {"kernel_size": [2, 2], "strides": [2, 2], "filters": 512}),
    ("U-Net/dec0_crop", "Cropping2D", {"cropping": [[4, 4], [4, 4]]}),
    ("3D-U-Net/dec0_upconv", "Conv3DTranspose", {"kernel_size": [2, 2, 2], "strides": [2, 2, 2]}),
    ("DCGAN-generator/deconv1", "Conv2DTranspose", {"kernel_size": [5, 5], "strides": [2, 2], "padding": "same"}),
    ("ESRGAN-upsampling/up1_bilinear", "UpSampling2D", {"size": [2, 2], "interpolation": "bilinear"}),
    ("ESRGAN-upsampling/up1_nearest", "UpSampling2D", {"size": [2, 2], "interpolation": "nearest"}),
])
def test_the_configurations_the_issue_names_are_there(occurrence, cls, config):
    case = _by_occurrence()[occurrence]
    assert case.layer == cls
    for key, value in config.items():
        assert case.spec["config"][key] == value, key


def test_known_input_shapes():
    occ = _by_occurrence()
    assert occ["ResNet50/conv1_conv"].input_shape == (1, 230, 230, 3)  # 224 + ZeroPadding2D(3)
    assert occ["Xception/block1_conv1"].input_shape == (1, 299, 299, 3)
    assert occ["WaveNet/dilated1_filter"].input_shape == (1, 16000, 32)
    assert occ["DeepLabV3-ASPP/aspp_1x1"].meta["shrunk_from"] == [1, 33, 33, 2048]  # 513x513 at stride 16


def test_shrunk_layers_keep_channels_kernel_strides_and_say_so():
    script = _script()
    shrunk = [c for c in cases.case_set("networks") if "shrunk_from" in c.meta]
    assert shrunk
    for c in shrunk:
        original = tuple(c.meta["shrunk_from"])
        assert c.input_shape[0] == original[0] and c.input_shape[-1] == original[-1]  # batch, channels
        assert all(a <= b for a, b in zip(c.input_shape[1:-1], original[1:-1]))
        assert math.prod(c.input_shape) < math.prod(original)
        assert not script.affordable(c.spec, original)
    kept = [c for c in cases.case_set("networks") if "shrunk_from" not in c.meta]
    assert all(script.affordable(c.spec, c.input_shape) for c in kept if c.layer != "Cropping2D")


def test_shrink_scales_only_the_spatial_axes():
    script = _script()
    spec = reference.normalize({"class_name": "Conv2D", "config": {"filters": 256, "kernel_size": 3,
                                                                  "padding": "same", "dilation_rate": 6}})
    small = script.shrink(spec, (1, 129, 129, 2048))
    assert small[0] == 1 and small[-1] == 2048 and small[1] == small[2] < 129
    assert script.affordable(spec, small)
    assert not script.affordable(spec, (1, small[1] + 2, small[2] + 2, 2048))


@pytest.mark.parametrize("occurrence", ["EfficientNetB0/block1a_se_reduce", "YOLOv3-downsampling/down5_pad",
                                        "MobileNetV2/block_16_depthwise"])
def test_a_networks_case_materializes_and_the_reference_passes_it(occurrence):
    from conv_conformance.conformance.adapters.reference import ReferenceAdapter

    case = _by_occurrence()[occurrence]
    m = cases.materialize(case, "float32")
    assert m.expected_output.shape == reference.output_shape(case.spec, case.input_shape)
    assert np.all(np.isfinite(m.allowed_output))
    result = check(ReferenceAdapter(), case, m, "float32")
    assert result.verdict == "pass", result.message


@pytest.mark.slow
@pytest.mark.tensorflow
def test_the_script_rebuilds_the_committed_file_under_the_same_keras():
    import keras

    doc = networks.corpus()
    if keras.__version__ != doc["keras_version"]:
        pytest.skip(f"the file was built with Keras {doc['keras_version']}, this is {keras.__version__}")
    built = _script().build(("ResNet50",))
    assert built["keras_version"] == doc["keras_version"]
    committed = {json.dumps([r["spec"], r["input_shape"]], sort_keys=True): r for r in doc["layers"]}
    fresh = [r for r in built["layers"] if r["source"] == "keras.applications"]
    for r in fresh:
        twin = committed[json.dumps([r["spec"], r["input_shape"]], sort_keys=True)]
        assert set(r["occurrences"]) <= set(twin["occurrences"])
    assert {o for r in fresh for o in r["occurrences"]} == {
        o for r in doc["layers"] for o in r["occurrences"] if o.startswith("ResNet50/")}

"""Levels (conformance.levels): optional features, declarations, mandatory declines, per-layer
levels and coverage; the quality_warning verdict (conformance.scoring)."""
from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest

from conv_conformance.cli import main
from conv_conformance.conformance.levels import (DeclarationError, LevelTally, case_features, conformant,
                                                 coverage_line, declare, level_text, optional_features,
                                                 parse_declaration)
from conv_conformance.conformance.scoring import check
from conv_conformance.vocabulary import FAILING, VERDICTS
from conv_conformance.oracle.cases import case_set, materialize
from tests.conformance.fixtures import declared

DECLARED = "tests.conformance.fixtures.declared"


def conv2d(**config):
    base = {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
            "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
            "activation": "linear", "use_bias": True}
    return {"class_name": "Conv2D", "config": {**base, **config}}


def test_case_features_name_every_optional_argument():
    assert case_features(conv2d()) == frozenset()
    assert case_features(conv2d(data_format="channels_first", groups=2, activation="hard_tanh")) == {
        "channels_first", "groups", "activation:hard"}
    assert case_features({"class_name": "Conv1D", "config": {"padding": "causal"}}) == {"causal"}
    assert case_features({"class_name": "UpSampling2D", "config": {"interpolation": "lanczos3"}}) == {
        "interpolation:lanczos3"}
    assert case_features({"class_name": "UpSampling2D", "config": {"interpolation": "nearest"}}) == frozenset()
    assert case_features({"class_name": "Conv2DTranspose", "config": {"output_padding": [1, 1]}}) == {"output_padding"}


def test_every_activation_but_linear_has_a_family():
    from conv_conformance import reference
    from conv_conformance.conformance.levels import ACTIVATION_FAMILIES

    families = [a for acts in ACTIVATION_FAMILIES.values() for a in acts]
    assert sorted(families) == sorted(set(reference.ACTIVATIONS) - {"linear"})
    assert case_features(conv2d(activation="no_such_activation")) == frozenset()


def test_every_case_feature_is_an_optional_feature_of_its_layer():
    for case in case_set("smoke"):
        assert case_features(case.spec) <= set(optional_features(case.layer)), case.id


def test_optional_features_per_layer():
    assert "groups" in optional_features("Conv2D") and "groups" not in optional_features("SeparableConv2D")
    assert "causal" in optional_features("Conv1D") and "causal" not in optional_features("Conv2D")
    assert optional_features("Cropping1D") == ("gradients",)
    assert "interpolation:bilinear" in optional_features("UpSampling2D")
    assert "interpolation:nearest" not in optional_features("UpSampling2D")


@pytest.mark.parametrize("bad, words", [
    ({"layers": ["Conv9D"]}, "Conv9D"),
    ({"layers": {"Conv2D": ["causal"]}}, "causal"),        # Conv2D has no causal padding
    ({"layers": ["Conv2D"], "dtypes": ["float8"]}, "float8"),
    ({"layers": [], "gradients": "yes"}, "gradients"),
    ({"layers": [], "colour": 1}, "colour"),
    ([], "dict"),
])
def test_malformed_declarations_name_what_is_wrong(bad, words):
    with pytest.raises(DeclarationError, match=words):
        parse_declaration(bad)


def test_declare_drops_features_a_layer_cannot_use():
    d = parse_declaration(declare(["Conv2D", "Cropping2D"], ["groups", "channels_first"], gradients=False))
    assert d.layers == {"Conv2D": {"groups", "channels_first"}, "Cropping2D": {"channels_first"}}
    assert d.dtypes == {"float32"} and d.gradients is False


def _first(layer, pred=lambda c: True):
    return next(c for c in case_set("smoke", layers=[layer]) if c.kind == "valid" and pred(c))


def test_declining_a_declared_feature_fails_and_an_undeclared_one_is_unsupported():
    case = _first("Conv2D", lambda c: c.spec["config"]["data_format"] == "channels_first")
    m = materialize(case)
    claimed = check(declared.ClaimsButDeclines(), case, m, "float32")
    assert claimed.verdicts["output"] == "fail" and "declined a mandatory case" in claimed.message
    honest = check(declared.HonestPartial(), case, m, "float32")
    assert honest.verdicts["output"] == "unsupported"
    # an undeclared dtype makes every case optional
    honest64 = check(declared.ClaimsButDeclines(), case, materialize(case, "float64"), "float64")
    assert honest64.verdicts["output"] == "unsupported"


def test_declared_gradients_that_are_declined_fail():
    case = _first("Conv1D")
    result = check(declared.NoGradients(), case, materialize(case), "float32")
    assert result.verdicts["output"] == "pass" and result.verdicts["gradient"] == "fail"


def _record(layer, spec, **verdicts):
    return {"layer": layer, "spec": spec, "verdicts": verdicts}


def test_levels_from_hand_built_records():
    t = LevelTally(None)
    ok = dict(shape="pass", output="pass", gradient="pass")
    t.add(_record("Conv2D", conv2d(), **ok))
    t.add(_record("Conv2D", conv2d(data_format="channels_first"), **ok))
    t.add(_record("Conv2D", conv2d(activation="relu"), shape="unsupported", output="unsupported", gradient="unsupported"))
    # Conv1D: forward only (no gradient category), so channels_first is its only optional feature
    t.add(_record("Conv1D", {"class_name": "Conv1D", "config": {}}, shape="pass", output="pass"))
    t.add(_record("Conv1D", {"class_name": "Conv1D", "config": {"data_format": "channels_first"}},
                  shape="unsupported", output="unsupported"))
    t.add(_record("Conv3D", {"class_name": "Conv3D", "config": {}}, shape="unsupported", output="unsupported"))
    t.add(_record("Conv3D", {"class_name": "Conv3D", "config": {"groups": 2}}, **ok))
    t.add(_record("Cropping1D", {"class_name": "Cropping1D", "config": {}}, shape="pass", output="fail"))
    t.add(_record("ZeroPadding1D", {"class_name": "ZeroPadding1D", "config": {}}, error_behaviour="unsupported"))
    t.add(_record("Conv1DTranspose", {"class_name": "Conv1DTranspose", "config": {}},
                  shape="pass", output="pass", gradient="unsupported"))
    levels = t.levels()
    assert levels["Conv2D"]["level"] == "partial" and levels["Conv2D"]["declined_features"] == ["activation:relu"]
    assert levels["Conv1D"]["level"] == "core" and levels["Conv1D"]["declined_features"] == ["channels_first"]
    assert levels["Conv3D"]["level"] == "not_conformant"          # a declined core case
    assert levels["Cropping1D"]["level"] == "not_conformant" and levels["Cropping1D"]["failing"] == 1
    assert levels["ZeroPadding1D"]["level"] == "not_implemented"
    assert levels["Conv1DTranspose"]["level"] == "core" and levels["Conv1DTranspose"]["declined_features"] == ["gradients"]
    coverage = t.coverage()
    by_category = coverage.pop("by_category")
    assert coverage == {"cases": 10, "declined": 5, "scored": 5, "fraction": 0.5}
    # per category: shape/output on the 9 valid cases (3 declined), gradient on 5 (2 declined)
    assert by_category == {"shape": {"cases": 9, "declined": 3, "scored": 6, "fraction": 6 / 9},
                           "output": {"cases": 9, "declined": 3, "scored": 6, "fraction": 6 / 9},
                           "gradient": {"cases": 5, "declined": 2, "scored": 3, "fraction": 3 / 5},
                           "error_behaviour": {"cases": 1, "declined": 1, "scored": 0, "fraction": 0.0}}
    # a declined core case makes a layer not_conformant, so the run is not conformant without any failure
    assert not conformant({k: v for k, v in levels.items() if k != "Cropping1D"})
    assert conformant({k: v for k, v in levels.items() if k not in ("Cropping1D", "Conv3D")})
    assert not conformant({"Conv2D": levels["Conv2D"]}, interrupted=True)


def _typed(layer, spec, kind, dtype, **verdicts):
    return {"layer": layer, "spec": spec, "kind": kind, "dtype": dtype, "verdicts": verdicts}


def test_declining_every_valid_case_at_a_dtype_is_not_implemented_there():
    # an implementation that declines every valid float64 Conv2D case but raises on invalid configurations
    # (error_behaviour pass) has not implemented Conv2D at float64: no core case of it was declined
    t = LevelTally(None)
    declined = dict(shape="unsupported", output="unsupported", gradient="unsupported")
    t.add(_typed("Conv2D", conv2d(), "valid", "float64", **declined))
    t.add(_typed("Conv2D", conv2d(data_format="channels_first"), "valid", "float64", **declined))
    t.add(_typed("Conv2D", conv2d(), "invalid", "float64", error_behaviour="pass"))
    # Conv1D implemented at float64 except one core case: that is a declined core case at float64
    t.add(_typed("Conv1D", {"class_name": "Conv1D", "config": {}}, "valid", "float64", shape="pass", output="pass"))
    t.add(_typed("Conv1D", {"class_name": "Conv1D", "config": {}}, "valid", "float64",
                 shape="unsupported", output="unsupported"))
    levels = t.levels()
    assert levels["Conv2D"]["level"] == "not_implemented" and levels["Conv2D"]["dtype"] == "float64"
    assert level_text(levels["Conv2D"]) == "not implemented at float64"
    assert levels["Conv1D"]["level"] == "not_conformant"
    assert conformant({"Conv2D": levels["Conv2D"]}) and not conformant(levels)
    assert coverage_line(t.coverage(), levels).endswith("layers at float64: 1 not implemented, 1 not conformant")


def test_run_reports_levels_and_always_shows_coverage(tmp_path, capsys, validate_report):
    status = main(["run", "--adapter", f"{DECLARED}:HonestPartial", "--layers", "Conv1D,Cropping2D",
                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    validate_report(report)
    cases = report["cases"]
    declined = [c for c in cases if "unsupported" in c["verdicts"].values()]
    first_format = [c for c in cases if c["spec"]["config"].get("data_format") == "channels_first"]
    assert status == 0 and declined and {c["id"] for c in declined} == {c["id"] for c in first_format}
    assert f"coverage {len(cases) - len(declined)}/{len(cases)} cases fully scored" in out
    assert report["summary"]["levels"]["Conv1D"]["declined_features"] == ["channels_first"]
    assert report["adapter"]["declaration"]["layers"]["Conv1D"] == sorted(
        set(optional_features("Conv1D")) - {"channels_first"})


def test_claiming_and_declining_is_not_conformant(tmp_path, capsys):
    assert main(["run", "--adapter", f"{DECLARED}:ClaimsButDeclines", "--layers", "Cropping2D",
                 "--out", str(tmp_path)]) == 1
    assert "NOT CONFORMANT" in capsys.readouterr().out


def test_a_malformed_declaration_is_a_load_error(tmp_path, capsys):
    assert main(["run", "--adapter", f"{DECLARED}:Malformed", "--layers", "Cropping1D", "--out", str(tmp_path)]) == 2


# ---------------------------------------------------------------- quality_warning

def test_verdict_order_and_allowed_verdicts():
    assert VERDICTS.index("pass") < VERDICTS.index("quality_warning") < VERDICTS.index("fail")
    assert VERDICTS.index("waived") < VERDICTS.index("fail")
    assert not {"quality_warning", "waived", "unsupported", "pass"} & FAILING


def _with_strict(m, output, gradients=None):
    """The materialized case with the oracle's strict arrays replaced (None: today's default class)."""
    if dataclasses.is_dataclass(m) and "strict_output" in {f.name for f in dataclasses.fields(m)}:
        return dataclasses.replace(m, strict_output=output, strict_gradients=gradients)
    return types.SimpleNamespace(**vars(m), strict_output=output, strict_gradients=gradients)


def _linear_conv1d():
    return _first("Conv1D", lambda c: c.spec["config"]["activation"] == "linear")


def test_loose_but_not_strict_is_a_quality_warning():
    case = _linear_conv1d()
    m = _with_strict(materialize(case), None)   # strict class: allowed / SAFETY
    sloppy = declared.Sloppy()
    result = check(sloppy, case, m, "float32")
    assert result.verdicts["output"] == "quality_warning"
    assert 0.7 < result.worst_ratio["output"] <= 0.76 and 1.4 < result.strict_ratio["output"] <= 1.52
    assert "not the strict one" in result.message
    sloppy.fraction = 0.4        # within both classes
    assert check(sloppy, case, m, "float32").verdicts["output"] == "pass"
    sloppy.fraction = 1.5        # outside the loose one
    assert check(sloppy, case, m, "float32").verdicts["output"] == "fail"


def test_strict_arrays_from_the_oracle_take_precedence():
    case = _linear_conv1d()
    m = _with_strict(materialize(case), None)
    sloppy = declared.Sloppy()
    sloppy.fraction = 0.45       # strict by default (allowed / 2): ratio 0.9, a pass
    assert check(sloppy, case, m, "float32").verdicts["output"] == "pass"
    tight = _with_strict(m, np.asarray(m.allowed_output) / 10)
    result = check(sloppy, case, tight, "float32")
    assert result.verdicts["output"] == "quality_warning" and result.strict_ratio["output"] > 4


def test_every_format_gives_each_category_apart(tmp_path, capsys):
    """A forward-only adapter that passes every output it is asked for declines the gradient and the
    training-time categories, so every case's worst verdict is unsupported; each category's counts
    say that its outputs passed."""
    assert main(["run", "--adapter", "tests.conformance.fixtures.broken:ForwardOnly", "--layers", "Conv1D",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    valid = sum(c["kind"] == "valid" for c in report["cases"])
    invalid = len(report["cases"]) - valid
    assert report["summary"]["counts"]["unsupported"] == valid  # the headline alone hides the passes
    line = (f"output {valid} pass; gradient {valid} unsupported; error_behaviour {invalid} pass; "
            f"initializer {valid} unsupported")
    assert line in out
    assert report["summary"]["coverage"]["by_category"]["output"] == {"cases": valid, "declined": 0, "scored": valid,
                                                                      "fraction": 1.0}
    assert report["summary"]["coverage"]["by_category"]["gradient"]["fraction"] == 0.0
    for fmt in ("markdown", "html", "junit"):
        rendered = tmp_path / f"r.{fmt}"
        assert main(["report", str(tmp_path / "report.json"), "--format", fmt, "--out", str(rendered)]) == 0
        assert f"output {valid} pass" in rendered.read_text()

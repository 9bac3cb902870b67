"""Failure clustering (reports.clusters): every failure lands in exactly one
cluster, a cause that cuts across layers and categories is one cluster named by
the fewest arguments that explain it, messages normalize."""
from __future__ import annotations

import json

import pytest

from conv_conformance.reports import FAILING
from conv_conformance.reports.clusters import arguments, clusters, features, signature_message
from tests.reports import builders
from tests.reports.conftest import cli

OK = {"shape": "pass", "output": "pass", "gradient": "pass"}
SELU_WRONG = {"shape": "pass", "output": "fail", "gradient": "fail"}


def _spec(layer: str, **config) -> dict:
    spec = builders.conv2d(**config)
    spec["class_name"] = layer
    return spec


def _failures(report):
    return {(c["id"], cat) for c in report["cases"] for cat, v in c["verdicts"].items() if v in FAILING}


def _covered(found):
    return [(m.case["id"], cat) for cl in found for m in cl.members for cat in m.categories]


def test_every_failure_in_exactly_one_cluster(mixed):
    covered = _covered(clusters(mixed))
    assert sorted(covered) == sorted(_failures(mixed))


def test_mismatch_pattern_is_the_failing_argument_values(mixed):
    found = {cl.title: cl for cl in clusters(mixed)}
    cl = found["Conv2D output fails when padding='same' and strides=[2, 2]"]
    assert cl.kind == "mismatch" and cl.size == 2
    assert cl.pattern == {"padding": "'same'", "strides": "[2, 2]"}
    assert cl.worst_ratio == 37.5 + 8        # builders: ratio 37.5 + n, n = 7, 8


def test_exception_cluster_groups_varying_messages(mixed):
    (cl,) = [c for c in clusters(mixed) if c.kind == "exception"]
    assert cl.size == 3 and cl.verdict == "error" and cl.exception_type == "UnimplementedError"
    assert cl.categories == ("shape", "output", "gradient")
    assert "dilation N not supported for shape (N, N, N, N)" in cl.title


def test_invalid_case_pattern_prefers_the_rare_value(mixed):
    titles = [c.title for c in clusters(mixed)]
    assert "Conv2D error behaviour fails when strides=[0, 0]" in titles


def test_largest_first(mixed):
    sizes = [c.size for c in clusters(mixed)]
    assert sizes == sorted(sizes, reverse=True) == [3, 2, 1]


def test_no_passing_case_means_every_case():
    cases = [builders.case(f"Conv2D-{i}", builders.conv2d(padding=p), {"output": "fail"})
             for i, p in enumerate(["same", "valid"])]
    (cl,) = clusters(builders.report(cases))
    assert cl.title == "Conv2D output fails in every case" and cl.size == 2


def test_no_separating_pattern():
    spec = builders.conv2d()
    cases = [builders.case("a", spec, {"output": "fail"}), builders.case("b", spec, {"output": "pass"})]
    (cl,) = clusters(builders.report(cases))
    assert cl.title == "Conv2D output fails (no argument pattern)" and cl.pattern == {}


def test_signature_message():
    assert signature_message("shape (2, 5, 5, 3) vs (1, 7, 7, 4) at 0x7ffe12") == \
        "shape (N, N, N, N) vs (N, N, N, N) at 0x…"
    assert signature_message("bad 'conv2d_1' float32\n  traceback line") == "bad '…' float32"


def test_signature_message_looks_through_keras_wrappers():
    """The line naming the layer is a wrapper: the cause is the line after it, so one cause
    raised in Conv1D and in Conv2D gets one signature."""
    inner = ("{{function_node __wrapped__Conv2D_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
             "The Conv2D op currently only supports the NHWC tensor format on the CPU. [Op:Conv2D] name: ")
    keras3 = f"Exception encountered when calling Conv1D.call().\n\n{inner}\n\nArguments received by Conv1D.call():"
    keras2 = f"Exception encountered when calling layer 'conv2d_301' (type Conv2D).\n\n{inner}\n\nCall arguments"
    expected = ("{{function_node __wrapped__Conv2D}} The Conv2D op currently only supports the NHWC "
                "tensor format on the CPU. [Op:Conv2D]")
    assert signature_message(keras3) == signature_message(keras2) == expected
    deserializing = ("Error when deserializing class 'Conv1D' using config={'filters': 2, 'padding': 'full'}."
                     "\n\nException encountered: The `padding` argument must be one of \"valid\", \"same\".")
    assert signature_message(deserializing) == "The `…` argument must be one of \"…\", \"…\"."


def test_arguments_from_spec():
    args = arguments({"spec": builders.conv2d(strides=[2, 2])})
    assert args["strides"] == "[2, 2]" and args["padding"] == "'valid'" and args["use_bias"] == "true"


def test_real_mixed_run(real):
    """The Mixed adapter breaks Conv2D output exactly when padding='same'."""
    found = clusters(real["mixed"])
    assert sorted(_covered(found)) == sorted(_failures(real["mixed"]))
    titles = {c.title: c for c in found}
    conv = titles["Conv2D output fails when padding='same'"]
    assert all(m.case["spec"]["config"]["padding"] == "same" for m in conv.members)
    n_same = sum(1 for c in real["mixed"]["cases"] if c["layer"] == "Conv2D" and c["kind"] == "valid"
                 and c["spec"]["config"]["padding"] == "same")
    assert conv.size == n_same > 0
    exc = [c for c in found if c.kind == "exception"]
    assert {tuple(c.layers) for c in exc} == {("ZeroPadding1D",), ("ZeroPadding2D",), ("ZeroPadding3D",)}
    assert clusters(real["reference"]) == []


def _two_layer_run(selu_verdicts=SELU_WRONG, extra=()):
    """Conv1D and Conv2D cases over activations x initializers x strides; selu cases
    get ``selu_verdicts``, the others pass."""
    cases = []
    for layer in ("Conv1D", "Conv2D"):
        for act in ("selu", "relu", "tanh"):
            for init in ("GlorotUniform", "HeNormal"):
                for strides in ([1, 1], [2, 2]):
                    spec = _spec(layer, activation=act, strides=strides,
                                 kernel_initializer={"class_name": init, "config": {}})
                    verdicts = selu_verdicts if act == "selu" else OK
                    cases.append(builders.case(f"{layer}-{act}-{init}-{strides[0]}", spec, verdicts))
    return builders.report(cases + list(extra))


def test_cause_across_layers_and_categories_is_one_cluster():
    (cl,) = clusters(_two_layer_run())
    assert cl.pattern == {"activation": "'selu'"} and cl.exact
    assert cl.categories == ("output", "gradient") and cl.layers == ["Conv1D", "Conv2D"]
    assert cl.size == 8 and cl.verdicts == ("fail",)
    assert cl.title == "output, gradient fail when activation='selu'"


def test_arguments_that_do_not_change_the_math_never_name_it():
    """Every selu case with GlorotUniform fails, every other case passes: the initializer
    separates the failures as well as anything, yet cannot explain an output."""
    cases = []
    for init in ("GlorotUniform", "HeNormal"):
        for use_bias in (True, False):
            for act in ("selu", "relu"):
                spec = _spec("Conv2D", activation=act, use_bias=use_bias,
                             kernel_initializer={"class_name": init, "config": {}})
                bad = act == "selu" and init == "GlorotUniform"
                verdict = "fail" if bad else "pass"
                cases.append(builders.case(f"{init}-{use_bias}-{act}", spec,
                                           {"output": verdict, "initializer": verdict}))
    found = clusters(builders.report(cases))
    by_category = {cl.categories: cl for cl in found}
    assert set(by_category) == {("output",), ("initializer",)}
    assert "kernel_initializer" not in json.dumps([cl.pattern for cl in found if cl.categories == ("output",)])
    glorot = '{"class_name": "GlorotUniform", "config": {}}'
    assert by_category[("initializer",)].pattern == {"activation": "'selu'", "kernel_initializer": glorot}
    assert "kernel_initializer" not in features(cases[0], "output")
    assert "kernel_initializer" in features(cases[0], "initializer")


def test_a_pass_on_an_empty_batch_clears_nothing():
    empty = builders.case("Conv2D-empty", _spec("Conv2D", activation="selu"), OK, input_shape=[0, 6, 6, 1])
    (cl,) = clusters(_two_layer_run(extra=[empty]))
    assert cl.pattern == {"activation": "'selu'"} and cl.size == 8


def test_shape_pass_on_an_empty_batch_still_counts():
    """Shapes are compared even on an empty batch: a pass there is evidence."""
    wrong_shape = {"shape": "fail", "output": "fail", "gradient": "fail"}
    empty = builders.case("Conv2D-empty", _spec("Conv2D", activation="selu"), OK, input_shape=[0, 6, 6, 1])
    found = clusters(_two_layer_run(selu_verdicts=wrong_shape, extra=[empty]))
    shape = [cl for cl in found if "shape" in cl.categories]
    assert shape and all(cl.pattern != {"activation": "'selu'"} for cl in shape)


def test_mostly_when_no_condition_is_exact():
    """A wrong activation can land within tolerance: selu fails in 3 of 4 cases, the
    fourth passes; nothing else separates them."""
    cases = [builders.case(f"Conv2D-{i}", _spec("Conv2D", activation=act), {"output": v})
             for i, (act, v) in enumerate([("selu", "fail")] * 3 + [("selu", "pass")] + [("relu", "pass")] * 4)]
    (cl,) = clusters(builders.report(cases))
    assert cl.pattern == {"activation": "'selu'"} and not cl.exact and cl.size == 3
    assert cl.title == "Conv2D output fails mostly when activation='selu' (1 passing case matches too)"


def test_a_minority_condition_explains_nothing():
    cases = [builders.case(f"Conv2D-{i}", _spec("Conv2D", activation=act), {"output": v})
             for i, (act, v) in enumerate([("selu", "fail")] + [("selu", "pass")] * 2 + [("relu", "pass")] * 2)]
    (cl,) = clusters(builders.report(cases))
    assert cl.pattern == {} and cl.title == "Conv2D output fails (no argument pattern)"


def test_same_message_across_layers_is_one_exception_cluster():
    exc = {"type": "UnimplementedError", "message": "dilation 2 not supported on CPU"}
    cases = [builders.case(f"{layer}-1", _spec(layer, dilation_rate=[2, 2]),
                           {"shape": "error", "output": "error", "gradient": "error"}, exception=exc)
             for layer in ("Conv1D", "Conv2D", "Conv3D")]
    (cl,) = clusters(builders.report(cases))
    assert cl.kind == "exception" and cl.layers == ["Conv1D", "Conv2D", "Conv3D"] and cl.size == 3


def test_order_of_cases_does_not_change_the_clusters(mixed):
    forward = clusters(mixed)
    backward = clusters(builders.report(list(reversed(mixed["cases"]))))
    assert [(c.title, c.size, c.key) for c in forward] == [(c.title, c.size, c.key) for c in backward]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """A real smoke run of tests/reports/planted.py: wrong selu constants and a
    padding='same' gradient bug."""
    out = tmp_path_factory.mktemp("planted")
    proc = cli("run", "--adapter", "tests.reports.planted:TwoCauses", "--profile", "smoke",
               "--out", str(out / "run"), cwd=out)
    assert proc.returncode == 1, proc.stderr[-2000:]
    return json.loads((out / "run" / "report.json").read_text())


def test_planted_two_causes_give_two_clusters(planted):
    found = clusters(planted)
    assert sorted(_covered(found)) == sorted(_failures(planted))
    assert sorted((cl.condition, cl.categories) for cl in found) == [
        ("activation='selu'", ("output", "gradient")), ("padding='same'", ("gradient",))]
    assert all(cl.exact and len(cl.layers) > 1 for cl in found)
    same = next(cl for cl in found if cl.condition == "padding='same'")
    assert all(m.case["spec"]["config"]["padding"] == "same" for m in same.members)


def test_one_cause_spanning_verdicts_lists_them():
    cases = [builders.case(f"Conv2D-{i}", _spec("Conv2D", activation=act), {"gradient": v})
             for i, (act, v) in enumerate([("selu", "fail"), ("selu", "error"), ("relu", "pass")])]
    (cl,) = clusters(builders.report(cases))     # an error with no exception recorded is a mismatch
    assert cl.verdicts == ("fail", "error") and cl.verdict == "error"
    assert cl.title == "Conv2D gradient fails or errors when activation='selu'"

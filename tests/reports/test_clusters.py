"""Failure clustering (reports.clusters): every failure lands in exactly one
cluster, argument patterns explain mismatches, messages normalize."""
from __future__ import annotations

from conv_conformance.reports import FAILING
from conv_conformance.reports.clusters import arguments, clusters, signature_message
from tests.reports import builders


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

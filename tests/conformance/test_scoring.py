"""The comparison routine, its failure format, and the scoring of one case."""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance.calls import describe_call
from conv_conformance.conformance.compare import score
from conv_conformance.conformance.record import CaseResult
from conv_conformance.conformance.scoring import check
from conv_conformance.vocabulary import worst_verdict
from conv_conformance.conformance import training
from conv_conformance.conformance.adapters.reference import ReferenceAdapter
from tests.conformance.fixtures import broken

CONV = reference.normalize({"class_name": "Conv2D",
                            "config": {"filters": 3, "kernel_size": [3, 3], "strides": [2, 2],
                                       "padding": "same"}})


# ----------------------------------------------------------------- score()

def test_ratio_is_error_over_allowed_and_worst_is_located():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    actual = np.array([[1.0, 2.1], [3.0, 3.7]])
    allowed = np.array([[1.0, 0.2], [0.1, 0.1]])
    c = score("out", actual, expected, allowed, call="X()")
    # element ratios: 0, 0.5, 0, 3 -> worst 3 at (1, 1)
    assert c.ratio == pytest.approx(3.0)
    assert c.worst == {"index": [1, 1], "expected": 4.0, "actual": 3.7, "allowed": 0.1}
    assert c.mismatches == 1 and not c.passed


def test_within_allowed_passes_with_its_ratio():
    c = score("out", np.array([1.05, 2.0]), np.array([1.0, 2.0]), 0.1, call="X()")
    assert c.passed and c.ratio == pytest.approx(0.5) and c.message == ""


def test_allowed_zero_means_exact():
    exact = score("out", np.array([1.0, 2.0]), np.array([1.0, 2.0]), 0.0, call="X()")
    assert exact.passed and exact.ratio == 0.0
    off = score("out", np.array([1.0, 2.0 + 2**-40]), np.array([1.0, 2.0]), 0.0, call="X()")
    assert not off.passed and off.ratio == math.inf and off.worst["index"] == [1]


def test_nan_where_a_number_is_expected_is_infinite_error():
    c = score("out", np.array([1.0, np.nan]), np.array([1.0, 2.0]), 10.0, call="X()")
    assert c.ratio == math.inf and c.worst["index"] == [1] and not c.passed


def test_bfloat16_results_are_accepted_and_compared_in_float64():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    got = np.array([1.0, 2.0, 3.0], dtype=ml_dtypes.bfloat16)
    ok = score("out", got, np.array([1.0, 2.0, 3.0]), 0.0, call="X()")
    assert ok.passed and ok.ratio == 0.0
    off = score("out", got, np.array([1.0, 2.0, 3.25]), 0.1, call="X()")
    assert not off.passed and off.ratio == pytest.approx(2.5)


def test_non_float_result_is_rejected_with_its_dtype():
    c = score("out", np.array(["a", "b"]), np.array([1.0, 2.0]), 0.1, call="X()")
    assert not c.passed and "out.dtype=<U1" in c.message


def test_shape_mismatch_message_names_both_shapes_and_the_call():
    call = describe_call(CONV)
    c = score("out", np.zeros((2, 5, 5, 3)), np.zeros((2, 4, 4, 3)), 1.0, call=call)
    assert not c.shape_ok and c.ratio is None
    assert c.message == ("out.shape=(2, 5, 5, 3), but should be (2, 4, 4, 3) "
                         "[Conv2D(filters=3, kernel_size=3, strides=2, padding='same')]")


def test_value_mismatch_message_format():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    actual = np.array([[1.0, 2.5], [3.0, 4.0]], dtype=np.float32)
    c = score("grad['kernel']", actual, expected, 0.25, call="Conv1D(filters=1, kernel_size=1)")
    lines = c.message.splitlines()
    assert lines[0] == ("grad['kernel'] differs from the reference beyond the allowed error "
                        "[Conv1D(filters=1, kernel_size=1)]")
    assert lines[1] == " grad['kernel'].shape=(2, 2), dtype=float32"
    assert lines[2] == " Mismatched elements: 1 / 4 (25%)"
    assert lines[3] == " Worst error ratio: 2 at index (0, 1)"
    assert lines[4:7] == ["  actual:   2.5", "  expected: 2.0", "  allowed:  0.25"]
    assert lines[7] == " Max absolute difference among violations: 0.5"
    assert lines[8] == " Max relative difference among violations: 0.25"


def test_describe_call_leaves_out_defaults_and_adds_the_input():
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 3}})
    assert describe_call(spec, (1, 7, 4), "float16") == \
        "Conv1D(filters=2, kernel_size=3) on x.shape=(1, 7, 4) float16"


def test_worst_verdict_order():
    assert worst_verdict(["pass", "unsupported"]) == "unsupported"
    assert worst_verdict({"a": "fail", "b": "unsupported"}) == "fail"
    assert worst_verdict(["fail", "error", "pass"]) == "error"
    assert worst_verdict(["timeout", "crash"]) == "crash"
    assert worst_verdict([]) == "pass"


# ----------------------------------------------------------------- check()

@dataclass(frozen=True)
class _Case:
    """A hand-made case (the shape of oracle.cases.Case)."""

    id: str
    layer: str
    spec: dict
    input_shape: tuple
    kind: str = "valid"
    seed: int = 0
    gradient: bool = True


def _materialized(spec, shape, seed=0):
    """Small-integer inputs and weights (exact in float32), expected values from the reference."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=shape).astype(np.float64)
    w = {k: rng.integers(-3, 4, size=s).astype(np.float64) for k, s in reference.weight_shapes(spec, shape).items()}
    y = reference.forward(spec, x, w)
    g = rng.integers(-2, 3, size=y.shape).astype(np.float64)
    grads = reference.vjp(spec, x, w, g)
    return SimpleNamespace(inputs=x, weights=w, output_grad=g, expected_output=y, expected_gradients=grads,
                           allowed_output=np.full(y.shape, 1e-5),
                           allowed_gradients={k: np.full(v.shape, 1e-5) for k, v in grads.items()})


@pytest.fixture(scope="module")
def valid():
    return _Case("Conv2D-test", "Conv2D", CONV, (2, 5, 5, 2)), _materialized(CONV, (2, 5, 5, 2))


@pytest.fixture(scope="module")
def invalid():
    spec = {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": [2, 2], "padding": "full"}}
    x = np.ones((1, 4, 4, 1))
    m = SimpleNamespace(inputs=x, weights={"kernel": np.ones((2, 2, 1, 2))}, output_grad=None,
                        expected_output=None, expected_gradients=None, allowed_output=None,
                        allowed_gradients=None)
    return _Case("Conv2D-invalid", "Conv2D", spec, (1, 4, 4, 1), kind="invalid", gradient=False), m


def _core(verdicts: dict) -> dict:
    """The verdicts without the training-time categories (scored in tests/conformance/test_training_scoring.py)."""
    return {k: v for k, v in verdicts.items() if k not in training.CATEGORIES}


def test_reference_passes_every_category(valid):
    r = check(ReferenceAdapter(), *valid, "float32")
    assert _core(r.verdicts) == {"shape": "pass", "output": "pass", "gradient": "pass"}
    assert {r.verdicts[c] for c in training.CATEGORIES} == {"pass"}  # its initialize, regularization, ...
    assert r.worst_ratio["output"] <= 1 and r.worst_ratio["gradient"] <= 1
    assert r.worst["gradient"]["name"] in ("inputs", "kernel", "bias")
    assert r.exception is None and r.message == "" and r.seconds > 0


def test_wrong_values_fail_output_with_a_message(valid):
    r = check(broken.WrongValues(), *valid, "float32")
    assert _core(r.verdicts) == {"shape": "pass", "output": "fail", "gradient": "pass"}
    assert r.worst_ratio["output"] > 1
    assert "out differs from the reference" in r.message and "Conv2D(filters=3" in r.message


def test_wrong_shape_fails_shape_and_output(valid):
    r = check(broken.WrongShape(), *valid, "float32")
    assert r.verdicts["shape"] == "fail" and r.verdicts["output"] == "fail"
    assert "output" not in r.worst_ratio
    assert r.message.startswith("out.shape=(2, 3, 3, 2), but should be (2, 3, 3, 3)")


def test_missing_gradient_key_fails_with_an_infinite_ratio(valid):
    """A vjp that leaves a gradient out has no finite error ratio: the recorded ratio says `fail`
    too (even though the gradients it did return are right), so certify.verify can check it."""
    class DropsBias(ReferenceAdapter):
        def vjp(self, spec, inputs, weights, output_grad):
            grads = super().vjp(spec, inputs, weights, output_grad)
            grads.pop("bias")
            return grads

    r = check(DropsBias(), *valid, "float32")
    assert r.verdicts["gradient"] == "fail" and r.verdicts["output"] == "pass"
    assert r.worst_ratio["gradient"] == float("inf") and "gradient" not in r.worst
    assert "vjp returned no 'bias' gradient" in r.message


def test_raising_adapter_is_error_with_exception(valid):
    r = check(broken.Raises(), *valid, "float32")
    assert _core(r.verdicts) == {"shape": "error", "output": "error", "gradient": "error"}
    assert r.exception == {"type": "RuntimeError", "summary": "RuntimeError: deliberate failure in forward",
                           "message": "deliberate failure in forward"}


def test_declining_adapter_is_unsupported(valid):
    r = check(broken.Declines(), *valid, "float32")
    assert set(_core(r.verdicts).values()) == {"unsupported"}


def test_missing_vjp_makes_gradient_unsupported(valid):
    r = check(broken.ForwardOnly(), *valid, "float32")
    assert _core(r.verdicts) == {"shape": "pass", "output": "pass", "gradient": "unsupported"}


def test_adapter_gets_copies_in_the_run_dtype(valid):
    case, m = valid
    before = (m.inputs.copy(), {k: v.copy() for k, v in m.weights.items()}, m.output_grad.copy())
    seen = []

    class Spy(ReferenceAdapter):
        def forward(self, spec, inputs, weights):
            seen.append((inputs.dtype, inputs is m.inputs))
            return super().forward(spec, inputs, weights)

    r = check(broken.Mutates(), case, m, "float32")
    check(Spy(), case, m, "bfloat16")
    # writing into the arrays it was given is the mutation verdict; the caller's stay intact
    assert r.verdicts["output"] == r.verdicts["gradient"] == "mutation" and r.verdicts["shape"] == "pass"
    assert "wrote into the caller's inputs" in r.message
    np.testing.assert_array_equal(m.inputs, before[0])
    np.testing.assert_array_equal(m.output_grad, before[2])
    for k in before[1]:
        np.testing.assert_array_equal(m.weights[k], before[1][k])
    assert case.spec == CONV
    assert str(seen[0][0]) == "bfloat16" and seen[0][1] is False


def test_invalid_case_error_behaviour(invalid):
    ok = check(ReferenceAdapter(), *invalid, "float32")
    assert ok.verdicts == {"error_behaviour": "pass"} and ok.exception["type"] == "InvalidConfig"
    bad = check(broken.AcceptsInvalid(), *invalid, "float32")
    assert bad.verdicts == {"error_behaviour": "fail"}
    assert "padding" in bad.message and "Keras rejects" in bad.message
    declined = check(broken.Declines(), *invalid, "float32")
    assert declined.verdicts == {"error_behaviour": "unsupported"}


def test_case_result_categories():
    assert CaseResult.categories_of(_Case("a", "Conv1D", {}, (1,), gradient=False)) == ("shape", "output") \
        + training.CATEGORIES  # a weighted layer
    assert CaseResult.categories_of(_Case("a", "Cropping1D", {}, (1,), gradient=False)) == ("shape", "output")
    assert CaseResult.categories_of(_Case("a", "Conv1D", {}, (1,), kind="invalid")) == ("error_behaviour",)

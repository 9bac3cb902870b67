"""The cases whose constrained weight slices have the norms at which a constraint's epsilon and bounds
decide the result (oracle.cases, oracle.materialize.with_slice_norms): the norms they get, and the
constraint mutants they catch through the one scoring path that the drawn weights alone let pass."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance import reference
from conv_conformance.conformance.adapters.reference import ReferenceAdapter
from conv_conformance.conformance.scoring import check
from conv_conformance.oracle import cases
from conv_conformance.oracle.materialize import round_to, with_slice_norms
from conv_conformance.reference.constraints import norm_axes

EPS = reference.EPSILON


def _epsilon_cases(profile: str = "standard") -> list:
    return [c for c in cases.case_set(profile) if c.meta and "weight_norms" in c.meta]


def _slice_norms(constraint: dict, w: np.ndarray) -> np.ndarray:
    axes = norm_axes(constraint, w.ndim)
    kept = [a for a in range(w.ndim) if a not in axes]
    return np.sqrt(np.sum(np.moveaxis(w, kept + list(axes), range(w.ndim)) ** 2,
                          axis=tuple(range(len(kept), w.ndim)))).ravel()


def test_profiles_hold_the_epsilon_cases_and_their_ids_depend_on_the_norms():
    smoke, standard = _epsilon_cases("smoke"), _epsilon_cases("standard")
    assert len(smoke) == 4 and len(standard) == 8
    assert {c.id for c in smoke} <= {c.id for c in standard}
    kinds = {c.spec["config"][a["constraint"]]["class_name"] for c in standard
             for w, a in reference.weight_arguments(c.spec).items() if w in c.meta["weight_norms"]}
    assert kinds == {"UnitNorm", "MaxNorm", "MinMaxNorm"}
    plain = cases.make_case(smoke[0].spec, smoke[0].input_shape, "valid")
    assert plain.id != smoke[0].id and plain.seed != smoke[0].seed


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_constrained_slices_get_the_listed_norms_up_to_the_dtype_rounding(dtype):
    u = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}[dtype]
    for c in _epsilon_cases():
        m = cases.materialize(c, dtype)
        cfg = c.spec["config"]
        for name, targets in c.meta["weight_norms"].items():
            w = m.weights[name]
            np.testing.assert_array_equal(w, cases.materialize(c, dtype).weights[name])  # deterministic
            np.testing.assert_array_equal(round_to(w, dtype), w)  # still exact in the dtype
            constraint = cfg[reference.weight_arguments(c.spec)[name]["constraint"]]
            got = _slice_norms(constraint, w)
            want = np.resize(np.asarray(targets, dtype=np.float64), got.shape)
            if dtype == "float16":  # no slice below the norm whose squares are normal float16 numbers
                assert np.min(np.abs(w)) >= 2.0 ** -7, (c.id, name)
                assert np.all(got >= want * (1 - 4 * u)), (c.id, name)
                got, want = got[want >= 0.25], want[want >= 0.25]
            np.testing.assert_allclose(got, want, rtol=4 * u, err_msg=f"{c.id} {name}")


def test_slice_norms_need_a_norm_constraint():
    spec = reference.normalize({"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 1,
                                                                 "kernel_constraint": "non_neg"}})
    w = {"kernel": np.ones((1, 1, 2)), "bias": np.zeros(2)}
    with pytest.raises(ValueError, match="norm constraint"):
        with_slice_norms(spec, w, {"kernel": [1.0]}, "float32")
    with pytest.raises(ValueError, match="norm constraint"):
        with_slice_norms(spec, w, {"bias": [1.0]}, "float32")


def test_the_epsilon_cases_reach_each_regime():
    """Norms near sqrt(eps) (the epsilon changes the result by more than 1e-4), below and above
    each MaxNorm and MinMaxNorm bound."""
    seen = set()
    for c in _epsilon_cases():
        m = cases.materialize(c, "float32")
        cfg = c.spec["config"]
        for name in c.meta["weight_norms"]:
            constraint = cfg[reference.weight_arguments(c.spec)[name]["constraint"]]
            n = _slice_norms(constraint, m.weights[name])
            kind, k = constraint["class_name"], constraint["config"]
            if np.any(EPS / (EPS + n) > 1e-4):
                seen.add((kind, "epsilon"))
            for bound in ("min_value", "max_value"):
                if bound in k and k[bound] > 0:
                    seen |= {(kind, bound, "below")} if np.any((n < k[bound]) & (n > 0.25 * k[bound])) else set()
                    seen |= {(kind, bound, "above")} if np.any(n > k[bound]) else set()
    assert seen >= {("UnitNorm", "epsilon"), ("MaxNorm", "epsilon"), ("MinMaxNorm", "epsilon"),
                    ("MaxNorm", "max_value", "below"), ("MaxNorm", "max_value", "above"),
                    ("MinMaxNorm", "min_value", "below"), ("MinMaxNorm", "max_value", "above")}, seen


# ------------------------------------------------------------------ mutants, through the scoring path

def _keras_form(constraint: dict, w: np.ndarray, how: str) -> np.ndarray:
    """Keras 3's constraint formula evaluated in w's own dtype (``how="keras"``), or a mutant of it."""
    t = w.dtype.type
    eps = t(EPS)
    kind, k = constraint["class_name"], constraint["config"]
    axes = norm_axes(constraint, w.ndim)
    sq = np.sum(w * w, axis=axes, keepdims=True)
    n = np.sqrt(sq)
    if kind == "UnitNorm":
        return w / (np.sqrt(sq + eps) if how == "eps_in_root" else eps + n)
    if kind == "MaxNorm":
        desired = np.clip(n, t(0), t(k["max_value"]))
        if how == "unscaled_below_bound":  # torch.renorm's rule: rescale only slices above the bound
            return np.where(n > t(k["max_value"]), w * (desired / (eps + n)), w)
    else:
        low = t(0) if how == "min_value_ignored" else t(k["min_value"])
        clipped = np.minimum(n, t(k["max_value"])) if how == "min_value_ignored" else np.clip(n, low, t(k["max_value"]))
        desired = t(k["rate"]) * clipped + (t(1) - t(k["rate"])) * n
    return w * (desired / (np.maximum(n, eps) if how == "eps_as_floor" else eps + n))


class _Constraining(ReferenceAdapter):
    """The reference, except ``constrain``: Keras's formula (or a mutant of it) in the run dtype."""

    name = "constraining"

    def __init__(self, how: str) -> None:
        self.how = how

    def constrain(self, spec: dict, weights: dict) -> dict:
        nspec = reference.normalize(spec)
        cfg = nspec["config"]
        out = {}
        for name, w in weights.items():
            arg = reference.weight_arguments(nspec).get(name)
            c = cfg.get(arg["constraint"]) if arg else None
            if c is None or c["class_name"] == "NonNeg":
                out[name] = np.maximum(w, 0) if c else np.array(w)
            else:
                out[name] = _keras_form(c, np.asarray(w), self.how)
        return out


def _constraint_verdict(adapter, case, dtype: str = "float32") -> str:
    result = check(adapter, case, cases.materialize(case, dtype), dtype)
    return result.verdicts["constraint"]


def _with(kind: str, profile: str) -> list:
    return [c for c in cases.case_set(profile) if c.kind == "valid" and any(
        (c.spec["config"].get(a["constraint"]) or {}).get("class_name") == kind
        for a in reference.weight_arguments(c.spec).values())]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_keras_formula_in_the_dtype_and_the_reference_pass_the_epsilon_cases(dtype):
    for c in _epsilon_cases():
        assert _constraint_verdict(ReferenceAdapter(), c, dtype) == "pass", c.id
        assert _constraint_verdict(_Constraining("keras"), c, dtype) == "pass", c.id


MUTANTS = {
    # w / sqrt(sum w^2 + eps): 5e-8 away from Keras's w / (eps + ||w||) at norms near 1, 40% near sqrt(eps)
    "eps_in_root": "UnitNorm",
    # w * desired / max(||w||, eps): eps / ||w|| away, 6e-4 at a norm of 1.6e-4
    "eps_as_floor": "MaxNorm",
    # slices under the bound left as they are: Keras scales them by ||w|| / (eps + ||w||)
    "unscaled_below_bound": "MaxNorm",
    # desired = rate * min(||w||, max_value) + (1 - rate) * ||w||: no slice drawn in [0.5, 1) is below 0.5
    "min_value_ignored": "MinMaxNorm",
}


@pytest.mark.parametrize("how", sorted(MUTANTS))
def test_constraint_mutants_fail_at_float32_on_the_epsilon_cases_only(how):
    kind = MUTANTS[how]
    mutant = _Constraining(how)
    caught = [c.id for c in _epsilon_cases() if c in _with(kind, "standard")
              and _constraint_verdict(mutant, c) == "fail"]
    assert caught, f"{how}: no epsilon case with a {kind} fails"
    drawn = [c for c in _with(kind, "smoke") if not c.meta][:6]
    assert drawn and all(_constraint_verdict(mutant, c) == "pass" for c in drawn), how

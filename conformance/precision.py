"""Effective precision: how many bits an implementation actually computed a case with.

A per-element bound cannot see that an implementation computes float32 cases with TF32
products (11 bits) or bfloat16 accumulation (8 bits) where a sum is short: each error stays
inside the rigorous bound. The errors of all the elements of a case together can. For an
output element ``y = sum_k t_k`` (``n`` products and the bias, total magnitude
``S = sum_k |t_k|``) computed with rounding errors ``delta`` of unit roundoff ``u'``,
independent and of mean zero (Higham & Mary's model), by recursive summation of terms of
random sign (the suite's data), the partial sums are about ``sqrt(k)|t|`` and

    E[err^2] = (u'^2 / 3) * sum_k k |t|^2 = u'^2 n^2 |t|^2 / 6,   so   RMS(err / S) = u' / sqrt(6).

Hence the estimate ``u_hat = sqrt(6) * RMS_i(|actual_i - expected_i| / S_i)`` over the
case's output elements, and ``bits = -log2(u_hat)``. Blocked, pairwise or fused summation,
wider accumulators and fewer additions all give *smaller* errors, so ``u_hat`` is at most about
the unit roundoff of the arithmetic used, and more bits than the dtype's are normal (float16
cases accumulated in float32 show about 24). An implementation is *short of precision* at a
dtype with ``p`` bits when ``bits < p - MARGIN_BITS``: TF32 products at float32 give about
``11 + log2(sqrt(3n))`` bits, bfloat16 accumulation about 9, both far below ``24 - 4``.

False alarms: an implementation computing in the dtype gives ``u_hat <= u`` under the model;
exceeding ``2**MARGIN_BITS * u = 16u`` needs an RMS error of 6.5 times the model's worst
(recursive) summation over every element of the case. Measured on the networks profile
(docs/findings/production-shapes.md): no case of a shipped adapter comes within the margin.
Cases with fewer than :data:`MIN_ELEMENTS` elements or no sums of products get no estimate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conv_conformance.oracle.materialize import round_to
from conv_conformance.oracle.tolerance import LOW_PRECISION, STRICT_ROUNDINGS, unit_roundoff

__all__ = ["MARGIN_BITS", "MIN_ELEMENTS", "BITS", "SAFE_ACTIVATIONS", "ACCUMULATION_BITS", "Precision",
           "Rounding", "effective_precision", "rounding_error", "accumulation_note", "judge"]

MARGIN_BITS = 4.0
MIN_ELEMENTS = 16
#: precision p (bits, implicit bit included) of each dtype: u = 2**-p
BITS = {"float64": 53, "float32": 24, "float16": 11, "bfloat16": 8}


@dataclass(frozen=True)
class Precision:
    """The estimate for one case: ``bits`` (inf when every element is exact) and whether it is
    more than MARGIN_BITS short of the dtype's ``dtype_bits``."""

    bits: float
    dtype_bits: int
    elements: int
    #: the error against the output's rounding (None: not measured)
    rounding: Rounding | None = None

    @property
    def short(self) -> bool:
        return self.bits < self.dtype_bits - MARGIN_BITS

    def to_json(self) -> dict:
        return {"bits": None if math.isinf(self.bits) else round(self.bits, 2), "dtype_bits": self.dtype_bits,
                "elements": self.elements, "short": self.short,
                **(self.rounding.to_json() if self.rounding is not None else {})}


def effective_precision(actual, expected, scale, dtype: str) -> Precision | None:
    """The effective precision of one output (see the module docstring), or None when the
    layer sums no products (``scale`` None), the output has fewer than MIN_ELEMENTS
    elements, or the result is not finite (scored as a failure elsewhere)."""
    if scale is None or dtype not in BITS:
        return None
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape)
    if a.shape != e.shape:
        return None
    keep = s > 0
    if np.count_nonzero(keep) < MIN_ELEMENTS or not np.all(np.isfinite(a[keep])):
        return None
    rel = np.abs(a[keep] - e[keep]) / s[keep]
    rms = float(np.sqrt(np.mean(rel * rel)))
    bits = math.inf if rms == 0 else -math.log2(math.sqrt(6.0) * rms)
    return Precision(bits=bits, dtype_bits=BITS[dtype], elements=int(np.count_nonzero(keep)),
                     rounding=rounding_error(a, e, dtype))


#: Bits lost beyond the output's rounding from which a strict-class miss at float16 or bfloat16 is
#: reported as accumulating below float32: an honest float32 accumulation rounding the result up to
#: three times to the dtype loses at most log2(sqrt(3)) = 0.8 bits (measured: the simulated honest
#: variants, tests/conformance/test_low_precision.py); accumulating n terms in the dtype loses about
#: log2(sqrt(n / 2)), 2 bits from n = 32.
ACCUMULATION_BITS = 2.0


@dataclass(frozen=True)
class Rounding:
    """A result's error against the output's own rounding: per element ``|actual - expected|`` in
    units of ``u * |expected|`` (u the dtype's unit roundoff, half an ulp relative: the correctly
    rounded result is at most 1), its median and worst, and ``bits_lost``, ``log2`` of the RMS error
    over the RMS error of the correctly rounded result (the reference rounded to the dtype): 0 for
    a correctly rounded result, 0.5 for two independent roundings, the bits an implementation
    loses beyond storing its result in the dtype (None when every expected value is a number of
    the dtype: nothing to compare with)."""

    median_u: float
    worst_u: float
    bits_lost: float | None

    def to_json(self) -> dict:
        return {"median_u": round(self.median_u, 3), "worst_u": round(self.worst_u, 3),
                "bits_lost": None if self.bits_lost is None else round(self.bits_lost, 2)}


def rounding_error(actual, expected, dtype: str) -> Rounding | None:
    """The error of one output against the output's rounding (:class:`Rounding`), or None when the
    shapes differ, a value is not finite or every expected value is 0."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape or not np.all(np.isfinite(a)):
        return None
    keep = e != 0
    if not np.any(keep):
        return None
    err = np.abs(a - e)
    units = err[keep] / (unit_roundoff(dtype) * np.abs(e[keep]))
    floor = float(np.sum((round_to(e, dtype) - e) ** 2))
    total = float(np.sum(err * err))
    if total == 0:
        lost = 0.0
    elif floor == 0:  # every expected value representable: no rounding to compare with
        lost = None
    else:
        lost = max(0.0, 0.5 * math.log2(total / floor))
    return Rounding(float(np.median(units)), float(np.max(units)), lost)


def accumulation_note(out, materialized, dtype: str, call) -> str:
    """For a float16 or bfloat16 result outside the strict class: the sentence saying it accumulates
    below float32 when its errors fit that pattern (more than ACCUMULATION_BITS lost beyond the
    output's rounding, over the whole case), else ""."""
    if dtype not in LOW_PRECISION or getattr(materialized, "output_scale", None) is None:
        return ""
    r = rounding_error(out, materialized.expected_output, dtype)
    if r is None or r.bits_lost is None or r.bits_lost < ACCUMULATION_BITS:
        return ""
    return (f"out accumulates below float32: it loses {r.bits_lost:.1f} bits beyond the output's rounding "
            f"(errors median {r.median_u:.3g}u, worst {r.worst_u:.3g}u), where products accumulated in float32 "
            f"and rounded to {dtype} at most {len(STRICT_ROUNDINGS)} times lose under 1 [{call}]")


#: activations with |f'| <= 1 (errors of z do not grow through them); others get no estimate
SAFE_ACTIVATIONS = frozenset({"linear", "relu", "relu6", "tanh", "sigmoid", "hard_sigmoid", "hard_tanh",
                              "softsign", "leaky_relu"})


def judge(result, out, materialized, dtype: str, call, messages: list[str]) -> None:
    """Record the forward's effective precision on ``result`` (a scoring.CaseResult) and, when it
    is more than MARGIN_BITS short of the dtype's, fail the output category with a message."""
    scale = getattr(materialized, "output_scale", None)
    if scale is None or result.spec.get("config", {}).get("activation", "linear") not in SAFE_ACTIVATIONS:
        return
    est = effective_precision(out, materialized.expected_output, scale, dtype)
    if est is None:
        return
    result.precision = est.to_json()
    if est.short and result.verdicts.get("output") in ("pass", "quality_warning"):
        result.verdicts["output"] = "fail"
        messages.append(f"out is computed with about {est.bits:.1f} bits of precision over its {est.elements} "
                        f"elements, {dtype} has {est.dtype_bits} (more than {MARGIN_BITS:g} bits short: "
                        f"e.g. TF32 products, about 11 bits, or bfloat16 accumulation, about 8) [{call}]")

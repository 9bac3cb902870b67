"""The adapter contract as code: loading an adapter checks it against the Protocols and names the
method that does not fit."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance.conformance import Adapter, GradientAdapter
from conv_conformance.conformance.adapters.reference import ReferenceAdapter
from conv_conformance.conformance.contract import METHODS, ContractError, check_adapter
from conv_conformance.conformance.registry import AdapterError, load_adapter


class NoForward:
    def vjp(self, spec, inputs, weights, output_grad):
        return {}


class ShortVjp(ReferenceAdapter):
    def vjp(self, spec, inputs, weights):  # output_grad missing
        return {}


class VjpNotCallable(ReferenceAdapter):
    vjp = {"inputs": np.zeros(1)}


class ForwardOnly:
    def forward(self, spec, inputs, weights):
        return inputs


class DeclinedVjp(ForwardOnly):
    vjp = None  # absent: the gradient category is unsupported, not a load error


def test_the_shipped_reference_fits_every_protocol():
    adapter = ReferenceAdapter()
    check_adapter(adapter, "reference")
    assert isinstance(adapter, Adapter) and isinstance(adapter, GradientAdapter)
    assert set(METHODS) >= {"forward", "vjp", "initialize", "regularization", "regularization_vjp", "constrain"}


@pytest.mark.parametrize("cls, method", [(NoForward, "forward"), (ShortVjp, "vjp"), (VjpNotCallable, "vjp")])
def test_a_misfit_names_the_method(cls, method):
    with pytest.raises(ContractError, match=f"`?{method}`?"):
        check_adapter(cls(), f"{__name__}:{cls.__name__}")


def test_loading_reports_the_misfit_as_an_adapter_error():
    with pytest.raises(AdapterError, match=r"method `vjp` must be callable as vjp\(spec, inputs, weights, output_grad\)"):
        load_adapter(f"{__name__}:ShortVjp")


@pytest.mark.parametrize("cls", [ForwardOnly, DeclinedVjp])
def test_optional_methods_may_be_absent(cls):
    check_adapter(cls(), cls.__name__)
    assert isinstance(cls(), Adapter) and not isinstance(cls(), GradientAdapter) or cls is DeclinedVjp

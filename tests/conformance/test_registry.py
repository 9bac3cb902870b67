"""Finding and loading adapters by entry-point name or module:attr."""
from __future__ import annotations

import numpy as np
import pytest

from conv_conformance.conformance import registry
from conv_conformance.conformance.adapters.reference import ReferenceAdapter
from conv_conformance.conformance.registry import AdapterError, AdapterNotFound, list_adapters, load_adapter, resolve
from tests.conformance.conftest import BROKEN
from tests.conformance.fixtures import broken

SHIPPED = {"reference": "conv_conformance.conformance.adapters.reference:ReferenceAdapter",
           "keras": "conv_conformance.conformance.adapters.keras:KerasAdapter",
           "tf-keras": "conv_conformance.conformance.adapters.tf_keras:TfKerasAdapter",
           "torch": "conv_conformance.conformance.adapters.torch:TorchAdapter",
           "jax": "conv_conformance.conformance.adapters.jax:JaxAdapter"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_adapters_are_registered(name):
    assert resolve(name) == SHIPPED[name]


def test_unknown_name_lists_the_registered_adapters():
    with pytest.raises(AdapterNotFound) as info:
        resolve("mylib")
    message = str(info.value)
    assert "Unknown adapter 'mylib'" in message
    listed = message.split("): ", 1)[1].split(";")[0].split(", ")
    assert listed == sorted(listed) and {"jax", "keras", "reference", "tf-keras", "torch"} <= set(listed)
    assert "module:attr" in message


def test_malformed_target_is_rejected():
    with pytest.raises(AdapterNotFound, match="not of the form 'module:attr'"):
        resolve("mylib:")


@pytest.mark.parametrize("attr, kind", [("WrongValues", broken.WrongValues),   # a class
                                        ("factory", broken.WrongValues),       # a factory
                                        ("instance", broken.WrongValues)])     # an instance
def test_load_class_factory_or_instance(attr, kind):
    adapter = load_adapter(f"{BROKEN}:{attr}")
    assert type(adapter) is kind


def test_load_by_entry_point_name():
    assert type(load_adapter("reference")) is ReferenceAdapter


def test_missing_module_names_the_import_error():
    with pytest.raises(AdapterError, match="Cannot import module 'no_such_module_xyz'.*ModuleNotFoundError"):
        load_adapter("no_such_module_xyz:Adapter")


def test_missing_attribute_lists_what_the_module_defines():
    with pytest.raises(AdapterNotFound, match="has no attribute 'Nope'.*WrongShape"):
        load_adapter(f"{BROKEN}:Nope")


def test_object_without_forward_is_rejected():
    with pytest.raises(AdapterError, match="no forward"):
        load_adapter(f"{BROKEN}:TARGET")


def test_list_adapters_reports_import_errors(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points",
                        lambda: {"reference": SHIPPED["reference"], "gone": "no_such_module_xyz:A"})
    infos = list_adapters()
    assert [i.name for i in infos] == ["gone", "reference"]
    assert "ModuleNotFoundError" in infos[0].error and infos[1].error is None
    assert infos[1].target == SHIPPED["reference"]


def test_versions_merge_adapter_versions_over_imported_frameworks():
    class Versioned:
        versions = {"mylib": "1.2"}

    found = registry.adapter_versions(Versioned())
    assert found["mylib"] == "1.2" and found["numpy"] == np.__version__
    assert registry.adapter_name(Versioned(), "fallback") == "fallback"
    assert registry.adapter_name(broken.Mutates(), "fallback") == "mutates"

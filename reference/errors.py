"""The error every rejected configuration raises, and the checks of serialized arguments."""
from __future__ import annotations

from typing import Any

__all__ = ["InvalidConfig", "serialized_object", "known_config"]


class InvalidConfig(ValueError):
    """A configuration Keras rejects.

    ``argument`` names the offending argument, ``rule`` states what is
    allowed, ``value`` is what was received.
    """

    def __init__(self, layer: str, argument: str, rule: str, value: Any):
        self.layer, self.argument, self.rule, self.value = layer, argument, rule, value
        super().__init__(f"{layer}: argument `{argument}` {rule}. Received: {argument}={value!r}")


def serialized_object(layer: str, arg: str, value: Any, kind: str) -> tuple[str, Any]:
    """``(class name as given, config)`` of a training-time argument written as a name or as
    ``{"class_name": ..., "config": {...}}`` (``kind``: "initializer", "regularizer", "constraint")."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get("class_name"), str):
        return value["class_name"], value.get("config") or {}
    raise InvalidConfig(layer, arg, f"must be null, {'an' if kind[0] in 'aeiou' else 'a'} {kind} name or "
                        "{\"class_name\": ..., \"config\": {...}}", value)


def known_config(layer: str, arg: str, cls: str, config: Any, defaults: dict, value: Any) -> dict:
    """``config`` checked to hold only keys of ``cls`` (whose defaults are ``defaults``)."""
    if not isinstance(config, dict) or set(config) - set(defaults):
        extra = sorted(set(config) - set(defaults)) if isinstance(config, dict) else config
        raise InvalidConfig(layer, arg, f"{cls} takes the config keys {list(defaults)}; unknown: {extra}", value)
    return config

"""The adapter contract as code: what an implementation provides to be scored.

An adapter is any object with a ``forward`` method (:class:`Adapter`). Each optional method
adds categories: ``vjp`` the gradient category (:class:`GradientAdapter`), ``initialize``,
``regularization`` (with ``regularization_vjp``) and ``constrain`` the training-time
categories. An optional method that is absent (or ``None``) makes its category
``unsupported``; a method that raises :class:`~conformance.Unsupported` declines one case.

Arrays arrive as NumPy arrays in the case's dtype (``ml_dtypes.bfloat16`` for bfloat16), in the
layer's ``data_format``; weights are keyed by their Keras 3 names in Keras layouts
(docs/writing-an-adapter.md lists every layer's spec and weights). Results may be any real
floating dtype and must be new arrays: an adapter may not write into what it is given.

:func:`check_adapter` checks a loaded object against these protocols and names the method
that does not fit.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

__all__ = ["Adapter", "GradientAdapter", "InitializerAdapter", "RegularizerAdapter", "ConstraintAdapter",
           "DescribedAdapter", "METHODS", "ContractError", "check_adapter"]


@runtime_checkable
class Adapter(Protocol):
    """The one required method."""

    def forward(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray]) -> np.ndarray:
        """The layer's output for ``inputs`` (batch first, in ``spec``'s data_format) with ``weights``.

        ``spec`` is ``{"class_name": ..., "config": {...}}`` in Keras's serialization format, every
        argument explicit. On a configuration Keras rejects, raise any exception (returning a
        result there fails the error-behaviour category); raise ``Unsupported`` to decline.
        """


@runtime_checkable
class GradientAdapter(Protocol):
    """The gradient category."""

    def vjp(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray],
            output_grad: np.ndarray) -> dict[str, np.ndarray]:
        """The gradient of ``sum(forward(spec, inputs, weights) * output_grad)`` with respect to
        ``"inputs"`` and to every weight, under the weights' names."""


@runtime_checkable
class InitializerAdapter(Protocol):
    """The initializer category."""

    def initialize(self, spec: dict, input_shape: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
        """The weights the layer is built with on ``input_shape``, drawn by the spec's
        initializers with ``seed``: the same seed gives the same bits, another seed other values."""


@runtime_checkable
class RegularizerAdapter(Protocol):
    """The regularizer category: ``regularization`` scores the penalties; ``regularization_vjp``,
    when present, their gradients too."""

    def regularization(self, spec: dict, inputs: np.ndarray, weights: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The penalties one call adds to the layer's losses: one per regularized weight, under its
        name, and ``"activity"`` for the activity regularizer."""

    def regularization_vjp(self, spec: dict, inputs: np.ndarray,
                           weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The gradient of the sum of those penalties with respect to ``"inputs"`` and every weight."""


@runtime_checkable
class ConstraintAdapter(Protocol):
    """The constraint category."""

    def constrain(self, spec: dict, weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The weights after the spec's constraints are applied, as an optimizer step applies them."""


class DescribedAdapter(Protocol):
    """Optional attributes a report records (each may be absent).

    ``name`` (str), ``versions`` (a dict, or a method returning one), ``environment()`` (a dict of
    facts that decide verdicts, called once per worker), ``declaration`` (what the adapter
    implements: conformance.levels.declare), ``cases_per_worker`` (int: replace the worker process
    after that many cases).
    """

    name: str


#: Every method of the contract and the positional arguments it is called with.
METHODS: dict[str, tuple[str, ...]] = {
    "forward": ("spec", "inputs", "weights"),
    "vjp": ("spec", "inputs", "weights", "output_grad"),
    "initialize": ("spec", "input_shape", "seed"),
    "regularization": ("spec", "inputs", "weights"),
    "regularization_vjp": ("spec", "inputs", "weights"),
    "constrain": ("spec", "weights"),
    "environment": (),
}


class ContractError(TypeError):
    """An adapter object does not fit the contract; the message names the method."""


def _accepts(method: Any, count: int) -> str | None:
    """Why ``method`` cannot be called with ``count`` positional arguments (None: it can, or its
    signature cannot be read, as for some builtins)."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*([None] * count))
    except TypeError as exc:
        return f"its signature {signature} does not take {count} positional arguments ({exc})"
    return None


def check_adapter(obj: Any, target: str) -> None:
    """ContractError unless ``obj`` has a callable ``forward`` and every optional method it has
    (not None) is callable with the contract's arguments."""
    for name, args in METHODS.items():
        method = getattr(obj, name, None)
        if method is None:
            if name == "forward":
                raise ContractError(f"Adapter {target!r} gave {type(obj).__name__!r}, which has no "
                                    "forward(spec, inputs, weights) method")
            continue
        wanted = f"{name}({', '.join(args)})"
        if not callable(method):
            raise ContractError(f"Adapter {target!r}: `{name}` must be a method {wanted}, "
                                f"not {type(method).__name__}")
        why = _accepts(method, len(args))
        if why is not None:
            raise ContractError(f"Adapter {target!r}: method `{name}` must be callable as {wanted}; {why}")

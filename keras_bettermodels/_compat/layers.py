"""Keras layer internals shared across the package, one function each.

Checked against Keras 3.15.1 (JAX, TensorFlow and PyTorch backends).
`tests/_compat/test_layers.py` fails loudly when one of them moves.
"""

from __future__ import annotations

from typing import Any

__all__ = ["flatten_layers"]


def flatten_layers(layer: Any, include_self: bool = True) -> list[Any]:
    """Every layer nested in `layer`, recursively, in Keras' order.

    With `include_self`, `layer` itself comes first. Models built on a
    `keras.Input` list its `InputLayer` too. Keras 3.15.1:
    `Layer._flatten_layers(include_self=..., recursive=True)` (Keras has no
    public recursive listing; `Model.layers` is one level deep).
    """
    return list(layer._flatten_layers(include_self=include_self, recursive=True))

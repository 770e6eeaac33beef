"""The layers seam: `_compat.layers.flatten_layers` still lists nested layers.

Checked against Keras 3.15.1. A failure here means Keras moved
`Layer._flatten_layers`, which the pruning wrapper lookup, the pruning report,
the gradient check's clone and the precision audit all rely on.
"""

from __future__ import annotations

import keras

from keras_bettermodels._compat.layers import flatten_layers


def _nested() -> tuple[keras.Sequential, keras.Sequential]:
    inner = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2, name="inner_dense")], name="inner"
    )
    outer = keras.Sequential(
        [keras.Input((3,)), inner, keras.layers.Dropout(0.5, name="drop")],
        name="outer",
    )
    return inner, outer


def test_flatten_layers_lists_the_model_first_and_every_nested_layer():
    inner, outer = _nested()
    layers = flatten_layers(outer)
    assert layers[0] is outer
    assert inner in layers
    assert inner.get_layer("inner_dense") in layers
    assert outer.get_layer("drop") in layers
    assert layers == flatten_layers(outer, include_self=True)


def test_flatten_layers_without_self_keeps_keras_order_and_input_layers():
    _, outer = _nested()
    layers = flatten_layers(outer, include_self=False)
    assert outer not in layers
    names = [
        layer.name for layer in layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    assert names == ["inner", "inner_dense", "drop"]
    assert any(isinstance(layer, keras.layers.InputLayer) for layer in layers)


def test_flatten_layers_of_a_plain_layer_is_itself_or_empty():
    dense = keras.layers.Dense(2)
    assert flatten_layers(dense) == [dense]
    assert flatten_layers(dense, include_self=False) == []

"""The precision seam: the Keras internals the audit uses are still there."""

from __future__ import annotations

import keras
import pytest

from keras_bettermodels._compat import precision


def test_functional_class_is_keras_functional_model():
    functional = precision.functional_model_class()
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert isinstance(model, functional)
    assert not isinstance(keras.layers.Dense(2), functional)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch backend")
def test_torch_device_kind_names_the_device_keras_uses():
    import torch

    kind = precision.torch_device_kind()
    assert kind is not None, "keras.src.backend.torch.core.get_device moved"
    assert kind == ("cuda" if torch.cuda.is_available() else "cpu")

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


def test_keras_history_and_node_inputs_trace_a_functional_graph():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    outputs = keras.layers.Dense(2, name="head")(hidden)
    operation, node_index, tensor_index = precision.keras_history(outputs)
    assert operation.name == "head" and tensor_index == 0
    assert precision.node_input_tensors(operation, node_index) == [hidden]
    assert precision.node_input_tensors(operation, node_index + 1) is None
    assert precision.keras_history(keras.ops.ones((2,))) is None


def test_raw_iterations_counts_every_step_under_gradient_accumulation():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(gradient_accumulation_steps=2)
    model.compile(optimizer, "mse")
    assert precision.raw_iterations(optimizer) == 0
    model.fit(keras.ops.ones((8, 3)), keras.ops.zeros((8, 2)), batch_size=2, verbose=0)
    # Four steps; the public `iterations` counts two (4 // 2). Were the raw
    # counter (`BaseOptimizer._iterations`) gone, this would read 2.
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 2
    assert precision.raw_iterations(optimizer) == 4

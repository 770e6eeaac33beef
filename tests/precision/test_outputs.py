"""`float32_outputs`: float32 outputs and softmax, same weights, same predictions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.precision import audit, float32_outputs
from tests.precision._models import article_model


@pytest.fixture(scope="module")
def half_softmax_model():
    """The article's model (64 units) with its softmax in float16."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield article_model(64, float32_softmax=False)
    finally:
        keras.config.set_dtype_policy(previous)


def _output_flags(model):
    return [f for f in audit(model, min_params=0) if f.code == "output-not-float32"]


def test_a_float16_softmax_model_gets_float32_outputs_and_keeps_its_weights(
    half_softmax_model,
):
    model = half_softmax_model
    assert _output_flags(model)
    fixed = float32_outputs(model)
    assert fixed is not model
    assert _output_flags(fixed) == []
    assert fixed.outputs[0].dtype == "float32"
    assert [layer.compute_dtype for layer in fixed.layers[1:]] == [
        "float16",
        "float16",
        "float32",
    ]
    for ours, theirs in zip(fixed.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    x = np.random.default_rng(0).normal(size=(8, 784)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fixed(x)),
        keras.ops.convert_to_numpy(model(x)),
        atol=2e-3,
    )


def test_the_fixed_model_is_compiled_like_the_original(half_softmax_model):
    model = half_softmax_model
    fixed = float32_outputs(model)
    assert fixed.compiled
    assert isinstance(fixed.optimizer, keras.optimizers.LossScaleOptimizer)
    assert fixed.optimizer is not model.optimizer
    assert fixed.loss == model.loss
    assert (
        fixed.get_compile_config()["metrics"] == model.get_compile_config()["metrics"]
    )


def test_a_sequential_model_stays_sequential():
    keras.config.set_dtype_policy("mixed_float16")
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(4),
            keras.layers.Softmax(),
        ]
    )
    fixed = float32_outputs(model)
    assert isinstance(fixed, keras.Sequential)
    assert [layer.compute_dtype for layer in fixed.layers] == [
        "float16",
        "float32",
        "float32",
    ]
    assert _output_flags(fixed) == []


def test_a_model_with_float32_outputs_is_returned_as_it_is():
    keras.config.set_dtype_policy("mixed_float16")
    model = article_model(32)
    assert float32_outputs(model) is model


def test_a_float16_softmax_cast_afterwards_is_moved_to_float32_alone():
    keras.config.set_dtype_policy("mixed_float16")
    inputs = keras.Input((16,))
    x = keras.layers.Dense(10, name="logits")(inputs)
    x = keras.layers.Softmax(name="softmax")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="cast")(x)
    fixed = float32_outputs(keras.Model(inputs, outputs))
    dtypes = {layer.name: layer.compute_dtype for layer in fixed.layers[1:]}
    assert dtypes == {"logits": "float16", "softmax": "float32", "cast": "float32"}
    assert _output_flags(fixed) == []


def test_a_subclassed_model_cannot_be_rebuilt():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.out = keras.layers.Dense(3)

        def build(self, input_shape):
            self.out.build(input_shape)

        def call(self, x):
            return self.out(x)

    model = Net()
    model.build((None, 4))
    with pytest.raises(ValueError, match=r'Functional or Sequential.*dtype="float32"'):
        float32_outputs(model)


def test_a_model_is_required():
    with pytest.raises(TypeError, match="Invalid type for argument `model`"):
        float32_outputs(None)

"""The float64 copy (`_clone.py`): rebuilt from the config, cached, only reading.

The user's model, its weights and its optimizer are left alone and Keras'
float settings are restored, also when the check fails; the copy is reused
and sees new weights; a model that cannot be rebuilt is told to add
`get_config()`; a loss that cannot be built symbolically is logged and built
later.
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from keras_bettermodels._compat import gradient_check as compat
from keras_bettermodels.gradient_check import _clone
from keras_bettermodels.gradient_check._clone import ModelNotRebuildableError
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check._models import batch, sequential, six_samples

BACKEND = keras.backend.backend()


# -- the user's model and Keras' settings are left alone ---------------------


def _state(model):
    from keras.src.backend.common import dtypes, global_state

    state = {
        "variables": [
            keras.ops.convert_to_numpy(v.value).copy() for v in model.variables
        ],
        "optimizer": [
            keras.ops.convert_to_numpy(v.value).copy()
            for v in model.optimizer.variables
        ],
        "trainable": [layer.trainable for layer in model._flatten_layers()],
        "loss": model.loss,
        "compiled_loss": model._compile_loss,
        "floatx": keras.config.floatx(),
        "policy": global_state.get_global_attribute("dtype_policy", None),
        "promotion": dtypes.BIT64_TO_BIT32_DTYPE["float64"],
        "losses": len(model.losses),
    }
    if BACKEND == "jax":
        import jax

        state["x64"] = jax.config.jax_enable_x64
    if BACKEND == "torch":
        import torch

        state["torch_rng"] = torch.random.get_rng_state().numpy().copy()
    return state


def _assert_same_state(before, after):
    assert before.keys() == after.keys()
    for key in before:
        if key in ("variables", "optimizer"):
            assert len(before[key]) == len(after[key])
            for old, new in zip(before[key], after[key], strict=True):
                np.testing.assert_array_equal(old, new)
        elif key == "torch_rng":
            np.testing.assert_array_equal(before[key], after[key])
        else:
            assert before[key] is after[key] or before[key] == after[key], key


def test_the_model_its_weights_and_its_optimizer_are_left_alone():
    keras.utils.set_random_seed(7)
    x, y = batch()
    model = sequential(
        keras.layers.Dense(4, kernel_regularizer="l2"),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("tanh"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(1),
    )
    model.fit(x, y, epochs=1, verbose=0)  # optimizer and batch-norm state
    before = _state(model)
    check_gradients(model, x, y)
    check_gradients(model, x, y, seed=3, method="coordinate", verbose=0)
    _assert_same_state(before, _state(model))


def test_settings_are_restored_when_the_check_fails():
    model = sequential(keras.layers.Dense(1))
    x, _ = batch()
    before = _state(model)
    with pytest.raises(ValueError, match="argument `y`"):
        check_gradients(model, x, np.zeros((12, 3, 2), "float32"))
    _assert_same_state(before, _state(model))


def test_float64_scope_sets_float64_and_puts_the_settings_back_after_an_error():
    before = (keras.config.floatx(), compat.raw_dtype_policy())
    with pytest.raises(RuntimeError, match="planted"), _clone.float64_scope():
        assert keras.config.floatx() == "float64"
        assert keras.config.dtype_policy().name == "float64"
        assert keras.distribution.distribution() is None
        raise RuntimeError("planted")
    assert (keras.config.floatx(), compat.raw_dtype_policy()) == before


# -- the copy ----------------------------------------------------------------


def test_a_second_check_reuses_the_float64_copy_and_sees_new_weights():
    x, y = batch()
    model = sequential(keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1))
    first = check_gradients(model, x, y, seed=0)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    second = check_gradients(model, x, y, seed=0)
    assert second.loss != first.loss
    expected = float(
        keras.losses.MeanSquaredError()(y, keras.ops.convert_to_numpy(model(x)))
    )
    assert second.loss == pytest.approx(expected, rel=1e-5)


class NotRebuildable(keras.Model):
    """Takes a function in `__init__` and has no `get_config`."""

    def __init__(self, activation_fn):
        super().__init__()
        self.activation_fn = activation_fn
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.activation_fn(self.dense(inputs))


class ForgetsItsWidth(keras.Model):
    """Its automatic config forgets `units`, so it comes back narrower."""

    def __init__(self, units=3):
        super().__init__()
        self.dense = keras.layers.Dense(units)

    def call(self, inputs):
        return self.dense(inputs)


@pytest.mark.parametrize(
    "build",
    [lambda: NotRebuildable(keras.ops.tanh), lambda: ForgetsItsWidth(units=5)],
    ids=["no_config", "config_builds_another_model"],
)
def test_a_model_that_cannot_be_rebuilt_is_told_to_add_get_config(build):
    model = build()
    model.compile(loss="mse")
    x, y = batch()
    model(x)
    if isinstance(model, ForgetsItsWidth):
        model.get_config = lambda: {"units": 3}  # what a careless get_config says
        y = np.zeros((12, 5), "float32")
    with pytest.raises(ModelNotRebuildableError, match=r"get_config\(\)"):
        check_gradients(model, x, y)
    assert issubclass(ModelNotRebuildableError, ValueError)


def test_a_failed_symbolic_build_is_logged_and_the_loss_built_later(
    caplog, monkeypatch
):
    def fail(model, data_batch):
        raise RuntimeError("planted: no symbolic build")

    monkeypatch.setattr(compat, "symbolic_build", fail)
    _clone._cache.clear()
    x, y = six_samples()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(loss="mse", metrics=["mae"])
    with caplog.at_level(logging.DEBUG, "keras_bettermodels.gradient_check"):
        report = check_gradients(model, x, y, seed=0, verbose=0)
    assert report.passed, report
    assert "planted: no symbolic build" in caplog.text

"""A gradient check leaves the global random generators where it found them (`_rng.py`).

Under `keras.utils.set_random_seed(0)`, a model built after a check (or a
GradientCheckCallback's check) gets the same initial weights as one built
without it, and Python's, NumPy's, Keras' and torch's generators are back
where they were.
"""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest

from keras_bettermodels._compat import gradient_check as compat
from keras_bettermodels.callbacks.gradient_check import GradientCheckCallback
from keras_bettermodels.gradient_check._rng import global_generators_kept
from keras_bettermodels.gradient_check.check import check_gradients

BACKEND = keras.backend.backend()


def _model():
    # An unseeded Dropout: rebuilding it draws a seed from Python's `random`.
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(5, activation="tanh"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="sgd", loss="mse")
    return model


def _data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(6, 4)), rng.normal(size=(6, 1))


def _weights_of_next_model(check):
    keras.utils.set_random_seed(0)
    first = _model()
    # Keras' global generator in use, as unseeded `keras.random` calls leave it.
    keras.random.uniform((2,))
    check(first)
    return [keras.ops.convert_to_numpy(w) for w in _model().weights]


def _generators():
    states = [random.getstate(), np.random.get_state()[1].tolist()]
    generator = compat.global_seed_generator()
    states.append(keras.ops.convert_to_numpy(generator.state.value).tolist())
    if BACKEND == "torch":
        import torch

        states.append(torch.get_rng_state().tolist())
    return states


def _direct_check(model):
    x, y = _data()
    check_gradients(model, x, y, verbose=0)


def _callback_check(model):
    x, y = _data()
    callback = GradientCheckCallback(x, y, verbose=0)
    callback.set_model(model)
    callback.on_train_begin()
    assert callback.reports


@pytest.mark.parametrize("check", [_direct_check, _callback_check])
def test_a_model_built_after_a_check_gets_the_same_weights(check):
    without = _weights_of_next_model(lambda model: None)
    with_check = _weights_of_next_model(check)
    for expected, got in zip(without, with_check, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_every_global_generator_is_where_it_was():
    keras.utils.set_random_seed(0)
    model = _model()
    keras.random.uniform((2,))
    before = _generators()
    _direct_check(model)
    assert _generators() == before


def test_the_generators_are_restored_when_the_check_raises():
    keras.utils.set_random_seed(0)
    model = _model()
    keras.random.uniform((2,))
    before = _generators()
    x, _ = _data()
    with pytest.raises(ValueError, match="`y`"):
        check_gradients(model, x, np.zeros((6, 3, 7)), verbose=0)
    assert _generators() == before


def test_the_context_puts_every_generator_back_when_its_block_raises():
    keras.utils.set_random_seed(0)
    keras.random.uniform((2,))
    before = _generators()
    with pytest.raises(RuntimeError, match="planted"), global_generators_kept():
        random.random()
        np.random.random()
        keras.random.uniform((2,))
        if BACKEND == "torch":
            import torch

            torch.rand(1)
        raise RuntimeError("planted")
    assert _generators() == before


def test_a_global_seed_generator_first_made_inside_the_context_is_dropped():
    keras.utils.set_random_seed(3)
    assert compat.global_seed_generator() is None
    with global_generators_kept():
        keras.random.uniform((1,))
        assert compat.global_seed_generator() is not None
    assert compat.global_seed_generator() is None

"""The pruning seam: every Keras internal `_compat.pruning` relies on is still there."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels._compat import pruning as compat


def _sequential() -> keras.Sequential:
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)], name="inner")


def test_is_functional_tells_graph_models_from_subclassed_ones():
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert compat.is_functional(_sequential())
    assert compat.is_functional(functional)
    assert not compat.is_functional(Subclassed())
    assert not compat.is_functional(keras.layers.Dense(2))


def test_current_stateless_scope_is_the_active_one_or_none():
    assert compat.current_stateless_scope() is None
    with keras.StatelessScope() as scope:
        assert compat.current_stateless_scope() is scope
    assert compat.current_stateless_scope() is None


def test_autocast_disabled_reads_a_variable_in_its_own_dtype():
    from keras.src.backend.common.variables import AutocastScope

    variable = keras.Variable(np.ones((2,), "float32"))
    with AutocastScope("float16"):
        assert keras.backend.standardize_dtype(variable.value.dtype) == "float16"
        with compat.autocast_disabled():
            assert keras.backend.standardize_dtype(variable.value.dtype) == "float32"


_FOUND: list = []


class _Probe(keras.layers.Layer):
    """Looks for the training frame while the training step runs (or is traced)."""

    def call(self, x, training=None):
        if training:
            _FOUND.append(compat.find_training_frame())
        return x


@pytest.mark.parametrize("method", compat.TRAINING_METHODS)
def test_find_training_frame_finds_the_model_and_the_trainer_state(method):
    found = _FOUND
    found.clear()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), _Probe()])
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    if method == "fit":
        model.fit(x, y, verbose=0)
    else:
        model.train_on_batch(x, y)
    assert found, "the training step never ran"
    frame_model, state = found[0]
    assert frame_model is model
    if keras.backend.backend() == "jax":
        # The JAX trainer's detached variable values, in JAX_STATE_KEYS order.
        assert len(state) == len(compat.JAX_STATE_KEYS)
        assert len(state[0]) == len(model.trainable_variables)
    assert compat.find_training_frame() is None


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX trainer only")
def test_set_jax_trainer_state_writes_the_values_back_into_the_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    state = (
        [v.value + 1.0 for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    expected = [np.asarray(v) for v in state[0]]
    compat.set_jax_trainer_state(model, state)
    for variable, value in zip(model.trainable_variables, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(variable.value), value)


def test_train_function_is_fits_compiled_step_and_none_rebuilds_it():
    model = _sequential()
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    assert compat.train_function(model) is None
    model.fit(x, y, verbose=0)
    built = compat.train_function(model)
    assert built is not None and callable(built)

    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        return built(*args, **kwargs)

    # `fit` calls the function it finds there (the pruning guard relies on it).
    compat.set_train_function(model, wrapped)
    model.fit(x, y, verbose=0)
    assert calls and compat.train_function(model) is wrapped

    # `None` makes the next `fit` build a new one.
    compat.set_train_function(model, None)
    assert compat.train_function(model) is None
    model.fit(x, y, verbose=0)
    rebuilt = compat.train_function(model)
    assert rebuilt is not None and rebuilt is not built and rebuilt is not wrapped


@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`")
def test_input_shape_argument_is_what_sequential_builds_its_input_from():
    assert compat.input_shape_argument(keras.layers.Dense(2)) is None
    assert compat.input_shape_argument(keras.layers.Dense(2, input_shape=[4])) == (4,)
    assert compat.input_shape_argument(keras.layers.Dense(2, input_dim=3)) == (3,)
    flatten = keras.layers.Flatten()
    compat.set_input_shape_argument(flatten, (2, 3))
    assert compat.input_shape_argument(flatten) == (2, 3)
    model = keras.Sequential([flatten, keras.layers.Dense(1)])
    assert model.built and tuple(model.input_shape) == (None, 2, 3)

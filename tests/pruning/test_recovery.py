"""A refused training step costs nothing: the model keeps its weights and trains on.

`PruneLowMagnitude` refuses `fit` without `UpdatePruningMasks`; `recovery`
gives the JAX trainer's detached state back and drops the spoilt compiled step.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import UpdatePruningMasks
from keras_bettermodels.pruning.recovery import (
    reattach_jax_state,
)
from tests.pruning._helpers import (
    MISSING_CALLBACK_MATCH,
    data,
    pruned_model,
    pruning_step_of,
)


def _weights(model) -> list[np.ndarray]:
    return [np.array(w, copy=True) for w in model.get_weights()]


def test_fit_without_the_callback_says_to_add_it_and_keeps_the_weights():
    keras.utils.set_random_seed(0)
    x, y = data()
    model = pruned_model()
    before = _weights(model)
    with pytest.raises(RuntimeError, match=MISSING_CALLBACK_MATCH):
        model.fit(x, y, batch_size=16, verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    # The model trains normally once the callback is added.
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()])
    assert pruning_step_of(model) == 4


def test_a_later_fit_without_the_callback_is_refused_too_and_loses_nothing():
    keras.utils.set_random_seed(1)
    x, y = data()
    model = pruned_model()
    model.fit(x, y, batch_size=16, verbose=0, callbacks=[UpdatePruningMasks()])
    trained = _weights(model)
    with pytest.raises(RuntimeError, match=MISSING_CALLBACK_MATCH):
        model.fit(x, y, batch_size=16, verbose=0)
    for a, b in zip(trained, model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    with pytest.raises(RuntimeError, match=MISSING_CALLBACK_MATCH):
        model.train_on_batch(x[:16], y[:16])


def test_a_state_that_does_not_match_the_model_is_not_reattached():
    model = pruned_model()
    model.build((None, 8))
    before = _weights(model)
    assert reattach_jax_state(model, None) is False
    assert reattach_jax_state(model, ([], [])) is False  # two of the four parts
    assert reattach_jax_state(model, ([], [], [], [])) is False  # no values
    for a, b in zip(before, model.get_weights(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="the JAX trainer only")
def test_the_trainer_s_state_is_written_back_into_the_model():
    model = pruned_model()
    model.optimizer.build(model.trainable_variables)
    state = (
        [np.full(v.shape, 0.5, v.dtype) for v in model.trainable_variables],
        [keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables],
        [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables],
        [keras.ops.convert_to_numpy(v) for v in model.metrics_variables],
    )
    assert reattach_jax_state(model, state) is True
    assert all(
        np.all(keras.ops.convert_to_numpy(v) == 0.5) for v in model.trainable_variables
    )

"""J and ∇J of the float64 copy (`_autodiff.py`): what J counts, once each.

J is what `fit` minimises: the compiled loss, the weight regularizers and
`add_loss` penalties, through the model's own `compute_loss`, with the sample
weights; random layers draw the same masks at every evaluation.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted
from tests.gradient_check._models import SmoothOutputModel, batch, sequential


@keras.saving.register_keras_serializable(package=planted.PACKAGE)
class ActivityPenalty(keras.layers.Layer):
    def call(self, inputs):
        self.add_loss(0.5 * keras.ops.mean(keras.ops.square(inputs)))
        return inputs


def test_j_counts_the_compiled_loss_regularizers_and_add_loss_once_each():
    x, y = batch()
    keras.utils.set_random_seed(2)
    model = sequential(
        keras.layers.Dense(4, activation="tanh", kernel_regularizer="l2"),
        ActivityPenalty(),
        keras.layers.Dense(
            1, bias_initializer="ones", bias_regularizer=keras.regularizers.L1(0.3)
        ),
    )
    report = check_gradients(model, x, y, seed=0)
    prediction = keras.ops.convert_to_numpy(model(x))
    # Both regularizers and the add_loss penalty.
    penalties = [float(keras.ops.convert_to_numpy(p)) for p in model.losses]
    assert len(penalties) == 3 and min(penalties) > 1e-3
    expected = float(keras.losses.MeanSquaredError()(y, prediction)) + sum(penalties)
    assert report.loss == pytest.approx(expected, rel=1e-5)
    assert report.verdict == "great", report


def test_a_subclassed_model_with_its_own_compute_loss():
    x, y = batch()
    keras.utils.set_random_seed(3)
    model = SmoothOutputModel(units=3)
    model.compile(loss="mse")
    prediction = keras.ops.convert_to_numpy(model(x))
    report = check_gradients(model, x, y, seed=0)
    assert report.verdict == "great", report
    expected = float(keras.losses.MeanSquaredError()(y, prediction)) + 0.25 * float(
        np.mean(np.square(keras.ops.convert_to_numpy(prediction)))
    )
    assert report.loss == pytest.approx(expected, rel=1e-5)
    assert [v.shape for v in report.variables] == [(5, 3), (3,), (3, 1), (1,)]


def test_sample_weights_enter_the_loss(correct_models):
    model, x, y, sample_weight = correct_models["two_inputs_two_outputs"]
    weighted = check_gradients(model, x, y, sample_weight=sample_weight, seed=0)
    plain = check_gradients(model, x, y, seed=0)
    assert weighted.passed and plain.passed
    assert weighted.loss != pytest.approx(plain.loss, rel=1e-3)


def test_unseeded_dropout_is_pinned_on_every_backend():
    keras.utils.set_random_seed(4)
    x, y = batch()
    model = sequential(
        keras.layers.Dense(8, activation="tanh"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1),
    )
    report = check_gradients(model, x, y)
    assert report.verdict == "great", report

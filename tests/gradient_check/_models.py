"""Batches, models and helpers the gradient check's tests share."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.gradient_check import planted


def batch(samples=12, features=5, seed=0):
    """A regression batch `(x, y)` of float32 normal numbers."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    y = rng.normal(size=(samples, 1)).astype("float32")
    return x, y


def six_samples():
    """A float64 batch `(x, y)`: six samples of three features, one target."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), rng.normal(size=(6, 1))


def sequential(*layers, features=5, loss="mse"):
    """A Sequential model named "m" of `layers`, compiled with `loss`."""
    model = keras.Sequential([keras.Input((features,)), *layers], name="m")
    model.compile(optimizer="adam", loss=loss)
    return model


#: The fields of a bad call's case after its id: what `call_cases` gives.
CALL_CASE_FIELDS = ("build", "data", "kwargs", "error", "match")


def call_cases(cases):
    """`(id, build, data, kwargs, error, match)` cases as `pytest.param`s."""
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


def verdicts_of(report):
    """Variable name -> verdict, of a report."""
    return {v.name: v.verdict for v in report.variables}


@keras.saving.register_keras_serializable(package=planted.PACKAGE)
class SmoothOutputModel(keras.Model):
    """A subclassed model that adds a term of its own in `compute_loss`."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="tanh")
        self.out = keras.layers.Dense(1)

    def call(self, inputs):
        return self.out(self.hidden(inputs))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        return loss + 0.25 * keras.ops.mean(keras.ops.square(y_pred))

    def get_config(self):
        return {**super().get_config(), "units": self.units}

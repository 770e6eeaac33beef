"""What the gradient check swallows, it logs (and only where it can go on).

Each case plants the failure itself: a `get_build_config` that raises, a
symbolic build of the copy's loss that raises.
"""

from __future__ import annotations

import logging

import keras
import numpy as np

from keras_bettermodels._compat import gradient_check as compat
from keras_bettermodels.gradient_check import _clone
from keras_bettermodels.gradient_check.check import check_gradients
from tests.gradient_check import planted


@keras.saving.register_keras_serializable(package=planted.PACKAGE)
class UnreadableBuildConfig(keras.Model):
    """A subclassed model whose build config cannot be read the first time."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.failures = 1

    def call(self, inputs):
        return self.dense(inputs)

    def get_build_config(self):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("planted: no build config")
        return super().get_build_config()


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 3)), rng.normal(size=(6, 1))


def test_an_unreadable_build_config_is_logged_and_the_check_goes_on(caplog):
    x, y = _data()
    model = UnreadableBuildConfig()
    model.compile(loss="mse")
    model(x)
    with caplog.at_level(logging.DEBUG, "keras_bettermodels.gradient_check"):
        report = check_gradients(model, x, y, seed=0, verbose=0)
    assert report.passed, report
    assert model.failures == 0
    assert "planted: no build config" in caplog.text
    assert "RuntimeError" in caplog.text


def test_a_failed_symbolic_build_is_logged_and_the_loss_built_later(
    caplog, monkeypatch
):
    def fail(model, data_batch):
        raise RuntimeError("planted: no symbolic build")

    monkeypatch.setattr(compat, "symbolic_build", fail)
    _clone._cache.clear()
    x, y = _data()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(loss="mse", metrics=["mae"])
    with caplog.at_level(logging.DEBUG, "keras_bettermodels.gradient_check"):
        report = check_gradients(model, x, y, seed=0, verbose=0)
    assert report.passed, report
    assert "planted: no symbolic build" in caplog.text

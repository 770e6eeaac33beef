"""A disk that fills mid-fit under a callback's `log_dir` (issue 26, row 3).

Every callback with a `log_dir` writes through
`keras_bettermodels.tensorboard.summary`. The disk under it fills at the start
of epoch `FILL_AT` (`tests._disk.FillingDisk`: the event file's writes raise
`OSError(ENOSPC)` from then on). Each test asserts that the failed write warns
once, naming the file and the error; that nothing more is tried there; that
`EarlyStopping(restore_best_weights=True)` still stops and restores the best
epoch's weights; and that `fit` returns its History.
"""

from __future__ import annotations

import errno
import math
import warnings

import keras
import numpy as np
import pytest

from keras_bettermodels.callbacks import (
    CacheTimingCallback,
    EarlyStopping,
    GradientCheckCallback,
    MixedPrecisionGuard,
    PruningSummaries,
    UpdatePruningMasks,
)
from keras_bettermodels.criteria import GL
from keras_bettermodels.layers import PruneLowMagnitude
from keras_bettermodels.pruning.schedules import ConstantSparsity
from keras_bettermodels.tensorboard import summary
from tests._disk import NO_SPACE, FillingDisk

FILL_AT = 3
# The monitored value, scripted: the best epoch is 1; GL(50) fires at epoch 4
# (0.8 is 60 % over 0.5), and so does Keras' patience=3.
SCRIPT = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
BEST, STOP = 1, 4
MONITOR = "scripted_loss"


class _Script(keras.callbacks.Callback):
    """Logs `SCRIPT[epoch]` as `MONITOR`, for the callbacks after it."""

    def on_epoch_end(self, epoch, logs=None):
        logs[MONITOR] = SCRIPT[epoch]


class _FillDisk(keras.callbacks.Callback):
    def __init__(self, disk, log_dir):
        super().__init__()
        self.disk, self.log_dir = disk, log_dir

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == FILL_AT:
            self.disk.fill(self.log_dir)


class _Record(keras.callbacks.Callback):
    """Keeps every epoch's weights (host copies: the test's reference)."""

    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w, copy=True) for w in self.model.get_weights()])


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _model(optimizer=None, *, pruned=False):
    keras.utils.set_random_seed(0)
    first = keras.layers.Dense(8, activation="tanh", name="first")
    if pruned:
        first = PruneLowMagnitude(first, schedule=ConstantSparsity(0.5, 0, frequency=2))
    model = keras.Sequential(
        [keras.Input((4,)), first, keras.layers.Dense(2, name="head")], name="full"
    )
    model.compile(
        optimizer or keras.optimizers.SGD(0.05),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _stopper(**arguments):
    return EarlyStopping(
        monitor=MONITOR, mode="min", restore_best_weights=True, **arguments
    )


def _writers(log_dir, x, y):
    """name -> (the callbacks around the writer, the stopper, model options)."""
    patience = _stopper(patience=3)
    return {
        "EarlyStopping": (
            [_stopper(criterion=GL(50), log_dir=log_dir)],
            None,
            {},
        ),
        "MixedPrecisionGuard": (
            [MixedPrecisionGuard(verbose=0, log_dir=log_dir), patience],
            patience,
            # A LossScaleOptimizer: the guard writes the scale every epoch.
            {
                "optimizer": keras.optimizers.LossScaleOptimizer(
                    keras.optimizers.SGD(0.05)
                )
            },
        ),
        "GradientCheckCallback": (
            [
                GradientCheckCallback(
                    x[:4],
                    y[:4],
                    every_n_epochs=1,
                    verbose=0,
                    log_dir=log_dir,
                    on_failure="warn",
                ),
                patience,
            ],
            patience,
            {},
        ),
        "CacheTimingCallback": (
            [CacheTimingCallback(verbose=0, log_dir=log_dir), patience],
            patience,
            {},
        ),
        "PruningSummaries": (
            [UpdatePruningMasks(), PruningSummaries(log_dir), patience],
            patience,
            {"pruned": True},
        ),
    }


def _fit_on_a_filling_disk(monkeypatch, tmp_path, writer):
    disk = FillingDisk(monkeypatch)
    log_dir = str(tmp_path / "logs")
    x, y = _data()
    callbacks, stopper, options = _writers(log_dir, x, y)[writer]
    stopper = stopper or callbacks[0]
    model = _model(**options)
    record = _Record()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x,
            y,
            batch_size=8,
            epochs=len(SCRIPT),
            verbose=0,
            callbacks=[_FillDisk(disk, log_dir), _Script(), record, *callbacks],
        )
    ours = [w for w in caught if "Writing TensorBoard logs to" in str(w.message)]
    return model, history, stopper, record.weights, ours, disk, log_dir


WRITERS = [
    "EarlyStopping",
    "MixedPrecisionGuard",
    "GradientCheckCallback",
    "CacheTimingCallback",
    "PruningSummaries",
]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_disk_warns_once_and_the_fit_stops_and_restores_as_usual(
    monkeypatch, tmp_path, writer
):
    model, history, stopper, weights, warned, disk, log_dir = _fit_on_a_filling_disk(
        monkeypatch, tmp_path, writer
    )
    # fit returned its History, stopped where the rule says, after the fill.
    assert isinstance(history, keras.callbacks.History)
    assert history.epoch == list(range(STOP + 1))
    assert stopper.stopped_epoch == STOP and stopper.best_epoch == BEST
    # The best epoch's weights are back (not the last epoch's).
    for got, kept in zip(model.get_weights(), weights[BEST], strict=True):
        np.testing.assert_array_equal(got, kept)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(weights[BEST], weights[STOP], strict=True)
    )
    # One warning, naming the event file and the error; nothing more tried.
    (warning,) = warned
    (event_file,) = disk.attempts
    assert event_file.startswith(log_dir)
    assert event_file in str(warning.message)
    assert f"[Errno {errno.ENOSPC}] {NO_SPACE}" in str(warning.message)
    assert issubclass(warning.category, RuntimeWarning)
    assert disk.attempts[event_file] == 1


def test_the_guard_still_rescues_a_nonfinite_epoch_after_the_disk_filled(
    monkeypatch, tmp_path
):
    class _Poison(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == STOP:
                kernel = self.model.get_layer("first").kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    disk = FillingDisk(monkeypatch)
    log_dir = str(tmp_path / "logs")
    x, y = _data()
    model = _model(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.05)))
    guard = MixedPrecisionGuard(verbose=0, log_dir=log_dir)
    record = _Record()
    with pytest.warns(RuntimeWarning, match="Writing TensorBoard logs to") as caught:
        history = model.fit(
            x,
            y,
            batch_size=8,
            epochs=len(SCRIPT),
            verbose=0,
            callbacks=[_FillDisk(disk, log_dir), guard, _Poison(), record],
        )
    assert len([w for w in caught if "TensorBoard logs" in str(w.message)]) == 1
    assert history.epoch == list(range(STOP + 1))
    assert math.isnan(history.history["loss"][STOP])
    assert (guard.nonfinite_epoch, guard.restored_epoch) == (STOP, STOP - 1)
    for got, kept in zip(model.get_weights(), record.weights[STOP - 1], strict=True):
        np.testing.assert_array_equal(got, kept)
    assert sum(disk.attempts.values()) == 1


@pytest.fixture(autouse=True)
def _close_event_files():
    yield
    summary.close_all()

"""The callbacks seam: Keras' mode inference is where `_compat.callbacks` calls it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_bettermodels._compat import callbacks


def _compiled() -> keras.Model:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse", metrics=["mae", keras.metrics.F1Score()])
    return model


@pytest.mark.parametrize(
    ("monitor", "mode", "op", "min_delta"),
    [
        ("val_loss", "auto", keras.ops.less, -0.1),
        ("loss", "auto", keras.ops.less, -0.1),
        ("val_accuracy", "max", keras.ops.greater, 0.1),
        ("anything", "min", keras.ops.less, -0.1),
    ],
)
def test_set_monitor_op_sets_keras_op_and_min_delta_sign(monitor, mode, op, min_delta):
    callback = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, min_delta=0.1)
    callback.set_model(_compiled())
    callbacks.set_monitor_op(callback)
    assert callback.monitor_op is op
    assert callback.min_delta == pytest.approx(min_delta)


def test_set_monitor_op_reads_the_compiled_metrics_direction():
    model = _compiled()
    model.fit(keras.ops.ones((4, 3)), keras.ops.ones((4, 2)), verbose=0)
    callback = keras.callbacks.EarlyStopping(monitor="val_f1_score")
    callback.set_model(model)
    callbacks.set_monitor_op(callback)
    assert callback.monitor_op is keras.ops.greater


def test_set_monitor_op_raises_keras_error_for_an_unknown_direction():
    callback = keras.callbacks.EarlyStopping(monitor="val_los")
    callback.set_model(_compiled())
    with pytest.raises(ValueError, match="isn't able to automatically determine"):
        callbacks.set_monitor_op(callback)


def test_bare_model_is_the_set_model_read_without_a_sync(monkeypatch):
    callback = keras.callbacks.Callback()
    assert callbacks.bare_model(callback) is None
    model = _compiled()
    callback.set_model(model)
    syncs = []
    monkeypatch.setattr(model, "jax_state_sync", lambda: syncs.append(1), raising=False)
    assert callbacks.bare_model(callback) is model
    assert syncs == []
    assert callback.model is model
    # `Callback.model` syncs on JAX: the reason callbacks read the bare model.
    assert len(syncs) == (1 if keras.backend.backend() == "jax" else 0)


class _Spy(keras.callbacks.Callback):
    """Records what `fit_callbacks` finds from inside a hook."""

    def on_train_begin(self, logs=None):
        self.found = callbacks.fit_callbacks(self)


def test_fit_callbacks_finds_the_other_callbacks_of_the_fit(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    spy, backup = _Spy(), keras.callbacks.BackupAndRestore(str(tmp_path))
    x = np.zeros((4, 3), "float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0, callbacks=[backup, spy])
    assert any(c is backup for c in spy.found) and any(c is spy for c in spy.found)


def test_fit_callbacks_outside_a_fit_is_empty():
    assert callbacks.fit_callbacks(_Spy()) == []


def _state(best_epoch):
    return {"states": [{"best_epoch": best_epoch}], "best_weights": None}


def test_state_backup_keeps_the_last_two_epochs_and_the_best_weights(tmp_path):
    backup = callbacks.StateBackup(str(tmp_path / "backup"))
    weights = [np.arange(3.0), np.ones((2, 2))]
    backup.save(0, {**_state(0), "best_weights": weights})
    backup.save(1, _state(0))
    backup.save(2, _state(0))
    assert backup.load(1) is None  # only the states for epochs 2 and 3 are kept
    loaded = backup.load(3)
    assert loaded["states"] == [{"best_epoch": 0}]
    for got, kept in zip(loaded["best_weights"], weights, strict=True):
        np.testing.assert_array_equal(got, kept)
    backup.save(3, {**_state(3), "best_weights": [np.zeros(3)]})
    backup.save(4, _state(3))
    files = sorted(p.name for p in (tmp_path / "backup").iterdir())
    assert files == [
        "keras_bettermodels_best_3.npz",
        "keras_bettermodels_early_stopping.json",
    ]  # the weights of best epoch 0 went with the states that named them

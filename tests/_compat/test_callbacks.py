"""The callbacks seam: Keras' mode inference is where `_compat.callbacks` calls it."""

from __future__ import annotations

import keras
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

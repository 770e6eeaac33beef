"""Keras' callback internals that EarlyStopping relies on (checked: Keras 3.15.1)."""

from __future__ import annotations

from typing import Any


def set_monitor_op(callback: Any) -> None:
    """Runs Keras' own mode inference on a `keras.callbacks.MonitorCallback`.

    Sets `callback.monitor_op` to `keras.ops.less` or `keras.ops.greater` (from
    `mode`, or in `"auto"` mode from the metric's name and the model's compiled
    metrics' direction) and, in min mode, flips the sign of `callback.min_delta`,
    exactly as Keras' `EarlyStopping` does at its first epoch end. Raises Keras'
    `ValueError` when `"auto"` cannot tell the direction (`monitor="val_los"`).
    """
    from keras.src.callbacks.monitor_callback import MonitorCallback

    MonitorCallback._set_monitor_op(callback)


def bare_model(callback: Any) -> Any:
    """The model set on a `keras.callbacks.Callback`, without syncing it; or `None`.

    On JAX, `Callback.model` calls `model.jax_state_sync()` (copying the
    trainer's state back into the model) before returning it; this reads the
    attribute it wraps. Keras 3.15.1: `Callback._model`, set by `set_model`.
    """
    return getattr(callback, "_model", None)

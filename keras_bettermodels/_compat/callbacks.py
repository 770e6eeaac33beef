"""Keras' callback internals that EarlyStopping relies on (checked: Keras 3.15.1)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

_STATE_FILE = "keras_bettermodels_early_stopping.json"


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


def fit_callbacks(callback: Any) -> list[Any]:
    """The callbacks of the `fit` whose hook is running `callback`'s; or `[]`.

    Keras gives a callback no handle on the others of its `fit`: this walks up
    the stack to the `keras.callbacks.CallbackList` calling the hook (in
    `fit`, `evaluate` or `predict`) and returns its callbacks, `callback`
    among them. Call it from a hook (`on_train_begin`). Keras 3.15.1:
    `CallbackList.on_train_begin` loops over `self.callbacks`.
    """
    import sys

    import keras

    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(
            c is callback for c in owner.callbacks
        ):
            return list(owner.callbacks)
        frame = frame.f_back  # type: ignore[assignment]
    return []


class StateBackup:
    """The callback's state beside a `keras.callbacks.BackupAndRestore` backup.

    Keras' backup holds the weights and the epoch a resumed `fit` starts at.
    Beside it, in `backup_dir`: a JSON file with the callback's state after the
    last two epochs, keyed by the epoch a resumed fit then starts at (two, in
    case `fit` stops between Keras' save and ours, or Keras saves by batches),
    and the best weights as `.npz`. Keras deletes the folder at the end.
    Keras 3.15.1: `backup_dir` holds `latest.weights.h5` and
    `training_metadata.json` (`{"epoch": the epoch to resume at, "batch": ...}`);
    `on_train_end` removes the folder when `delete_checkpoint`.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory

    @classmethod
    def find(cls, callback: Any) -> StateBackup | None:
        """One beside the `BackupAndRestore` of `callback`'s `fit`, if any."""
        import keras

        for other in fit_callbacks(callback):
            if isinstance(other, keras.callbacks.BackupAndRestore):
                return cls(str(other.backup_dir))
        return None

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _read(self) -> dict[str, Any]:
        try:
            with open(self._path(_STATE_FILE)) as file:
                saved = json.load(file)
        except FileNotFoundError:
            return {}
        return saved if isinstance(saved, dict) else {}

    def save(self, epoch: int, state: dict[str, Any]) -> None:
        os.makedirs(self.directory, exist_ok=True)
        weights = state.pop("best_weights")
        name = f"keras_bettermodels_best_{state['states'][0]['best_epoch']}.npz"
        if weights is not None:
            np.savez(self._path(name), *weights)
        if os.path.exists(self._path(name)):
            state["best_weights_file"] = name
        saved = self._read()
        saved[str(epoch + 1)] = state
        saved = {k: saved[k] for k in sorted(saved, key=int)[-2:]}
        temporary = self._path(_STATE_FILE + ".tmp")
        with open(temporary, "w") as file:
            json.dump(saved, file)
        os.replace(temporary, self._path(_STATE_FILE))
        kept = {s.get("best_weights_file") for s in saved.values()}
        for other in os.listdir(self.directory):
            if other.startswith("keras_bettermodels_best_") and other not in kept:
                os.remove(self._path(other))

    def load(self, epoch: int) -> dict[str, Any] | None:
        """The state after the epoch before `epoch`, where a resumed fit starts."""
        state = self._read().get(str(epoch))
        if state is None:
            return None
        name = state.pop("best_weights_file", None)
        state["best_weights"] = None
        if name is not None:
            with np.load(self._path(name)) as arrays:
                state["best_weights"] = [arrays[f"arr_{i}"] for i in range(len(arrays))]
        return state

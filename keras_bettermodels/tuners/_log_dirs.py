"""Where the search's and the retrain's callbacks write their logs (private).

During a search keras-tuner points a `keras.callbacks.TensorBoard` at
`<log_dir>/<trial_id>/execution<n>` (on TensorFlow only); the tuners do the
same on every backend, point each keras-bettermodels callback with a
`log_dir` at `<log_dir>/<trial_id>` (`<log_dir>/<trial_id>/execution<n>` with
several executions per trial), and both kinds at `<log_dir>/retrain` for the
retrain. Nothing is written to `<log_dir>` itself but, once the search has
ended, the HParams experiment summary (`_hparams`).
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable
from typing import Any

import keras

__all__ = ["logs_itself", "retrain_log_dirs", "trial_log_dirs"]


def logs_itself(callback: Any) -> bool:
    """Whether `callback` is one of ours (or a subclass) with a `log_dir`."""
    ours = any(
        (klass.__module__ or "").split(".")[0] == "keras_bettermodels"
        for klass in type(callback).__mro__
    )
    return ours and getattr(callback, "log_dir", None) is not None


def trial_log_dirs(
    callbacks: list[Any],
    trial: Any,
    execution: int,
    executions_per_trial: int,
    keras_tuners: Callable[[Any], None],
    fold: int | None = None,
) -> None:
    """Gives each trial's callbacks their own log folder.

    With `cv`, each fold is a run of its own: `<trial_id>/fold<k>` stands
    for the trial id in every path.

    Args:
        callbacks: one execution's deep-copied callbacks.
        trial: the trial.
        execution: the execution's index.
        executions_per_trial: the tuner's.
        keras_tuners: runs keras-tuner's own hook on `callbacks`, for the
            trial it is given.
        fold: the fold being trained, with `cv`; `None` otherwise.
    """
    ours = [c for c in callbacks if logs_itself(c)]
    if fold is not None:
        trial = types.SimpleNamespace(
            trial_id=os.path.join(str(trial.trial_id), f"fold{fold}"),
            hyperparameters=trial.hyperparameters,
        )
    keras_tuners(trial)
    if keras.backend.backend() != "tensorflow":
        # keras-tuner's hook returns early off TensorFlow (its HParams
        # callback imports it), and every trial's TensorBoard would write
        # into the same folder: its layout, without the HParams.
        for callback in callbacks:
            if type(callback).__name__ == "TensorBoard":
                callback.log_dir = os.path.join(
                    os.fspath(callback.log_dir),
                    str(trial.trial_id),
                    f"execution{execution}",
                )
    for callback in ours:
        parts = [os.fspath(callback.log_dir), str(trial.trial_id)]
        if executions_per_trial > 1:
            parts.append(f"execution{execution}")
        callback.log_dir = os.path.join(*parts)


def retrain_log_dirs(callbacks: list[Any]) -> None:
    """Points `TensorBoard` and our callbacks at `<log_dir>/retrain`."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.TensorBoard) or logs_itself(callback):
            callback.log_dir = os.path.join(os.fspath(callback.log_dir), "retrain")

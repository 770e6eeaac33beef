"""The HParams dashboard's data for every trial, on every backend (private).

keras-tuner gives a `keras.callbacks.TensorBoard` an HParams callback on the
TensorFlow backend only (it writes through `tf.summary`). The tuners write
the same data themselves, without TensorFlow: a session start (the trial's
hyperparameters, grouped by trial) in each run a trial's callbacks write to,
the trial's objective as a scalar in each of them when it ends, and an
experiment summary in each `log_dir` given to `search` when it ends.
"""

from __future__ import annotations

import os
from typing import Any

import keras

from keras_bettermodels.tensorboard import hparams, summary
from keras_bettermodels.tuners import _log_dirs

__all__ = ["end_trial", "start_runs", "write_experiments"]


def _is_tensorboard(callback: Any) -> bool:
    return isinstance(callback, keras.callbacks.TensorBoard)


def start_runs(
    runs: dict[str, list[str]], callbacks: list[Any], trial: Any, fold: int | None
) -> None:
    """Writes a session start in each run of one execution's `callbacks`.

    On TensorFlow keras-tuner has added its own HParams callback for each
    `TensorBoard`; with `cv` (a `fold`) it would group the runs by fold, so it
    is taken out and the runs are written here, grouped by trial, as on the
    other backends.

    Args:
        runs: trial id -> the runs written so far, to which this adds.
        callbacks: the execution's callbacks, their log dirs already the trial's.
        trial: the trial.
        fold: the fold being trained, with `cv`; `None` otherwise.
    """
    keras_tuners = keras.backend.backend() == "tensorflow" and fold is None
    if fold is not None:
        callbacks[:] = [c for c in callbacks if not _is_hparams_callback(c)]
    values = dict(trial.hyperparameters.values)
    for callback in callbacks:
        if _is_tensorboard(callback):
            run = os.fspath(callback.log_dir)
            if not keras_tuners:  # keras-tuner writes it on TensorFlow
                hparams.write_session_start(run, values, str(trial.trial_id))
        elif _log_dirs.logs_itself(callback):
            run = os.fspath(callback.log_dir)
            hparams.write_session_start(run, values, str(trial.trial_id))
        else:
            continue
        runs.setdefault(str(trial.trial_id), []).append(run)


def _is_hparams_callback(callback: Any) -> bool:
    """Whether `callback` is TensorBoard's `hparams.api.KerasCallback`."""
    module = type(callback).__module__ or ""
    return module.startswith("tensorboard.plugins.hparams")


def end_trial(
    runs: dict[str, list[str]], trial: Any, objective: Any, value: float | None
) -> None:
    """Writes the trial's objective as a scalar in each of its runs."""
    for run in runs.pop(str(trial.trial_id), []):
        if value is not None:
            summary.write_scalars(run, 0, {objective.name: float(value)})


def write_experiments(callbacks: list[Any] | None, oracle: Any) -> None:
    """Writes the experiment summary in the `log_dir` of each callback of
    `search` that logs per trial: the search space and the objective."""
    roots = {
        os.fspath(c.log_dir)
        for c in callbacks or ()
        if _is_tensorboard(c) or _log_dirs.logs_itself(c)
    }
    if not roots:
        return
    kinds: dict[str, type] = {}
    for trial in oracle.trials.values():
        for name, value in trial.hyperparameters.values.items():
            kinds.setdefault(name, type(value))
    for root in sorted(roots):
        hparams.write_experiment(root, kinds, [oracle.objective.name])

"""Where the callbacks log: a folder per trial (and execution), one for the retrain.

The same routing through real searches, on every tuner: `test_tuners.py`.
"""

from __future__ import annotations

import os

import keras
import pytest

from keras_bettermodels.callbacks import EarlyStopping
from keras_bettermodels.tuners import _log_dirs


class _Trial:
    trial_id = "07"


@pytest.mark.backend_independent
def test_only_our_callbacks_with_a_log_dir_log_themselves(tmp_path):
    assert _log_dirs.logs_itself(EarlyStopping(monitor="loss", log_dir=tmp_path))
    assert not _log_dirs.logs_itself(EarlyStopping(monitor="loss"))
    assert not _log_dirs.logs_itself(keras.callbacks.TensorBoard(log_dir=tmp_path))


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("executions", "expected"), [(1, ["07"]), (3, ["07", "execution2"])]
)
def test_ours_get_the_trials_folder_after_keras_tuners_hook(
    tmp_path, executions, expected
):
    ours = EarlyStopping(monitor="loss", log_dir=str(tmp_path))
    seen = []
    _log_dirs.trial_log_dirs(
        [ours], _Trial(), 2, executions, lambda _trial: seen.append(ours.log_dir)
    )
    assert seen == [str(tmp_path)]
    assert ours.log_dir == os.path.join(str(tmp_path), *expected)


def test_keras_tensorboard_gets_keras_tuners_layout_off_tensorflow(tmp_path):
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    _log_dirs.trial_log_dirs([board], _Trial(), 1, 1, lambda _trial: None)
    if keras.backend.backend() == "tensorflow":  # keras-tuner's own hook moves it
        assert board.log_dir == str(tmp_path)
    else:
        assert board.log_dir == os.path.join(str(tmp_path), "07", "execution1")


@pytest.mark.backend_independent
def test_the_retrain_logs_to_retrain_and_keras_other_callbacks_stay(tmp_path):
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    ours = EarlyStopping(monitor="loss", log_dir=tmp_path)
    theirs = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    _log_dirs.retrain_log_dirs([board, ours, theirs])
    assert board.log_dir == ours.log_dir == os.path.join(str(tmp_path), "retrain")
    assert not hasattr(theirs, "log_dir")

"""The HParams dashboard's data for every trial, on every backend."""

from __future__ import annotations

import keras
import pytest

from keras_bettermodels.callbacks import EarlyStopping
from keras_bettermodels.tuners import RandomSearch
from tests.tensorboard.test_hparams import read_hparams, session_starts
from tests.tuners._builders import build_tiny


def _objective_in(run):
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )
    from tensorboard.util import tensor_util

    accumulator = EventAccumulator(str(run))
    accumulator.Reload()
    (event,) = accumulator.Tensors("val_accuracy")
    return float(tensor_util.make_ndarray(event.tensor_proto))


_build = build_tiny


def test_every_trial_of_a_cross_validated_search_is_in_the_hparams_dashboard(
    digits, tmp_path
):
    x, y = digits
    boards, ours = tmp_path / "boards", tmp_path / "ours"
    tuner = RandomSearch(
        _build, "val_accuracy", max_trials=2, cv=2, seed=4, directory=tmp_path
    )
    tuner.search(
        x[:80],
        y[:80],
        epochs=1,
        verbose=0,
        callbacks=[
            keras.callbacks.TensorBoard(boards),
            EarlyStopping(patience=5, log_dir=ours),
        ],
    )
    trials = tuner.oracle.trials
    for root, run in ((boards, "{}/fold{}/execution0"), (ours, "{}/fold{}")):
        content, experiment = read_hparams(root)
        starts = session_starts(content)
        expected = {run.format(t, k) for t in trials for k in (0, 1)}
        assert set(starts) == expected  # on TensorFlow too, grouped by trial
        for name, start in starts.items():
            trial = trials[start.group_name]
            assert name.startswith(f"{trial.trial_id}/")
            units = trial.hyperparameters.get("units")
            assert start.hparams["units"].number_value == units
            assert _objective_in(root / name) == pytest.approx(trial.score)
        assert [m.name.tag for m in experiment.metric_infos] == ["val_accuracy"]
        assert "units" in {h.name for h in experiment.hparam_infos}

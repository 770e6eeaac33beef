"""Cross-validated trials (`cv=`): folds, trial metrics, the retrain, resuming."""

from __future__ import annotations

import json
import os
import statistics

import keras_tuner
import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold

from keras_bettermodels.tuners import Hyperband, RandomSearch, _cv
from tests.tuners._builders import build_tiny

SAMPLES = 120


_build = build_tiny


class _Recording(keras_tuner.HyperModel):
    """Builds `_build`'s model and records each fit's samples and validation."""

    def __init__(self, interrupt_at_fit=None):
        super().__init__()
        self.fits = []
        self.interrupt_at_fit = interrupt_at_fit

    def build(self, hp):
        return _build(hp)

    def fit(self, hp, model, x, y=None, validation_data=None, **kwargs):
        self.fits.append(
            {
                "samples": len(x),
                "validation": None
                if validation_data is None
                else len(validation_data[0]),
                "epochs": kwargs.get("epochs"),
            }
        )
        if len(self.fits) == self.interrupt_at_fit:
            raise _Killed
        return model.fit(x, y, validation_data=validation_data, **kwargs)


class _Killed(BaseException):
    """Stands for a kill: not an `Exception`, so keras-tuner does not catch it."""


@pytest.fixture
def small(digits):
    x, y = digits
    return x[:SAMPLES], y[:SAMPLES]


# ------------------------------------------------------------------ the folds


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    ("cv", "error"),
    [
        (1, ValueError),
        (0, ValueError),
        (2.5, TypeError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_cv_that_is_no_fold_count_or_splitter_is_refused_with_the_house_wording(
    cv, error
):
    with pytest.raises(error, match=r"argument `cv`.*Received: cv="):
        _cv.check_cv(cv)


@pytest.mark.backend_independent
def test_an_int_stratifies_class_labels_and_shuffles_with_the_seed(small):
    x, y = small
    folds = _cv.make_folds(3, {"x": x, "y": y}, seed=7)
    expected = StratifiedKFold(3, shuffle=True, random_state=7).split(x, y)
    for (train, val), (train_sk, val_sk) in zip(folds.splits, expected, strict=True):
        np.testing.assert_array_equal(val, val_sk)
        np.testing.assert_array_equal(train, train_sk)
    assert _cv.make_folds(3, {"x": x, "y": y}, seed=7).fingerprint == folds.fingerprint
    assert _cv.make_folds(3, {"x": x, "y": y}, seed=8).fingerprint != folds.fingerprint


@pytest.mark.backend_independent
def test_an_int_uses_kfold_for_a_regression_target(small):
    x, _ = small
    y = np.linspace(0.0, 1.0, SAMPLES)
    folds = _cv.make_folds(4, {"x": x, "y": y}, seed=1)
    expected = KFold(4, shuffle=True, random_state=1).split(x)
    for (_, val), (_, val_sk) in zip(folds.splits, expected, strict=True):
        np.testing.assert_array_equal(val, val_sk)


@pytest.mark.backend_independent
def test_validation_data_with_cv_is_refused_before_the_first_trial(small):
    x, y = small
    with pytest.raises(
        ValueError,
        match=r"`validation_data`.*Received: validation_data=\(ndarray.*the whole",
    ):
        _cv.make_folds(3, {"x": x, "y": y, "validation_data": (x, y)}, seed=0)
    with pytest.raises(ValueError, match="argument `validation_split`"):
        _cv.make_folds(3, {"x": x, "y": y, "validation_split": 0.2}, seed=0)


@pytest.mark.backend_independent
def test_data_that_cannot_be_indexed_by_sample_is_refused(small):
    with pytest.raises(TypeError, match=r"argument `x`.*by sample"):
        _cv.make_folds(3, {"x": iter([small])}, seed=0)


@pytest.mark.backend_independent
@pytest.mark.parametrize(("counts", "median"), [([3], 3), ([1, 2], 2), ([2, 4, 9], 4)])
def test_the_median_of_epoch_counts_rounds_halves_up(counts, median):
    assert _cv.median_epochs(counts) == median


@pytest.mark.backend_independent
def test_a_fold_checkpoint_sits_beside_the_trials():
    path = os.path.join("d", "trial_1", "checkpoint.weights.h5")
    assert _cv.fold_checkpoint(path, 2) == os.path.join(
        "d", "trial_1", "checkpoint.fold2.weights.h5"
    )


# -------------------------------------------------------------- the searches


@pytest.mark.any_backend  # the folds and the bookkeeping: no backend arithmetic
def test_a_cross_validated_search_needs_no_validation_data(small, tmp_path):
    x, y = small
    hypermodel = _Recording()
    tuner = RandomSearch(
        hypermodel, "val_accuracy", max_trials=1, cv=3, seed=3, directory=tmp_path
    )
    tuner.search(x, y, epochs=2, verbose=0)

    (trial,) = tuner.oracle.trials.values()
    folds = [trial.metrics.get_last_value(f"val_accuracy_fold{k}") for k in range(3)]
    assert trial.score == pytest.approx(statistics.fmean(folds))
    assert trial.metrics.get_last_value("val_accuracy_std") == pytest.approx(
        float(np.std(folds))
    )
    (row,) = tuner.results_table()
    assert row["fold_values"] == pytest.approx(folds)
    assert row["objective"] == trial.score
    # 3 folds of 40 held-out samples, then the retrain on all 120.
    assert [f["validation"] for f in hypermodel.fits] == [40, 40, 40, None]
    assert [f["samples"] for f in hypermodel.fits] == [80, 80, 80, SAMPLES]

    info = tuner.retrain_info
    records = _cv.read_records(tuner.get_trial_dir(trial.trial_id))
    assert info.trial_id == trial.trial_id and info.samples == SAMPLES
    assert info.epochs == _cv.median_epochs([r.best_step + 1 for r in records])
    assert row["best_epoch"] == info.epochs
    assert hypermodel.fits[-1]["epochs"] == info.epochs
    assert tuner.get_best_models(1)[0].count_params() == row["params"]


class _Hyperband(Hyperband):
    """Notes which checkpoint each fold asks for (parents' loads among them)."""

    def _checkpoint_path(self, trial_id, path):
        chosen = super()._checkpoint_path(trial_id, path)
        self.asked = [
            *getattr(self, "asked", []),
            (trial_id, self._current_fold, chosen),
        ]
        return chosen


@pytest.mark.any_backend
def test_a_stratified_kfold_object_is_accepted_and_hyperband_resumes_fold_by_fold(
    small, tmp_path
):
    x, y = small
    tuner = _Hyperband(
        _build,
        "val_accuracy",
        max_epochs=2,
        factor=2,
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        directory=tmp_path,
    )
    tuner.search(x, y, verbose=0)

    trials = tuner.oracle.trials
    children = {
        t.trial_id: t.hyperparameters.values["tuner/trial_id"]
        for t in trials.values()
        if "tuner/trial_id" in t.hyperparameters.values
    }
    assert children
    for trial in trials.values():
        assert len(_cv.read_records(tuner.get_trial_dir(trial.trial_id))) == 2
    # A resumed trial's fold k (its checkpoint asked first, by keras-tuner's
    # `SaveBestEpoch`) loads fold k of the trial it continues, and no other.
    pairs = list(zip(tuner.asked, tuner.asked[1:], strict=False))
    for child, parent in children.items():
        for fold in (0, 1):
            loaded = [
                path
                for (t, f, _), (u, g, path) in pairs
                if (t, f) == (child, fold) and (u, g) == (parent, fold)
            ]
            assert loaded == [
                os.path.join(
                    tuner.get_trial_dir(parent), f"checkpoint.fold{fold}.weights.h5"
                )
            ]
    best = tuner.oracle.get_best_trials(1)[0]
    chain, per_fold = best, [0, 0]
    while chain is not None:
        for record in _cv.read_records(tuner.get_trial_dir(chain.trial_id)):
            per_fold[record.fold] += record.best_step + 1
        parent = chain.hyperparameters.values.get("tuner/trial_id")
        chain = None if parent is None else tuner.oracle.get_trial(parent)
    assert tuner.retrain_info.epochs == _cv.median_epochs(per_fold)


@pytest.mark.any_backend
def test_a_trial_resumed_after_a_kill_does_not_train_its_finished_folds(
    small, tmp_path
):
    x, y = small
    killed = _Recording(interrupt_at_fit=2)  # dies as its second fold starts
    tuner = RandomSearch(
        killed, "val_accuracy", max_trials=1, cv=3, seed=5, directory=tmp_path
    )
    with pytest.raises(_Killed):
        tuner.search(x, y, epochs=1, verbose=0)
    (trial_id,) = tuner.oracle.trials
    folds_file = os.path.join(tuner.get_trial_dir(trial_id), _cv.FOLDS_FILE)
    with open(folds_file) as file:
        assert [f["fold"] for f in json.load(file)["folds"]] == [0]

    again = _Recording()
    tuner = RandomSearch(
        again, "val_accuracy", max_trials=1, cv=3, seed=5, directory=tmp_path
    )
    tuner.search(x, y, epochs=1, verbose=0)
    # Folds 1 and 2 of the same trial, then the retrain: fold 0 is not redone.
    assert [f["validation"] for f in again.fits] == [40, 40, None]
    (trial,) = tuner.oracle.trials.values()
    assert trial.trial_id == trial_id and trial.status == "COMPLETED"
    records = _cv.read_records(tuner.get_trial_dir(trial_id))
    assert [r.fold for r in records] == [0, 1, 2]
    assert trial.score == pytest.approx(statistics.fmean(r.value for r in records))

"""keras.io's KerasTuner guides' patterns, written again in our words, with our tuner.

Each class below follows a pattern of a guide ("Getting started", "Tune
hyperparameters in your custom training loop"): a `HyperModel.fit` that scores
itself on `validation_data`, a custom loop that calls the callbacks by hand,
a tuner whose `run_trial` trains by itself with no hypermodel, one that tunes
a fit argument and hands over to `super().run_trial`. Stock keras-tuner runs
them; so must `search`, skipping a retrain that could not mean anything.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import keras
import keras_tuner
import numpy as np
import pytest

from keras_bettermodels.tuners import RandomSearch


def _regression_data(samples=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 8)).astype("float32")
    y = (x[:, :1] * 2.0 + 0.1).astype("float32")
    return x[:64], y[:64], x[64:], y[64:]


def _small_model(hp):
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(hp.Int("units", 4, 12, step=4), activation="relu"),
            keras.layers.Dense(1),
        ]
    )


class ScoresItself(keras_tuner.HyperModel):
    """keras.io's "Getting started": `fit` needs `validation_data`, returns a float."""

    def __init__(self):
        super().__init__()
        self.fits = 0

    def build(self, hp):
        model = _small_model(hp)
        model.compile(optimizer="adam", loss="mean_squared_error")
        return model

    def fit(self, hp, model, x, y, validation_data, **kwargs):
        self.fits += 1
        model.fit(x, y, **kwargs)
        x_val, y_val = validation_data
        return float(np.mean(np.abs(model.predict(x_val, verbose=0) - y_val)))


class CustomLoop(keras_tuner.HyperModel):
    """The custom-loop guide: batches by hand, callbacks called by hand."""

    def build(self, hp):
        model = _small_model(hp)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
        return model

    def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
        batch_size = hp.Int("batch_size", 16, 32, step=16)
        x_val, y_val = validation_data
        for callback in callbacks or []:
            callback.set_model(model)
        best = float("inf")
        for epoch in range(2):
            for start in range(0, len(x), batch_size):
                part = slice(start, start + batch_size)
                model.train_on_batch(x[part], y[part])
            loss = float(model.evaluate(x_val, y_val, verbose=0))
            for callback in callbacks or []:
                callback.on_epoch_end(epoch, logs={"my_metric": loss})
            best = min(best, loss)
        return best


def _quiet_search(tuner, *args, **kwargs):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        tuner.search(*args, **kwargs)
    return output.getvalue()


def test_a_fit_that_needs_validation_data_searches_and_skips_the_retrain(tmp_path):
    x, y, x_val, y_val = _regression_data()
    hypermodel = ScoresItself()
    kwargs = {"max_trials": 2, "directory": str(tmp_path), "project_name": "p"}
    tuner = RandomSearch(hypermodel=hypermodel, overwrite=True, **kwargs)
    with pytest.warns(UserWarning, match="requires `validation_data`") as caught:
        _quiet_search(tuner, x, y, epochs=1, validation_data=(x_val, y_val), verbose=0)
    assert len([w for w in caught if "retrain" in str(w.message)]) == 1
    assert hypermodel.fits == 2  # the trials, and no retrain
    assert "validation_data=None" in tuner.retrain_info.skipped
    assert tuner.get_best_hyperparameters()[0].values["units"] in (4, 8, 12)
    with pytest.raises(RuntimeError, match="requires `validation_data`"):
        tuner.retrain(x, y, epochs=1, validation_data=(x_val, y_val))
    # The finished project, reloaded: the search does not crash either.
    again = RandomSearch(hypermodel=ScoresItself(), overwrite=False, **kwargs)
    with pytest.warns(UserWarning, match="requires `validation_data`"):
        _quiet_search(again, x, y, epochs=1, validation_data=(x_val, y_val))
    assert again.retrain_info.skipped


def test_the_custom_loop_guide_searches_and_reports(tmp_path):
    x, y, x_val, y_val = _regression_data()
    tuner = RandomSearch(
        hypermodel=CustomLoop(),
        objective=keras_tuner.Objective("my_metric", "min"),
        max_trials=2,
        directory=str(tmp_path),
        project_name="loop",
    )
    with pytest.warns(UserWarning, match="requires `validation_data`"):
        _quiet_search(tuner, x=x, y=y, validation_data=(x_val, y_val))
    best = tuner.oracle.get_best_trials(1)[0]
    assert np.isfinite(best.score) and tuner.retrain_info.trial_id == best.trial_id
    tuner.results_summary(num_trials=1)


def test_a_run_trial_override_without_hypermodel_warns_nothing(tmp_path):
    class MyTuner(RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            value = trial.hyperparameters.Float("x", -1.0, 1.0)
            return value * value + 1.0

    tuner = MyTuner(max_trials=3, directory=str(tmp_path), project_name="plain")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = _quiet_search(tuner)
    ours = [w for w in caught if "retrain" in str(w.message)]
    assert ours == [], [str(w.message) for w in ours]
    assert "retrain on the full data is skipped" in output  # a note, at verbose
    assert "hypermodel" in tuner.retrain_info.skipped
    assert tuner.get_best_hyperparameters()[0].values["x"] ** 2 + 1 == pytest.approx(
        tuner.oracle.get_best_trials(1)[0].score
    )


def test_a_run_trial_that_hands_over_to_super_still_retrains(tmp_path):
    class TunesBatchSize(RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            kwargs["batch_size"] = trial.hyperparameters.Int("batch_size", 16, 32, 16)
            return super().run_trial(trial, *args, **kwargs)

    def build(hp):
        model = _small_model(hp)
        model.compile(optimizer="adam", loss="mse")
        return model

    x, y, x_val, y_val = _regression_data()
    tuner = TunesBatchSize(
        build,
        objective="val_loss",
        max_trials=2,
        directory=str(tmp_path),
        project_name="super",
    )
    _quiet_search(tuner, x, y, epochs=2, validation_data=(x_val, y_val), verbose=0)
    info = tuner.retrain_info
    assert info.skipped is None and info.samples == len(x) + len(x_val)
    assert tuner.get_retrained_model() is not None


def test_a_run_trial_that_trains_by_itself_retrains_with_retrain_epochs(tmp_path):
    class OwnLoop(RandomSearch):
        def run_trial(self, trial, x, y, validation_data=None, **kwargs):
            hp = trial.hyperparameters
            model = self.hypermodel.build(hp)
            model.fit(x, y, epochs=1, verbose=0)
            return float(model.evaluate(*validation_data, verbose=0))

    def build(hp):
        model = _small_model(hp)
        model.compile(optimizer="adam", loss="mse")
        return model

    x, y, x_val, y_val = _regression_data()
    common = {"max_trials": 1, "directory": str(tmp_path)}
    tuner = OwnLoop(build, project_name="own", **common)
    with pytest.warns(UserWarning, match="trains by itself"):
        _quiet_search(tuner, x, y, validation_data=(x_val, y_val))
    assert "retrain_epochs=" in tuner.retrain_info.skipped
    tuner = OwnLoop(build, project_name="own2", retrain_epochs=2, **common)
    _quiet_search(tuner, x, y, validation_data=(x_val, y_val))
    info = tuner.retrain_info
    assert info.skipped is None and (info.epochs, info.epochs_run) == (2, 2)


@keras.saving.register_keras_serializable(package="kbm_tests")
def constant(y_true, y_pred):
    """A metric every trial ties on."""
    return keras.ops.zeros(())


def test_a_finished_project_with_tied_scores_is_reused_and_agrees(tmp_path):
    def build(hp):
        model = _small_model(hp)
        model.compile(optimizer="adam", loss="mse", metrics=[constant])
        return model

    x, y, x_val, y_val = _regression_data()
    kwargs = {
        "objective": keras_tuner.Objective("val_constant", "max"),
        "max_trials": 6,
        "seed": 1,
        "directory": str(tmp_path),
        "project_name": "tied",
    }
    data = {"epochs": 1, "validation_data": (x_val, y_val), "verbose": 0}
    tuner = RandomSearch(build, **kwargs)
    _quiet_search(tuner, x, y, **data)
    scores = {t.score for t in tuner.oracle.trials.values()}
    assert scores == {0.0} and len(tuner.oracle.trials) > 1  # all tied
    retrained = tuner.retrain_info
    assert retrained.skipped is None

    reloaded = RandomSearch(build, overwrite=False, **kwargs)
    assert list(reloaded.oracle.trials) == reloaded.oracle.start_order
    best = reloaded.get_best_hyperparameters()[0]
    assert best.values == reloaded.retrain_info.hyperparameters
    assert reloaded.retrain_info.trial_id == retrained.trial_id
    output = _quiet_search(reloaded, x, y, **{**data, "verbose": 1})
    assert "Reusing the model retrained" in output

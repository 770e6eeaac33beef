"""RetrainOnFullData: the retrain on training + validation data, on every backend.

Driven through `RandomSearch`, the simplest tuner over the mixin;
`test_tuners.py` runs the four tuners.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import pytest

from keras_bettermodels.callbacks.early_stopping import EarlyStopping
from keras_bettermodels.tuners import RandomSearch, RetrainInfo

TRAIN, VALIDATION = 300, 100


class Recording(keras_tuner.HyperModel):
    """A tiny MLP whose `fit` records what every call saw.

    It tunes the batch size in `fit`, so the tests can tell that tuned fit
    arguments reach the retrain. With `returns="dict"` it returns the last
    epoch's metrics instead of the History.
    """

    def __init__(self, returns: str = "history") -> None:
        super().__init__()
        self.returns = returns
        self.calls: list[dict[str, Any]] = []

    def build(self, hp: Any) -> keras.Model:
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(hp.Choice("units", [8, 16, 32]), activation="relu"),
                keras.layers.Dense(10),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp: Any, model: keras.Model, x: Any, y: Any = None, **kwargs: Any):
        batch_size = hp.Choice("batch_size", [32, 64])
        self.calls.append(
            {"x": x, "y": y, "values": dict(hp.values), "batch_size": batch_size}
            | {"kwargs": kwargs}
        )
        history = model.fit(x, y, batch_size=batch_size, **kwargs)
        if self.returns == "dict":
            return {name: values[-1] for name, values in history.history.items()}
        return history


@dataclass
class Search:
    tuner: RandomSearch
    hypermodel: Recording
    output: str
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    directory: Path

    @property
    def retrain_call(self) -> dict[str, Any]:
        return self.hypermodel.calls[-1]

    @property
    def trial_calls(self) -> list[dict[str, Any]]:
        return self.hypermodel.calls[:-1]

    def best_trial(self) -> Any:
        return self.tuner.oracle.get_best_trials(1)[0]


def _split(digits):
    x, y = digits
    end = TRAIN + VALIDATION
    return x[:TRAIN], y[:TRAIN], x[TRAIN:end], y[TRAIN:end]


def _search(
    directory: Path,
    digits,
    *,
    hypermodel: Recording | None = None,
    tuner_kwargs: dict[str, Any] | None = None,
    validation: str = "data",
    **fit_kwargs: Any,
) -> Search:
    x, y, x_val, y_val = _split(digits)
    hypermodel = hypermodel or Recording()
    keras.utils.set_random_seed(0)
    tuner = RandomSearch(
        hypermodel,
        **{
            "objective": "val_accuracy",
            "max_trials": 2,
            "seed": 3,
            "directory": str(directory),
            "project_name": "search",
            "overwrite": True,
            **(tuner_kwargs or {}),
        },
    )
    fit_kwargs.setdefault("epochs", 2)
    fit_kwargs.setdefault("verbose", 0)
    if validation == "data":
        fit_kwargs["validation_data"] = (x_val, y_val)
    elif validation == "split":
        x, y = np.concatenate([x, x_val]), np.concatenate([y, y_val])
        fit_kwargs["validation_split"] = VALIDATION / (TRAIN + VALIDATION)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        tuner.search(x, y, **fit_kwargs)
    return Search(tuner, hypermodel, output.getvalue(), x, y, x_val, y_val, directory)


@pytest.fixture(scope="module")
def searched(digits, tmp_path_factory) -> Search:
    """One search with validation data, callbacks and a progress bar."""
    return _search(
        tmp_path_factory.mktemp("searched"),
        digits,
        epochs=3,
        verbose=1,
        callbacks=[
            EarlyStopping(criterion="GL5"),
            keras.callbacks.EarlyStopping(monitor="loss", patience=50),
        ],
    )


class TestBestModels:
    def test_best_models_are_the_searchs_trained_on_the_training_split(self, searched):
        best = searched.tuner.get_best_models(1)[0]
        accuracy = best.evaluate(
            searched.x_val, searched.y_val, verbose=0, return_dict=True
        )["accuracy"]
        assert accuracy == pytest.approx(searched.best_trial().score, abs=1e-6)
        assert best is not searched.tuner.get_retrained_model()


class TestArguments:
    @pytest.mark.parametrize("value", [0, -2])
    def test_retrain_epochs_below_one_is_a_value_error(self, value):
        with pytest.raises(
            ValueError,
            match=rf"Invalid value for argument `retrain_epochs`\. Expected a "
            rf"positive integer\. Received: retrain_epochs={value}",
        ):
            RandomSearch(Recording(), retrain_epochs=value)

    @pytest.mark.parametrize("value", [1.5, True, "3"])
    def test_retrain_epochs_not_an_integer_is_a_type_error(self, value):
        with pytest.raises(
            TypeError, match=r"Invalid type for argument `retrain_epochs`"
        ):
            RandomSearch(Recording(), retrain_epochs=value)

    def test_retrain_on_full_data_must_be_a_bool(self):
        with pytest.raises(
            TypeError, match=r"Invalid type for argument `retrain_on_full_data`"
        ):
            RandomSearch(Recording(), retrain_on_full_data="yes")

    def test_arguments_are_kept_as_attributes(self, tmp_path):
        tuner = RandomSearch(
            Recording(),
            "val_accuracy",
            3,
            retrain_on_full_data=False,
            retrain_epochs=4,
            directory=str(tmp_path),
        )
        assert (tuner.retrain_on_full_data, tuner.retrain_epochs) == (False, 4)
        assert tuner.oracle.max_trials == 3


class TestRetrainAfterSearch:
    def test_sees_exactly_training_plus_validation_samples(self, searched):
        call = searched.retrain_call
        np.testing.assert_array_equal(
            call["x"], np.concatenate([searched.x, searched.x_val])
        )
        np.testing.assert_array_equal(
            call["y"], np.concatenate([searched.y, searched.y_val])
        )
        assert all(len(c["x"]) == TRAIN for c in searched.trial_calls)

    def test_holds_nothing_out(self, searched):
        kwargs = searched.retrain_call["kwargs"]
        assert not {k for k in kwargs if k.startswith("validation")}
        assert all("validation_data" in c["kwargs"] for c in searched.trial_calls)

    def test_uses_the_best_hyperparameters_and_tuned_fit_arguments(self, searched):
        best = searched.best_trial()
        call = searched.retrain_call
        assert call["values"] == best.hyperparameters.values
        assert call["batch_size"] == best.hyperparameters.get("batch_size")
        assert searched.tuner.get_retrained_model().layers[0].units == (
            best.hyperparameters.get("units")
        )

    def test_runs_for_the_best_trials_best_epoch_count(self, searched):
        best = searched.best_trial()
        assert searched.retrain_call["kwargs"]["epochs"] == best.best_step + 1
        info = searched.tuner.retrain_info
        assert (info.epochs, info.epochs_source) == (best.best_step + 1, "best_step")

    def test_retrain_info_says_what_it_saw(self, searched):
        info = searched.tuner.retrain_info
        best = searched.best_trial()
        assert isinstance(info, RetrainInfo)
        assert (info.samples, info.train_samples, info.validation_samples) == (
            TRAIN + VALIDATION,
            TRAIN,
            VALIDATION,
        )
        assert info.trial_id == best.trial_id and info.data == "arrays"
        assert info.hyperparameters == best.hyperparameters.values
        assert info.epochs_run == info.epochs
        assert info.model_path == os.path.join(
            searched.tuner.project_dir, "retrained.keras"
        )

    def test_callbacks_that_need_validation_data_are_left_out_with_a_note(
        self, searched
    ):
        kept = searched.retrain_call["kwargs"]["callbacks"]
        assert [(type(c).__name__, c.monitor) for c in kept] == [
            ("EarlyStopping", "loss")
        ]
        assert "EarlyStopping(monitor='val_loss') is left out of the retrain" in (
            searched.output
        )
        assert searched.tuner.retrain_info.dropped_callbacks == (
            "EarlyStopping(monitor='val_loss')",
        )
        # The trials kept every callback.
        assert all(
            any(getattr(c, "criterion", None) for c in call["kwargs"]["callbacks"])
            for call in searched.trial_calls
        )

    def test_shows_a_progress_bar_over_the_full_data(self, searched):
        retrain = searched.output.split("Retraining the best hyperparameters")[1]
        steps = -(-(TRAIN + VALIDATION) // searched.retrain_call["batch_size"])
        assert f"{steps}/{steps}" in retrain
        assert f"Epoch {searched.tuner.retrain_info.epochs}/" in retrain
        assert f"on {TRAIN + VALIDATION} samples ({TRAIN} training + " in retrain

    def test_the_retrained_model_is_saved_and_reloads_with_the_project(
        self, searched, digits
    ):
        path = Path(searched.tuner.project_dir) / "retrained.keras"
        assert path.is_file()
        x_test = digits[0][-50:]
        expected = searched.tuner.get_retrained_model().predict(x_test, verbose=0)
        reloaded = RandomSearch(
            Recording(),
            objective="val_accuracy",
            max_trials=2,
            directory=str(searched.directory),
            project_name="search",
        )
        assert reloaded.retrain_info == searched.tuner.retrain_info
        model = reloaded.get_retrained_model()
        np.testing.assert_allclose(
            model.predict(x_test, verbose=0), expected, rtol=1e-5, atol=1e-5
        )

    def test_searching_a_finished_project_again_reuses_its_retrained_model(
        self, searched, digits
    ):
        hypermodel = Recording()
        again = _search(
            searched.directory,
            digits,
            hypermodel=hypermodel,
            tuner_kwargs={"overwrite": False},
            epochs=3,
            verbose=1,
        )
        assert hypermodel.calls == []  # no trial, no retrain
        assert "Reusing the model retrained" in again.output
        assert again.tuner.retrain_info == searched.tuner.retrain_info


def test_a_search_checks_its_data_once_and_appends_it_once(
    digits, tmp_path, monkeypatch
):
    from keras_bettermodels.tuners import _data

    plans, appended = [], []
    plan, full = _data.plan, _data.DataPlan.full

    def counting_plan(*args: Any, **kwargs: Any) -> Any:
        plans.append(plan(*args, **kwargs))
        return plans[-1]

    def counting_full(self: Any) -> Any:
        appended.append(self)
        return full(self)

    monkeypatch.setattr(_data, "plan", counting_plan)
    monkeypatch.setattr(_data.DataPlan, "full", counting_full)
    search = _search(tmp_path, digits, tuner_kwargs={"max_trials": 1})
    assert len(search.retrain_call["x"]) == TRAIN + VALIDATION
    assert len(plans) == 1
    assert appended == plans


def _finished_copy(searched: Search, tmp_path: Path, **tuner_kwargs: Any):
    """A copy of `searched`'s finished project, without its retrained model."""
    shutil.copytree(searched.directory / "search", tmp_path / "search")
    for name in ("retrained.keras", "retrained.json"):
        (tmp_path / "search" / name).unlink()
    hypermodel = Recording()
    tuner = RandomSearch(
        hypermodel,
        **{
            "objective": "val_accuracy",
            "max_trials": 2,
            "directory": str(tmp_path),
            "project_name": "search",
            **tuner_kwargs,
        },
    )
    return tuner, hypermodel


@pytest.fixture(scope="module")
def split_search(digits, tmp_path_factory) -> Search:
    """`validation_split`, a `fit` returning a dict, `retrain_epochs`, `verbose=0`."""
    return _search(
        tmp_path_factory.mktemp("split"),
        digits,
        hypermodel=Recording(returns="dict"),
        validation="split",
        tuner_kwargs={"max_trials": 1, "retrain_epochs": 3},
        epochs=3,
    )


class TestValidationSplit:
    def test_retrains_on_the_whole_x_with_no_split(self, split_search):
        call = split_search.retrain_call
        assert call["x"] is split_search.x and call["y"] is split_search.y
        assert "validation_split" not in call["kwargs"]
        info = split_search.tuner.retrain_info
        assert (info.data, info.samples) == ("validation_split", TRAIN + VALIDATION)
        assert (info.train_samples, info.validation_samples) == (TRAIN, VALIDATION)
        assert all(
            len(c["x"]) == TRAIN + VALIDATION and c["kwargs"]["validation_split"]
            for c in split_search.trial_calls
        )

    def test_verbose_0_prints_nothing(self, split_search):
        assert split_search.output == ""


class TestEpochCount:
    def test_a_fit_returning_a_dict_retrains_only_for_retrain_epochs(
        self, split_search
    ):
        assert split_search.best_trial().best_step == 0
        assert split_search.retrain_call["kwargs"]["epochs"] == 3
        info = split_search.tuner.retrain_info
        assert (info.epochs, info.epochs_source, info.epochs_run, info.skipped) == (
            3,
            "retrain_epochs",
            None,
            None,
        )

    def test_a_fit_returning_a_score_skips_the_retrain_saying_why(
        self, digits, tmp_path
    ):
        with pytest.warns(UserWarning, match="returned a score, not a History"):
            search = _search(
                tmp_path,
                digits,
                hypermodel=Recording(returns="dict"),
                tuner_kwargs={"max_trials": 1},
            )
        assert len(search.hypermodel.calls) == 1  # the trial, no retrain
        info = search.tuner.retrain_info
        assert "retrain_epochs=" in info.skipped
        assert info.trial_id == search.best_trial().trial_id
        with pytest.raises(RuntimeError, match=r"retrain was skipped: .*score"):
            search.tuner.get_retrained_model()

    def test_a_history_whose_best_epoch_is_the_first_retrains_one_epoch(
        self, digits, tmp_path
    ):
        # The validation loss falls as the model learns, so maximizing it
        # makes the first epoch the best one: best_step == 0 from a History.
        search = _search(
            tmp_path,
            digits,
            tuner_kwargs={
                "max_trials": 1,
                "objective": keras_tuner.Objective("val_loss", "max"),
            },
            epochs=3,
        )
        assert search.best_trial().best_step == 0
        assert search.retrain_call["kwargs"]["epochs"] == 1
        assert search.tuner.retrain_info.epochs_source == "best_step"

    def test_retrain_epochs_overrides_the_best_epoch_count(self, searched, tmp_path):
        tuner, hypermodel = _finished_copy(searched, tmp_path, retrain_epochs=1)
        tuner.retrain(
            searched.x,
            searched.y,
            epochs=3,
            validation_data=(searched.x_val, searched.y_val),
            verbose=0,
        )
        assert hypermodel.calls[-1]["kwargs"]["epochs"] == 1
        info = tuner.retrain_info
        assert (info.epochs, info.epochs_source) == (1, "retrain_epochs")


class TestRetrainOnDemand:
    def test_get_retrained_model_without_one_says_to_call_retrain(
        self, searched, tmp_path
    ):
        tuner, _ = _finished_copy(searched, tmp_path, retrain_on_full_data=False)
        assert tuner.retrain_info is None
        with pytest.raises(RuntimeError, match=r"Call `tuner\.retrain\("):
            tuner.get_retrained_model()

    def test_retrain_adds_the_validation_data(self, searched, tmp_path):
        tuner, hypermodel = _finished_copy(searched, tmp_path)
        model = tuner.retrain(
            searched.x,
            searched.y,
            epochs=3,
            validation_data=(searched.x_val, searched.y_val),
            verbose=0,
        )
        assert tuner.get_retrained_model() is model
        (call,) = hypermodel.calls
        assert len(call["x"]) == TRAIN + VALIDATION
        assert call["values"] == searched.best_trial().hyperparameters.values
        assert tuner.retrain_info.data == "arrays"
        assert Path(tuner.project_dir, "retrained.keras").is_file()

    def test_retrain_without_validation_data_takes_the_data_as_the_whole(
        self, searched, tmp_path
    ):
        tuner, hypermodel = _finished_copy(searched, tmp_path)
        x_all = np.concatenate([searched.x, searched.x_val])
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            tuner.retrain(x_all, np.concatenate([searched.y, searched.y_val]))
        assert "no validation data given" in output.getvalue()
        assert hypermodel.calls[-1]["x"] is x_all
        info = tuner.retrain_info
        assert (info.data, info.samples, info.validation_samples) == (
            "training data only",
            TRAIN + VALIDATION,
            0,
        )

    def test_retrain_before_any_trial_is_an_error(self, digits, tmp_path):
        tuner = RandomSearch(
            Recording(), objective="val_accuracy", directory=str(tmp_path)
        )
        x, y, _, _ = _split(digits)
        with pytest.raises(RuntimeError, match="No trial has completed"):
            tuner.retrain(x, y)


class TestBadData:
    def test_no_validation_data_warns_and_retrains_on_the_training_data(
        self, searched, tmp_path
    ):
        tuner, hypermodel = _finished_copy(searched, tmp_path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            tuner.search(searched.x, searched.y, epochs=3, verbose=0)
        assert any("No validation data" in str(w.message) for w in caught)
        (call,) = hypermodel.calls  # the finished search ran no trial
        assert call["x"] is searched.x
        info = tuner.retrain_info
        assert (info.data, info.samples, info.validation_samples) == (
            "training data only",
            TRAIN,
            0,
        )

    def test_mismatched_validation_shapes_fail_before_the_first_trial(
        self, digits, tmp_path
    ):
        x, y, x_val, y_val = _split(digits)
        hypermodel = Recording()
        tuner = RandomSearch(
            hypermodel, objective="val_accuracy", directory=str(tmp_path)
        )
        with pytest.raises(ValueError, match="per-sample shape"):
            tuner.search(x, y, validation_data=(x_val[:, :63], y_val), verbose=0)
        assert hypermodel.calls == []
        assert not list(Path(tuner.project_dir).glob("trial_*"))

    def test_data_that_cannot_be_combined_is_searched_and_the_retrain_skipped(
        self, searched, tmp_path
    ):
        class Batches(keras.utils.PyDataset):
            def __init__(self, x, y):
                super().__init__()
                self.x, self.y = x, y

            def __len__(self):
                return -(-len(self.x) // 32)

            def __getitem__(self, index):
                part = slice(32 * index, 32 * (index + 1))
                return self.x[part], self.y[part]

        tuner, hypermodel = _finished_copy(searched, tmp_path)
        batches = Batches(searched.x, searched.y)
        validation = (searched.x_val, searched.y_val)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            tuner.search(batches, validation_data=validation, epochs=3, verbose=0)
        (warning,) = [
            w
            for w in caught
            if "The retrain on the full data will be skipped" in str(w.message)
        ]
        assert "Invalid type for argument `x`" in str(warning.message)
        assert "retrain_on_full_data=False" in str(warning.message)
        assert hypermodel.calls == []
        with pytest.raises(RuntimeError, match=r"Call `tuner\.retrain\("):
            tuner.get_retrained_model()
        with pytest.raises(TypeError, match="Invalid type for argument `x`"):
            tuner.retrain(batches, validation_data=validation)


@pytest.mark.tensorflow_only
def test_tf_data_datasets_are_concatenated_for_the_retrain(digits, tmp_path):
    import tensorflow as tf

    x, y, x_val, y_val = _split(digits)

    class DatasetRecording(Recording):
        def fit(self, hp, model, x, y=None, **kwargs):
            self.calls.append({"x": x, "kwargs": kwargs, "values": dict(hp.values)})
            return model.fit(x, **kwargs)

    hypermodel = DatasetRecording()
    tuner = RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=1,
        directory=str(tmp_path),
        overwrite=True,
    )
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(32)
    tuner.search(train, epochs=2, validation_data=val, verbose=0)
    retrain = hypermodel.calls[-1]
    assert not {k for k in retrain["kwargs"] if k.startswith("validation")}
    seen_x = np.concatenate([bx.numpy() for bx, _ in retrain["x"]])
    seen_y = np.concatenate([by.numpy() for _, by in retrain["x"]])
    np.testing.assert_array_equal(seen_x, np.concatenate([x, x_val]))
    np.testing.assert_array_equal(seen_y, np.concatenate([y, y_val]))
    info = tuner.retrain_info
    assert (info.data, info.batches, info.samples) == ("dataset", 10 + 4, None)


class TestObjective:
    def test_an_objective_no_epoch_logged_is_an_error_naming_the_logged_ones(
        self, digits, tmp_path
    ):
        with pytest.raises(keras_tuner.errors.FatalValueError) as caught:
            _search(tmp_path, digits, tuner_kwargs={"objective": "val_acc"})
        message = str(caught.value)
        assert "'val_acc' is not among the metrics the model logged" in message
        assert "'val_accuracy'" in message and "Did you mean 'val_accuracy'?" in message


class TestDivergedRetrain:
    def test_a_retrain_that_diverges_is_not_saved_nor_returned(self, digits, tmp_path):
        x, y, x_val, y_val = _split(digits)
        x_val = x_val.copy()
        x_val[0] = 1e30  # one bad sample the trials never trained on
        tuner = RandomSearch(
            Recording(),
            objective="loss",
            max_trials=1,
            directory=str(tmp_path),
            project_name="diverged",
        )
        # The loss may stay finite while a weight or an optimizer slot does not.
        with pytest.warns(UserWarning, match=r"retrain on the full data diverged"):
            tuner.search(x, y, epochs=2, validation_data=(x_val, y_val), verbose=0)
        assert not (tmp_path / "diverged" / "retrained.keras").exists()
        assert "diverged" in tuner.retrain_info.skipped
        with pytest.raises(RuntimeError, match=r"retrain was skipped: .*diverged"):
            tuner.get_retrained_model()
        with pytest.raises(RuntimeError, match="diverged"):
            tuner.retrain(x, y, epochs=2, validation_data=(x_val, y_val), verbose=0)


class TestMovedProject:
    def test_a_moved_project_finds_its_retrained_model(self, searched, tmp_path):
        moved = tmp_path / "elsewhere"
        shutil.copytree(searched.directory, moved)
        tuner = RandomSearch(
            Recording(),
            objective="val_accuracy",
            directory=str(moved),
            project_name="search",
            overwrite=False,
        )
        assert tuner.retrain_info.model_path == str(
            moved / "search" / "retrained.keras"
        )
        model = tuner.get_retrained_model()
        original = searched.tuner.get_retrained_model()
        for a, b in zip(model.get_weights(), original.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
        document = (moved / "search" / "retrained.json").read_text()
        assert str(searched.directory) not in document

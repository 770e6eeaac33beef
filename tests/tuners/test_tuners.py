"""The four tuners over one mixin: keras-tuner's behaviour, plus the retrain.

A `Planted` HyperModel trains a tiny model for real but reports a planted
objective, `val_score`, computed from the hyperparameters and the epoch, so
that a search is deterministic and its result can be traced by hand.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import keras
import keras_tuner
import numpy as np
import pytest

import keras_bettermodels
from keras_bettermodels import tuners
from keras_bettermodels.callbacks import CacheTimingCallback, EarlyStopping

OBJECTIVE = keras_tuner.Objective("val_score", "min")
TUNERS = {
    "RandomSearch": {"max_trials": 3},
    "GridSearch": {"max_trials": 3},
    "BayesianOptimization": {"max_trials": 3, "num_initial_points": 2},
    "Hyperband": {"max_epochs": 2, "factor": 2},
}


def _data(n: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 2, n)


class Planted(keras_tuner.HyperModel):
    """Tiny model; `val_score` is planted by `score(values, round, epoch)`."""

    def __init__(self, score=None) -> None:
        super().__init__()
        self.score = score or (lambda values, epoch: values["u"] / 10 + 1 / (1 + epoch))
        self.calls: list[dict[str, Any]] = []

    def build(self, hp):
        hp.Choice("u", [1, 2, 3])
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(2, activation="softmax")]
        )
        model.compile(
            optimizer="sgd",
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp, model, *args, **kwargs):
        self.calls.append(
            {
                "values": dict(hp.values),
                "epochs": kwargs.get("epochs"),
                "log_dirs": [
                    os.fspath(c.log_dir)
                    for c in kwargs.get("callbacks") or ()
                    if isinstance(c, CacheTimingCallback | EarlyStopping)
                    and c.log_dir is not None
                ],
            }
        )
        history = model.fit(*args, **kwargs)
        start = kwargs.get("initial_epoch", 0)
        history.history["val_score"] = [
            float(self.score(hp.values, start + i)) for i in range(len(history.epoch))
        ]
        return history


class Counting(keras.callbacks.Callback):
    fits = 0  # over every deep copy

    def on_train_begin(self, logs=None):
        type(self).fits += 1


def _search(tuner_class, directory, name="p", hypermodel=None, fit=None, **kwargs):
    x, y = _data()
    xv, yv = _data(16, seed=1)
    tuner = tuner_class(
        hypermodel or Planted(),
        objective=OBJECTIVE,
        seed=1,
        directory=str(directory),
        project_name=name,
        overwrite=True,
        **kwargs,
    )
    tuner.search(x, y, epochs=2, validation_data=(xv, yv), verbose=0, **(fit or {}))
    return tuner


@pytest.mark.parametrize("name", TUNERS)
class TestEachTuner:
    def test_is_a_drop_in_subclass_with_the_parents_arguments_first(self, name):
        ours, theirs = getattr(tuners, name), getattr(keras_tuner, name)
        assert issubclass(ours, theirs) and issubclass(ours, tuners.RetrainOnFullData)
        assert getattr(keras_bettermodels, name) is ours
        parameters = list(inspect.signature(ours.__init__).parameters.values())
        expected = [
            p
            for p in inspect.signature(theirs.__init__).parameters.values()
            if p.kind is not p.VAR_KEYWORD
        ]
        assert [(p.name, p.default, p.kind) for p in parameters[: len(expected)]] == [
            (p.name, p.default, p.kind) for p in expected
        ]
        assert [(p.name, p.default, p.kind) for p in parameters[len(expected) :]] == [
            ("retrain_on_full_data", True, inspect.Parameter.KEYWORD_ONLY),
            ("retrain_epochs", None, inspect.Parameter.KEYWORD_ONLY),
            ("cv", None, inspect.Parameter.KEYWORD_ONLY),
            ("select", None, inspect.Parameter.KEYWORD_ONLY),
            ("kwargs", inspect.Parameter.empty, inspect.Parameter.VAR_KEYWORD),
        ]

    @pytest.mark.parametrize("objective", [OBJECTIVE, 5], ids=str)
    def test_hypermodel_none_behaves_as_keras_tuners(self, name, objective, tmp_path):
        ours, theirs = getattr(tuners, name), getattr(keras_tuner, name)
        outcomes = []
        for cls in (theirs, ours):
            try:
                cls(None, objective=objective, directory=str(tmp_path), overwrite=True)
                outcomes.append(None)
            except (TypeError, ValueError) as error:
                outcomes.append((type(error), str(error)))
        assert outcomes[0] == outcomes[1]
        if isinstance(objective, int):  # the oracle is built first: its error first
            assert outcomes[0][0] is TypeError
            return
        # keras-tuner's Hyperband overrides run_trial, so it accepts None.
        assert (outcomes[0] is None) == (name == "Hyperband")

    @pytest.mark.parametrize(
        "bad",
        [
            {"objective": 5},
            {"no_such_argument": 1},
            {"executions_per_trial": "two", "objective": None},
        ],
    )
    def test_bad_arguments_fail_as_in_keras_tuner(self, name, tmp_path, bad):
        def attempt(cls):
            try:
                cls(
                    Planted(),
                    **{"objective": OBJECTIVE, "directory": str(tmp_path), **bad},
                )
            except Exception as error:  # compare whatever keras-tuner raises
                return type(error), str(error)
            return None

        theirs = attempt(getattr(keras_tuner, name))
        ours = attempt(getattr(tuners, name))
        assert ours == theirs

    @pytest.mark.any_backend  # trial bookkeeping against keras-tuner's own
    def test_search_runs_keras_tuners_trials_then_the_retrain(self, name, tmp_path):
        kwargs = TUNERS[name]
        Counting.fits = 0
        theirs = _search(
            getattr(keras_tuner, name),
            tmp_path,
            "theirs",
            fit={"callbacks": [Counting()]},
            **kwargs,
        )
        their_fits = Counting.fits
        Counting.fits = 0
        hypermodel = Planted()
        ours = _search(
            getattr(tuners, name),
            tmp_path,
            "ours",
            hypermodel=hypermodel,
            fit={"callbacks": [Counting()]},
            **kwargs,
        )

        # The same trials, in the same order, with the same scores and best.
        def trials(tuner):
            return [
                (t.hyperparameters.values, t.score, t.best_step, t.status)
                for t in tuner.oracle.trials.values()
            ]

        assert trials(ours) == trials(theirs)
        assert (
            ours.get_best_hyperparameters()[0].values
            == theirs.get_best_hyperparameters()[0].values
        )
        # The one intended difference: the callbacks run once more.
        assert Counting.fits == their_fits + 1
        best = ours.oracle.get_best_trials(1)[0]
        assert ours.retrain_info.trial_id == best.trial_id
        assert hypermodel.calls[-1]["values"]["u"] == best.hyperparameters.values["u"]
        assert os.path.exists(os.path.join(ours.project_dir, "retrained.keras"))
        assert ours.get_retrained_model() is not None


class _Seen(keras.layers.Layer):
    """An identity layer whose weight `seen` counts the epochs its model trained.

    It is a weight, so keras-tuner's checkpoint saves it and a resumed Hyperband
    trial loads it: at any epoch it says how many epochs the weights had had.
    """

    def build(self, input_shape):
        self.seen = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="seen"
        )

    def call(self, x):
        return x


class _PerEpoch(Planted):
    """`Planted`, with `val_score` in each epoch's logs, as Keras logs `val_loss`.

    keras-tuner's `SaveBestEpoch` checkpoints a trial at its best epoch only when
    the objective is in the epoch logs (it checkpoints every epoch otherwise), so
    the checkpoint a resumed trial loads is its parent's best epoch. The callback
    runs before `SaveBestEpoch` and `History`: both see the value. It also counts
    the epoch in `_Seen` and records, per trial, the count the loaded weights
    had (`loaded`) and the count after each epoch (`seen`).
    """

    def __init__(self, score) -> None:
        super().__init__(score)
        self.loaded: dict[int, float] = {}
        self.seen: dict[int, list[float]] = {}

    def build(self, hp):
        hp.Int("u", 0, 99)
        model = keras.Sequential(
            [keras.Input((4,)), _Seen(), keras.layers.Dense(2, activation="softmax")]
        )
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return model

    def fit(self, hp, model, *args, **kwargs):
        call = len(self.calls)
        self.calls.append({"values": dict(hp.values), "epochs": kwargs.get("epochs")})
        seen = model.layers[0].seen
        self.loaded[call] = float(seen.numpy())
        self.seen[call] = []
        planted = self

        class Plant(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                seen.assign(seen + 1.0)
                planted.seen[call].append(float(seen.numpy()))
                logs["val_score"] = float(planted.score(hp.values, epoch))

        kwargs["callbacks"] = [Plant(), *(kwargs.get("callbacks") or ())]
        return model.fit(*args, **kwargs)


@pytest.mark.any_backend  # keras-tuner's bookkeeping; the fits are planted
class TestHyperbandEpochCount:
    """max_epochs=4, factor=2: three brackets, 15 trials, traced by hand.

    Bracket 2 runs first (4 trials of 1 epoch, 2 of 2 resuming, 1 of 4), then
    bracket 1: round 0 is 3 trials of epochs 0-1, round 1 is 2 trials
    resuming the best 2 of them for epochs 2-3; then bracket 0 (3 trials of
    4 epochs). The planted score makes bracket 1 win: its round-0 trials are
    best at their first epoch (best_step 0), so, the objective being in the
    epoch logs, their checkpoint is that epoch's weights: 1 epoch, not the 2
    they trained. The round-1 trial that resumed the best of them loads that
    checkpoint and is best at its second epoch (best_step 1: 2 epochs). The
    best model had trained 1 + 2 = 3 epochs: the retrain's count. (Not the
    last trial's `best_step + 1` = 2, nor `initial_epoch + best_step + 1` or
    the parent's epochs trained plus the child's = 4.) `_Seen` checks the
    trace against the weights themselves.
    """

    @staticmethod
    def score(values, epoch):
        u = values["u"] / 100
        if values.get("tuner/bracket") != 1:
            return 5.0 + u
        if values.get("tuner/round") == 0:
            return {0: 2.0, 1: 3.0}.get(epoch, 9.0) + u
        return {2: 1.5, 3: 1.0}.get(epoch, 9.0) + u  # the retrain's: 9

    def test_the_count_adds_the_rounds_the_best_trial_resumed(self, tmp_path):
        hypermodel = _PerEpoch(self.score)
        tuner = _search(
            tuners.Hyperband, tmp_path, hypermodel=hypermodel, max_epochs=4, factor=2
        )
        assert len(tuner.oracle.trials) == 15
        best = tuner.oracle.get_best_trials(1)[0]
        values = best.hyperparameters.values
        assert (values["tuner/bracket"], values["tuner/round"], best.best_step) == (
            1,
            1,
            1,
        )
        parent = tuner.oracle.get_trial(values["tuner/trial_id"])
        assert "tuner/trial_id" not in parent.hyperparameters.values
        assert parent.best_step == 0
        # The fits of the parent and of the best trial: the parent trained 2
        # epochs, but its checkpoint, loaded by the best trial, holds 1.
        (p,) = [
            i
            for i, c in enumerate(hypermodel.calls)
            if c["values"] == parent.hyperparameters.values
        ]
        (b,) = [i for i, c in enumerate(hypermodel.calls) if c["values"] == values]
        assert hypermodel.seen[p] == [1.0, 2.0]
        assert hypermodel.loaded[b] == 1.0
        assert hypermodel.seen[b] == [2.0, 3.0]
        # At its best epoch (best_step 1), the best model had trained 3 epochs.
        assert hypermodel.seen[b][best.best_step] == 3.0
        assert tuner.retrain_info.epochs == 3
        assert tuner.retrain_info.epochs_source == "best_step"
        retrain = hypermodel.calls[-1]
        assert retrain["epochs"] == 3
        # Built afresh: not from the resumed trial's checkpoint.
        assert "tuner/trial_id" not in retrain["values"]
        assert hypermodel.loaded[len(hypermodel.calls) - 1] == 0.0


class TestOverridesSave:
    """keras-tuner's tuner-level compile overrides: the retrain saves and reloads."""

    @pytest.mark.parametrize(
        "override",
        [
            {"optimizer": "adam_instance"},
            {"loss": "sparse_categorical_crossentropy"},
            {"metrics": ["accuracy"]},
            {"optimizer": "adam_instance", "loss": "sparse_categorical_crossentropy"},
        ],
    )
    def test_retrained_model_is_saved_and_reloads(self, tmp_path, override):
        override = {
            k: keras.optimizers.Adam(0.01) if v == "adam_instance" else v
            for k, v in override.items()
        }
        tuner = _search(tuners.RandomSearch, tmp_path, max_trials=1, **override)
        path = os.path.join(tuner.project_dir, "retrained.keras")
        assert tuner.retrain_info.model_path == path
        x, _ = _data(8, seed=3)
        expected = tuner.get_retrained_model().predict(x, verbose=0)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5)
        if "optimizer" in override:
            assert loaded.optimizer.learning_rate.numpy() == pytest.approx(0.01)
        reloaded = tuners.RandomSearch(
            Planted(),
            objective=OBJECTIVE,
            max_trials=1,
            directory=str(tmp_path),
            project_name="p",
            **override,
        )
        np.testing.assert_allclose(
            reloaded.get_retrained_model().predict(x, verbose=0), expected, rtol=1e-5
        )

    @pytest.mark.tensorflow_only
    def test_with_a_distribution_strategy(self, tmp_path):
        import tensorflow as tf

        tuner = _search(
            tuners.RandomSearch,
            tmp_path,
            max_trials=1,
            optimizer=keras.optimizers.Adam(0.01),
            distribution_strategy=tf.distribute.OneDeviceStrategy("/cpu:0"),
        )
        path = os.path.join(tuner.project_dir, "retrained.keras")
        assert tuner.retrain_info.model_path == path
        keras.saving.load_model(path)


def _folders_and_experiment(logs):
    """The folders in `logs`, after checking that its files hold nothing but
    the HParams experiment summary, written when the search ends."""
    from tensorboard.backend.event_processing.event_accumulator import (
        EventAccumulator,
    )

    files = [name for name in os.listdir(logs) if not (logs / name).is_dir()]
    assert len(files) == 1 and files[0].startswith("events.out.tfevents.")
    accumulator = EventAccumulator(str(logs))
    accumulator.Reload()
    assert accumulator.Tags()["tensors"] == ["_hparams_/experiment"]
    return sorted(name for name in os.listdir(logs) if (logs / name).is_dir())


class TestLogDirsPerTrial:
    def _callbacks(self, log_dir):
        return [
            CacheTimingCallback(log_dir=log_dir, verbose=0),
            EarlyStopping(monitor="loss", patience=5, log_dir=log_dir),
        ]

    def test_each_trial_writes_to_its_own_folder_and_the_retrain_to_retrain(
        self, tmp_path
    ):
        logs = tmp_path / "logs"
        hypermodel = Planted()
        tuner = _search(
            tuners.RandomSearch,
            tmp_path,
            hypermodel=hypermodel,
            max_trials=2,
            fit={"callbacks": self._callbacks(str(logs))},
        )
        ids = sorted(tuner.oracle.trials)
        *trials, retrain = hypermodel.calls
        for call, trial_id in zip(trials, ids, strict=True):
            assert call["log_dirs"] == [os.path.join(str(logs), trial_id)] * 2
        assert retrain["log_dirs"] == [os.path.join(str(logs), "retrain")] * 2
        # One folder per run; in the user's folder itself, once the search
        # has ended, only the HParams experiment summary.
        assert _folders_and_experiment(logs) == sorted([*ids, "retrain"])
        folders = [name for name in os.listdir(logs) if (logs / name).is_dir()]
        assert all(os.listdir(logs / name) for name in folders)

    def test_several_executions_get_one_subfolder_each(self, tmp_path):
        logs = tmp_path / "logs"
        hypermodel = Planted()
        tuner = _search(
            tuners.RandomSearch,
            tmp_path,
            hypermodel=hypermodel,
            max_trials=1,
            executions_per_trial=2,
            fit={"callbacks": self._callbacks(logs)},
        )
        (trial_id,) = tuner.oracle.trials
        seen = [call["log_dirs"][0] for call in hypermodel.calls]
        assert seen == [
            os.path.join(str(logs), trial_id, "execution0"),
            os.path.join(str(logs), trial_id, "execution1"),
            os.path.join(str(logs), "retrain"),
        ]

    def test_keras_tensorboard_gets_one_folder_per_trial_on_every_backend(
        self, tmp_path
    ):
        """keras-tuner moves it on TensorFlow only; a shared folder would
        draw every trial as one zig-zag line in the Scalars tab."""
        logs = tmp_path / "logs"
        board = keras.callbacks.TensorBoard(log_dir=str(logs))
        tuner = _search(
            tuners.RandomSearch, tmp_path, max_trials=2, fit={"callbacks": [board]}
        )
        ids = sorted(tuner.oracle.trials)
        assert _folders_and_experiment(logs) == sorted([*ids, "retrain"])
        for trial_id in ids:
            run = logs / trial_id / "execution0"
            assert os.listdir(run / "train"), run
        assert os.listdir(logs / "retrain" / "train")
        assert board.log_dir == str(logs)

    def test_the_users_callbacks_keep_their_folder(self, tmp_path):
        callbacks = self._callbacks(str(tmp_path / "logs"))
        _search(
            tuners.RandomSearch, tmp_path, max_trials=1, fit={"callbacks": callbacks}
        )
        assert all(c.log_dir == str(tmp_path / "logs") for c in callbacks)


class TestMixin:
    def test_on_a_users_own_tuner(self, tmp_path):
        class MyTuner(tuners.RetrainOnFullData, keras_tuner.Tuner):
            pass

        x, y = _data()
        hypermodel = Planted()
        tuner = MyTuner(
            keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=1, seed=1),
            hypermodel,
            directory=str(tmp_path),
        )
        assert list(inspect.signature(MyTuner.__init__).parameters)[:3] == [
            "self",
            "oracle",
            "hypermodel",
        ]
        tuner.search(x, y, epochs=2, validation_data=_data(16, 1), verbose=0)
        assert tuner.retrain_info.samples == 48

    def test_a_users_tuner_without_hypermodel_raises_as_keras_tuners(self):
        class MyTuner(tuners.RetrainOnFullData, keras_tuner.Tuner):
            pass

        oracle = keras_tuner.oracles.RandomSearchOracle(OBJECTIVE, max_trials=1)
        with pytest.raises(ValueError, match="Received `hypermodel=None`"):
            MyTuner(oracle)
        with pytest.raises(ValueError, match="Received `hypermodel=None`"):
            MyTuner(oracle=oracle, hypermodel=None)

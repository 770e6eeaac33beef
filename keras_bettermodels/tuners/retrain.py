"""The retrain on all the data after a search, as a mixin for any keras-tuner tuner."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import math
import os
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import keras
import keras_tuner
from keras_tuner.engine.trial import TrialStatus

from keras_bettermodels import _snapshot, _validation
from keras_bettermodels._compat import tuner as _kt
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels.tuners import _artefacts, _data

__all__ = ["RetrainInfo", "RetrainOnFullData"]

RETRAINED_MODEL = "retrained.keras"
RETRAINED_INFO = "retrained.json"
FIT_RESULT = "fit_result.json"  # in each trial's directory
_FORMAT = 1
_CHIEF_POLL_SECONDS = 0.5

# RetrainInfo.epochs_source
BEST_STEP = "best_step"
SEARCH_EPOCHS = "search epochs"
RETRAIN_EPOCHS = "retrain_epochs"


@dataclass(frozen=True)
class RetrainInfo:
    """What the retrain on the full data saw.

    Attributes:
        trial_id: the best trial, whose hyperparameters were retrained.
        hyperparameters: their values, `{name: value}`.
        score: the best trial's objective value in the search.
        epochs: the epochs the retrain was asked to run.
        epochs_source: where `epochs` came from: `"best_step"` (the best
            trial's best epoch count, `best_step + 1`), `"search epochs"`
            (the search's `epochs`, when the HyperModel's `fit` returned no
            History) or `"retrain_epochs"` (the tuner's argument).
        epochs_run: the epochs in the History the fit returned (fewer than
            `epochs` if a callback stopped it), or `None` without a History.
        samples: the samples per epoch: `train_samples + validation_samples`;
            `None` for `tf.data` datasets, whose size is known only by
            reading them (see `batches`).
        train_samples: of which training samples.
        validation_samples: of which validation samples; `0` when there was
            no validation data.
        batches: batches per epoch of `tf.data` datasets, when their
            cardinality is known; otherwise `None`.
        data: how the validation data was added: `"arrays"`,
            `"validation_split"`, `"dataset"` or `"training data only"`.
        dropped_callbacks: the callbacks left out because they need
            validation data, such as `"EarlyStopping(monitor='val_loss')"`.
        model_path: where the retrained model was saved, or `None` if saving
            it failed.
        skipped: why the search's retrain was skipped (then nothing was
            trained, and the other fields describe the best trial only), or
            `None` when it ran.
    """

    trial_id: str
    hyperparameters: dict[str, Any]
    score: float | None
    epochs: int
    epochs_source: str
    epochs_run: int | None
    samples: int | None
    train_samples: int | None
    validation_samples: int | None
    batches: int | None
    data: str
    dropped_callbacks: tuple[str, ...] = field(default=())
    model_path: str | None = None
    skipped: str | None = None

    @classmethod
    def skipped_search_retrain(cls, reason: str, trial: Any = None) -> RetrainInfo:
        """The info of a retrain that was skipped, naming the best trial if any."""
        return cls(
            trial_id="" if trial is None else str(trial.trial_id),
            hyperparameters={} if trial is None else dict(trial.hyperparameters.values),
            score=None if trial is None or trial.score is None else float(trial.score),
            epochs=0,
            epochs_source="",
            epochs_run=None,
            samples=None,
            train_samples=None,
            validation_samples=None,
            batches=None,
            data="",
            skipped=reason,
        )

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> RetrainInfo:
        """Rebuilds a `RetrainInfo` from `dataclasses.asdict`'s output."""
        config = dict(config)
        config["dropped_callbacks"] = tuple(config.get("dropped_callbacks", ()))
        return cls(**config)


if TYPE_CHECKING:  # the mixin's `super()` is a keras-tuner Tuner's
    from keras_tuner import Tuner as _TunerBase
else:
    _TunerBase = object


class RetrainOnFullData(_TunerBase):
    """Mixin for a keras-tuner `Tuner`: retrains the best hyperparameters on all data.

    Put it before a keras-tuner tuner class, `class MyTuner(RetrainOnFullData,
    keras_tuner.Tuner)`: the tuner keeps every argument and method, and gains
    the keyword-only arguments below. After the search, `search` retrains the
    best hyperparameters once on training + validation data, the way
    scikit-learn's `RandomizedSearchCV(refit=True)` does:

    - arrays and tensors (also dicts / lists of them) are concatenated, and
      sample weights with them;
    - `tf.data` datasets are concatenated (training batches, then validation
      batches);
    - with `validation_split`, the whole `x` / `y` is used, with no split.

    The retrain builds the model with the HyperModel (and the tuner-level
    `optimizer`, `loss`, `metrics` and `distribution_strategy`, as a trial
    does) and trains it from scratch through the HyperModel's
    `fit(hp, model, x, y, **kwargs)`, so tuned fit arguments (batch size, ...)
    apply, and holds no data out. It runs for the best trial's best epoch
    count, `best_step + 1` (`Hyperband` adds the rounds the trial resumed
    from), unless `retrain_epochs` says otherwise. Callbacks that need validation
    data (`EarlyStopping`, `ReduceLROnPlateau` or best-only `ModelCheckpoint`
    on `val_*` metrics) are left out, with a note; the others run once more,
    for the retrain.

    Logs: during the search, keras-tuner points a `keras.callbacks.TensorBoard`
    at `<log_dir>/<trial_id>/execution<n>`; this mixin points each
    keras-bettermodels callback with a `log_dir` at `<log_dir>/<trial_id>`
    (`<log_dir>/<trial_id>/execution<n>` when `executions_per_trial > 1`), so
    TensorBoard shows one run per trial, and both kinds at
    `<log_dir>/retrain` for the retrain. Nothing is written to `<log_dir>`
    itself during a search.

    `get_retrained_model()` returns the result; it is also saved as
    `retrained.keras` in the project directory, so a reloaded project has it.
    `get_best_models()` is unchanged: it returns the search's models, trained
    on the training split only.

    The search's retrain is skipped, with one message saying why and how to
    retrain, and `retrain_info.skipped` holding the reason, when it could not
    mean anything: a HyperModel whose `fit` requires `validation_data` (it
    scores itself on it), or whose `fit` returned a score instead of a History,
    or a tuner whose `run_trial` trains by itself (keras.io's custom-loop
    guides), unless `retrain_epochs` is given for the last two. A tuner with no
    `hypermodel` (a `run_trial` override) skips it with a note, not a warning.
    `search` never fails because of its retrain: an error there is a warning,
    the trials are kept, and `retrain(...)` can be called again.

    Without validation data there is nothing to add: the search warns and
    retrains on the training data it has. Data to which the validation data
    cannot be added (a generator, a `PyDataset`, an infinite dataset) is
    searched as keras-tuner searches it, and the retrain is skipped with a
    warning: call `retrain(...)` with the whole data set instead. Validation
    data whose shapes do not match the training data's is a `ValueError`
    before the first trial. A search rerun on a finished project
    (`overwrite=False`) reuses the saved retrained model instead of training it
    again; call `retrain(...)` to train it anew.

    In distributed tuning (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
    `KERASTUNER_ORACLE_PORT`) only the chief retrains, once, after every
    trial has ended.

    Args:
        *args: the positional arguments of the keras-tuner tuner.
        retrain_on_full_data: whether `search` ends with the retrain on
            training + validation data. With `False`, call `retrain(...)`
            yourself. Defaults to `True`.
        retrain_epochs: epochs of the retrain, a positive integer; `None`
            uses the best trial's best epoch count (see above). Defaults to
            `None`.
        **kwargs: the keyword arguments of the keras-tuner tuner:
            `directory`, `project_name`, `overwrite`, `executions_per_trial`,
            `optimizer`, ...

    Attributes:
        retrain_info: a `RetrainInfo` saying what the last retrain saw
            (samples, epochs, hyperparameters), or `None` before any retrain.
            A reloaded project reads it back from `retrained.json`.

    Raises:
        TypeError: for a `retrain_on_full_data` that is not a bool or a
            `retrain_epochs` that is not an integer.
        ValueError: for a `retrain_epochs` below 1; for `hypermodel=None`
            without a `run_trial` override, as keras-tuner.

    Example:

    ```python
    import keras_tuner
    from keras_bettermodels.tuners import RetrainOnFullData

    class MyTuner(RetrainOnFullData, keras_tuner.Tuner):
        pass

    tuner = MyTuner(
        oracle=keras_tuner.oracles.RandomSearchOracle("val_accuracy", max_trials=5),
        hypermodel=build,
    )
    tuner.search(x_train, y_train, epochs=10, validation_data=(x_val, y_val))
    model = tuner.get_retrained_model()   # trained on x_train + x_val
    ```
    """

    def __init__(
        self,
        *args: Any,
        retrain_on_full_data: bool = True,
        retrain_epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.retrain_on_full_data = _validation.check_bool(
            "retrain_on_full_data", retrain_on_full_data
        )
        self.retrain_epochs = (
            None
            if retrain_epochs is None
            else _validation.check_int("retrain_epochs", retrain_epochs, minimum=1)
        )
        bound = _bind_parent_arguments(type(self), args, kwargs)
        if bound is not None:
            _kt.check_hypermodel(
                type(self), RetrainOnFullData, *_hypermodel_and_objective(bound)
            )
        self._retrained_model: keras.Model | None = None
        self.retrain_info: RetrainInfo | None = None
        # Before keras-tuner reloads or writes the project: a kill while it
        # writes `oracle.json` or a `trial.json` must not leave it empty.
        _kt.write_project_files_whole()
        super().__init__(*args, **kwargs)
        _kt.settle_trials_after_reload(self.oracle)
        _kt.restore_trial_order(self.oracle)
        saved = self._read_saved_retrain()
        self.retrain_info = None if saved is None else saved[0]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls):
            cls.__init__ = _init_with_signature(cls)  # type: ignore[method-assign]

    # ------------------------------------------------------------------ search

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Runs the search, then retrains the best hyperparameters on all data.

        Takes the arguments of `model.fit`, as `keras_tuner.RandomSearch.search`
        does. With `retrain_on_full_data=True` the data is checked before the
        first trial, so that problems show at once, not after hours of search:
        validation data whose shapes do not match is an error; data to which
        the validation data cannot be added (a generator, a `PyDataset`, an
        infinite dataset, ...) is searched as keras-tuner searches it, with a
        warning that the retrain is skipped (call `retrain(...)` with the whole
        data set instead).

        Args:
            *fit_args: positional arguments for `fit`: `x`, `y`, ...
            **fit_kwargs: keyword arguments for `fit`: `epochs`,
                `validation_data` or `validation_split`, `callbacks`, ...

        Raises:
            ValueError: for validation data whose structure or per-sample
                shapes do not match the training data's, when retraining is
                asked.
        """
        verbose = self._verbose(fit_args, fit_kwargs)
        skip = None
        if self.retrain_on_full_data:
            skip = self._skip_reason_before(fit_args, fit_kwargs, verbose)
        if _kt.is_chief_oracle():
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            _serve_as_chief(self.oracle, verbose)
        else:
            # keras-tuner first writes `<tuner_id>.json`, by which a project
            # is reloaded, after the first trial: a kill before left a
            # project that restarted from scratch, over its completed trial.
            self.save()
            super().search(*fit_args, **fit_kwargs)
        if not self.retrain_on_full_data or self._is_worker():
            return
        trial = self._best_completed_trial()
        if skip is None and trial is not None:
            skip = self._skip_reason_after(trial)
        if skip is not None:
            self.retrain_info = RetrainInfo.skipped_search_retrain(skip, trial)
            return
        try:
            self._retrain(fit_args, fit_kwargs, after_search=True)
        except Exception as error:  # the search's results are kept
            reason = (
                f"the retrain raised {type(error).__name__}: {error}. The search's "
                "trials are kept; fix the cause and call `retrain(...)` with the "
                "arguments given to `search`."
            )
            warnings.warn(
                f"The retrain on the full data failed: {reason}", stacklevel=2
            )
            self.retrain_info = RetrainInfo.skipped_search_retrain(reason, trial)

    def _skip_reason_before(
        self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any], verbose: Any
    ) -> str | None:
        """Why the search's retrain cannot run, known before the first trial.

        Said at once (a warning, or a note where nobody asked for a retrain),
        so it does not surprise after hours of search. `None`: it can run.
        """
        try:
            plan = _data.full_training_data(fit_args, fit_kwargs, concatenate=False)
        except _data.CannotCombine as error:
            reason = str(error)
            if not self._is_worker():
                warnings.warn(
                    f"The retrain on the full data will be skipped: {reason}",
                    stacklevel=3,
                )
            return reason
        if self._is_worker():
            return "this process is a worker of a distributed search"
        trains_by_itself = _trains_by_itself(type(self))
        if self.hypermodel is None:
            reason = (
                "the tuner has no `hypermodel` to build the best hyperparameters with"
            )
            if trains_by_itself:  # keras-tuner's custom-tuner pattern: a note
                _say(
                    verbose, f"Note: the retrain on the full data is skipped: {reason}."
                )
            else:
                warnings.warn(
                    f"The retrain on the full data is skipped: {reason}. Pass "
                    "`retrain_on_full_data=False` to silence this warning.",
                    stacklevel=3,
                )
            return reason
        fit_name = f"`{type(self.hypermodel).__name__}.fit`"
        if _requires_validation_data(self.hypermodel):
            reason = (
                f"{fit_name} requires `validation_data`: it scores the model on "
                "it, and a retrain on the full data holds none out. To retrain, "
                "give it a default (`validation_data=None`) that it handles, and "
                "pass `retrain_epochs=` to the tuner"
            )
        else:
            if plan.kind == _data.TRAINING_ONLY:
                warnings.warn(
                    "No validation data (`validation_data` or `validation_split`): "
                    "the retrain after the search has nothing to add, and retrains "
                    "the best hyperparameters on the training data only. Pass "
                    "validation data to `search`, or `retrain_on_full_data=False` "
                    "to skip the retrain.",
                    stacklevel=3,
                )
            return None
        warnings.warn(
            f"The retrain on the full data will be skipped: {reason}; or "
            "`retrain_on_full_data=False` to silence this warning.",
            stacklevel=3,
        )
        return reason

    def _skip_reason_after(self, trial: Any) -> str | None:
        """Why the retrain cannot run, known once the trials have run."""
        if self.retrain_epochs is not None:
            return None
        returned_history = self._returned_history(trial)
        if returned_history is None and _trains_by_itself(type(self)):
            reason = (
                f"`{type(self).__name__}.run_trial` trains by itself, so the "
                "search kept no epoch count to retrain for. To retrain through "
                f"`{type(self.hypermodel).__name__}.fit`, pass `retrain_epochs=` "
                "to the tuner"
            )
        elif returned_history is False:
            reason = (
                f"`{type(self.hypermodel).__name__}.fit` returned a score, not a "
                "History, so the search kept no epoch count to retrain for. To "
                "retrain, pass `retrain_epochs=` to the tuner (with a `fit` that "
                "accepts `validation_data=None`)"
            )
        else:
            return None
        warnings.warn(
            f"The retrain on the full data is skipped: {reason}.", stacklevel=3
        )
        return reason

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Runs a trial, as `keras_tuner.Tuner.run_trial`, and notes its result type.

        Writes `fit_result.json` in the trial's directory: whether the
        HyperModel's `fit` returned a History, which tells the retrain whether
        the trial's `best_step` is an epoch count.
        """
        results = super().run_trial(trial, *args, **kwargs)
        items = results if isinstance(results, list) else [results]
        histories = [r for r in items if isinstance(r, keras.callbacks.History)]
        _check_objective_logged(self.oracle.objective, histories)
        _kt.save_json(
            os.path.join(self.get_trial_dir(trial.trial_id), FIT_RESULT),
            {
                "returned_history": bool(items) and len(histories) == len(items),
                "epochs_run": [len(h.epoch) for h in histories],
            },
        )
        return results

    # ----------------------------------------------------------------- retrain

    def retrain(self, *fit_args: Any, **fit_kwargs: Any) -> keras.Model:
        """Retrains the best hyperparameters on training + validation data.

        Takes the same arguments as `search`, for a search run with
        `retrain_on_full_data=False` (or to retrain again). Without validation
        data, the data given is taken to be the whole data set: pass all of it
        (for example a generator of everything, which cannot be combined with
        validation data automatically).

        Args:
            *fit_args: positional arguments for `fit`, as for `search`.
            **fit_kwargs: keyword arguments for `fit`, as for `search`.

        Returns:
            The retrained model, which `get_retrained_model()` also returns.

        Raises:
            RuntimeError: when no trial has completed, the tuner has no
                hypermodel, or this process is a worker of a distributed
                search (only the chief retrains).
            TypeError: for data to which the validation data cannot be added
                (a generator, a `PyDataset`, ...).
            ValueError: for validation data whose shapes do not match, or an
                infinite dataset with validation data.
        """
        if self._is_worker():
            raise RuntimeError(
                "Only the chief of a distributed search retrains (its oracle "
                f"holds the results); this process is worker {self.tuner_id!r}. "
                "Call `retrain(...)` in the process with KERASTUNER_TUNER_ID=chief."
            )
        if self.hypermodel is None:
            raise RuntimeError(
                "`retrain` needs the tuner's `hypermodel` to build the best "
                "hyperparameters, and this tuner has none."
            )
        if _requires_validation_data(self.hypermodel):
            raise RuntimeError(
                f"`{type(self.hypermodel).__name__}.fit` requires "
                "`validation_data`: it scores the model on it, and a retrain on "
                "the full data holds none out. Give it a default "
                "(`validation_data=None`) that it handles, then call `retrain`."
            )
        model = self._retrain(fit_args, fit_kwargs, after_search=False)
        assert model is not None  # only a search's retrain may be skipped
        return model

    def get_retrained_model(self) -> keras.Model:
        """Returns the model retrained on the full data.

        Unlike `get_best_models()`, whose models were trained on the training
        split during the search, this one was trained again, from scratch, on
        training + validation data with the best hyperparameters. A reloaded
        project (`overwrite=False`) loads it from `retrained.keras`.

        Returns:
            The retrained `keras.Model`.

        Raises:
            RuntimeError: when there is no retrained model: the search ran
                with `retrain_on_full_data=False` and `retrain(...)` was not
                called, or the saved model is not the one its info describes
                (the message says which, and that the next `search` retrains).
        """
        if self._retrained_model is not None:
            info = self.retrain_info
            if info is not None and info.skipped is None:
                self._check_of_the_best(info)
            return self._retrained_model
        saved = self._read_saved_retrain(mismatch="raise")
        skipped = None if self.retrain_info is None else self.retrain_info.skipped
        if skipped is not None and (saved is None or not self._saved_is_best(saved[0])):
            raise RuntimeError(
                f"There is no retrained model: the search's retrain was skipped: "
                f"{skipped.rstrip('.')}. Call `tuner.retrain(x, y, epochs=..., "
                "validation_data=...)` with the arguments you gave `search` where "
                "it can run, then `get_retrained_model()`."
            )
        if saved is None or not _kt.exists(self._retrained_path()):
            raise RuntimeError(
                "There is no retrained model: the search ran with "
                "`retrain_on_full_data=False`, or has not run. Call "
                "`tuner.retrain(x, y, epochs=..., validation_data=...)` with "
                "the arguments you gave `search`, then `get_retrained_model()`. "
                f"(Looked for {self._retrained_path()}.)"
            )
        self._check_of_the_best(saved[0])
        try:
            model = self._load_saved(saved)
        except _UNLOADABLE as error:
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise RuntimeError(
                f"The retrained model {self._retrained_path()} does not load into "
                f"the model of the hyperparameters {self._info_path()} names "
                f"({type(error).__name__}: {first_line}). Run `search` again (it "
                "retrains), or call `retrain(...)`, before `get_retrained_model()`."
            ) from error
        self._retrained_model = model
        self.retrain_info = saved[0]
        return model

    def _check_of_the_best(self, info: RetrainInfo) -> None:
        """A `RuntimeError` for a retrain that is not of the current best trial.

        A later search (`overwrite=False`, more trials) that found a better
        trial and died before its retrain was saved leaves the previous
        search's retrained model: never returned as if it were the best's.
        """
        if self._saved_is_best(info):
            return
        best = self._best_completed_trial()
        now = (
            "no trial has completed"
            if best is None
            else f"the best trial is trial {best.trial_id} "
            f"({_describe_values(self._retrain_hyperparameters(best).values)}, "
            f"{self.oracle.objective.name}={_number(best.score)})"
        )
        raise RuntimeError(
            f"The retrained model {self._retrained_path()} is of trial "
            f"{info.trial_id} ({_describe_values(info.hyperparameters)}, "
            f"{self.oracle.objective.name}={_number(info.score)}), but {now}: a "
            "later search found it and did not finish its retrain. Run `search` "
            "again (it retrains), or call `retrain(...)`, before "
            "`get_retrained_model()`."
        )

    def _load_saved(
        self, saved: tuple[RetrainInfo, dict[str, Any], Any]
    ) -> keras.Model:
        """Builds the saved retrain's model and loads its weights (and optimizer)."""
        _, hp_config, build_config = saved
        hp = keras_tuner.HyperParameters.from_config(hp_config)
        model = _kt.try_build(self, hp)
        if not model.built and build_config:
            model.build_from_config(build_config)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built and model.built:
            # Loads the optimizer's state too, so that training can go on.
            optimizer.build(model.trainable_variables)
        model.load_weights(self._retrained_path())
        return model

    def _retrain(
        self,
        fit_args: tuple[Any, ...],
        fit_kwargs: dict[str, Any],
        *,
        after_search: bool,
    ) -> keras.Model | None:
        verbose = self._verbose(fit_args, fit_kwargs)
        trial = self._best_completed_trial()
        if trial is None:
            message = (
                "No trial has completed, so there are no best hyperparameters "
                "to retrain."
            )
            if after_search:
                warnings.warn(f"{message} The retrain is skipped.", stacklevel=3)
                return None
            raise RuntimeError(message + " Run `search(...)` first.")
        named = _data.fit_arguments(fit_args, fit_kwargs)
        epochs, source = self._epochs_for(trial, named)
        plan = _data.full_training_data(fit_args, fit_kwargs, concatenate=False)
        if after_search and self._already_retrained(trial, epochs, plan):
            try:
                model = self.get_retrained_model()
            except RuntimeError as error:  # a pair that does not load: retrained
                warnings.warn(f"{error} Retraining it now.", stacklevel=3)
            else:
                _say(
                    verbose,
                    f"Reusing the model retrained on the best hyperparameters "
                    f"(trial {trial.trial_id}) from {self._retrained_path()}; "
                    "call `retrain(...)` to train it again.",
                )
                return model

        full = _data.full_training_data(fit_args, fit_kwargs)
        kept, dropped = _data.split_callbacks(named.get("callbacks"))
        callbacks = _kt.deepcopy_callbacks(self, kept)
        _retrain_tensorboard_dirs(callbacks)
        dropped_names = tuple(_data.describe_callback(c) for c in dropped)
        for name in dropped_names:
            _say(
                verbose,
                f"Note: {name} is left out of the retrain: it needs validation "
                "data, and the retrain holds none out.",
            )
        for note in full.notes:
            _say(verbose, f"Note: {note}")
        if full.kind == _data.TRAINING_ONLY and not after_search:
            _say(
                verbose,
                "Note: no validation data given: retraining on the data given "
                "as the whole data set.",
            )
        _say(
            verbose,
            f"Retraining the best hyperparameters (trial {trial.trial_id}, "
            f"{self.oracle.objective.name}={_number(trial.score)}) on "
            f"{_describe_data(full)} for {epochs} epoch{'s' * (epochs != 1)} "
            f"({_describe_source(source, self._best_epoch_count(trial)[1])}).",
        )

        kwargs = dict(full.kwargs)
        kwargs.pop("initial_epoch", None)
        kwargs["epochs"] = epochs
        kwargs["callbacks"] = callbacks
        hp = self._retrain_hyperparameters(trial)
        model = _kt.try_build(self, hp)
        results = self.hypermodel.fit(hp, model, *full.args, **kwargs)
        epochs_run = (
            len(results.epoch) if isinstance(results, keras.callbacks.History) else None
        )
        _check_finite(model, results)
        self._retrained_model = model
        self._compile_for_saving(model, hp)
        info = RetrainInfo(
            trial_id=str(trial.trial_id),
            hyperparameters=dict(hp.values),
            score=None if trial.score is None else float(trial.score),
            epochs=epochs,
            epochs_source=source,
            epochs_run=epochs_run,
            samples=full.samples,
            train_samples=full.train_samples,
            validation_samples=_validation_samples(full),
            batches=full.batches,
            data=full.kind,
            dropped_callbacks=dropped_names,
            model_path=self._retrained_path(),
        )
        info = self._save_retrained(model, hp, info)
        self.retrain_info = info
        if info.model_path is not None:
            _say(verbose, f"Retrained model saved to {info.model_path}")
        return model

    def _best_completed_trial(self) -> Any:
        for trial in self.oracle.get_best_trials(1):
            if trial.status == TrialStatus.COMPLETED:
                return trial
        return None

    def _epochs_for(self, trial: Any, named: dict[str, Any]) -> tuple[int, str]:
        """The retrain's epochs, and where they come from."""
        if self.retrain_epochs is not None:
            return self.retrain_epochs, RETRAIN_EPOCHS
        best_step = int(trial.best_step or 0)
        if best_step > 0 or self._returned_history(trial) is True:
            return self._best_epoch_count(trial)[0], BEST_STEP
        epochs = named.get("epochs", 1)
        initial = named.get("initial_epoch", 0) or 0
        return max(1, int(epochs) - int(initial)), SEARCH_EPOCHS

    def _best_epoch_count(self, trial: Any) -> tuple[int, str]:
        """The epochs the best trial's model had trained at its best epoch.

        Returns:
            `(count, how)`: `how` says how the count was derived, for the
            console. A tuner whose trials resume other trials' models
            (`Hyperband`) adds theirs.
        """
        best_step = int(trial.best_step or 0)
        return best_step + 1, (
            f"the best trial's best epoch count, best_step + 1 = {best_step} + 1"
        )

    def _retrain_hyperparameters(self, trial: Any) -> Any:
        """The hyperparameters the retrain builds and fits the model with."""
        return trial.hyperparameters

    def _compile_for_saving(self, model: keras.Model, hp: Any) -> None:
        """Makes the model's compile config serializable, so that it saves.

        keras-tuner's tuner-level `optimizer` or `loss` (without `metrics`)
        recompile the model with its `CompileMetrics` container as a metric,
        which cannot be serialized (`get_config` raises
        `NotImplementedError`), so the model would not save. This compiles
        it again with the hypermodel's own metrics, keeping the trained
        optimizer (its state) and the override loss.
        """
        try:
            model.get_compile_config()
            return
        except NotImplementedError:
            pass
        own = self.hypermodel.build(hp)
        config = keras.saving.deserialize_keras_object(own.get_compile_config() or {})
        config["optimizer"] = model.optimizer
        config["loss"] = model.loss
        if self.metrics:
            config["metrics"] = self.metrics
        strategy = self.distribution_strategy
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model.compile(**config)

    def _configure_tensorboard_dir(
        self, callbacks: list[Any], trial: Any, execution: int = 0
    ) -> None:
        """Gives each trial's callbacks their own log folder.

        keras-tuner's hook (`_compat.tuner.TENSORBOARD_DIR_HOOK`) points a
        `keras.callbacks.TensorBoard` at `<log_dir>/<trial_id>/execution<n>`
        on TensorFlow; this does the same on the other backends, and points
        each keras-bettermodels callback with a `log_dir` at
        `<log_dir>/<trial_id>`, or `<log_dir>/<trial_id>/execution<n>` when
        the tuner runs several executions per trial.
        """
        ours = [c for c in callbacks if _logs_itself(c)]
        super()._configure_tensorboard_dir(callbacks, trial, execution)
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
            if self.executions_per_trial > 1:
                parts.append(f"execution{execution}")
            callback.log_dir = os.path.join(*parts)

    def _returned_history(self, trial: Any) -> bool | None:
        """Whether the trial's fit returned a History; `None` if not recorded."""
        path = os.path.join(self.get_trial_dir(trial.trial_id), FIT_RESULT)
        if not _kt.exists(path):
            return None
        try:
            return bool(_kt.load_json(path).get("returned_history"))
        except _kt.DamagedProjectFile as error:  # cut by an older version
            warnings.warn(f"{error} Read as not recorded.", stacklevel=3)
            return None

    def _verbose(self, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]) -> Any:
        try:
            return _data.fit_arguments(fit_args, fit_kwargs).get("verbose", "auto")
        except TypeError:
            return "auto"

    # ----------------------------------------------------------- persistence

    def _retrained_path(self) -> str:
        return os.path.join(self.project_dir, RETRAINED_MODEL)

    def _info_path(self) -> str:
        return os.path.join(self.project_dir, RETRAINED_INFO)

    def _save_retrained(
        self, model: keras.Model, hp: Any, info: RetrainInfo
    ) -> RetrainInfo:
        """Saves the model and its info as one unit (see `_artefacts`)."""
        path = self._retrained_path()
        build_config = model.get_build_config() if model.built else None
        document = {
            "format": _FORMAT,
            # Relative to the project: a moved or copied project still finds it.
            "info": {**asdict(info), "model_path": RETRAINED_MODEL},
            "hyperparameters": hp.get_config(),
            "build_config": build_config,
        }
        try:
            if _is_local(path):
                _artefacts.save(path, self._info_path(), model.save, document)
            else:
                _save_model(model, path)
        except Exception as error:  # the model in memory is kept
            warnings.warn(
                f"The retrained model could not be saved to {path}: {error!r}. "
                "`get_retrained_model()` returns it in this process only.",
                stacklevel=4,
            )
            return RetrainInfo.from_dict({**asdict(info), "model_path": None})
        if not _is_local(path):
            _save_json(self._info_path(), document)
        return info

    def _read_saved_retrain(
        self, mismatch: str = "warn"
    ) -> tuple[RetrainInfo, dict[str, Any], Any] | None:
        """The saved retrain's info, hyperparameters and build config.

        A model that does not match its info is a warning and `None` (a
        search then retrains), or with `mismatch="raise"` a `RuntimeError`
        that says so (`get_retrained_model`: not "no retrained model").
        """
        path = self._info_path()
        try:
            if _is_local(path):
                document = _artefacts.read(self._retrained_path(), path)
                if document is None:
                    return None
            elif _kt.exists(path):
                document = _kt.load_json(path)
            else:
                return None
            info = RetrainInfo.from_dict(document["info"])
            if info.model_path is not None:  # where this project keeps it now
                info = RetrainInfo.from_dict(
                    {**asdict(info), "model_path": self._retrained_path()}
                )
            return info, document["hyperparameters"], document.get("build_config")
        except _artefacts.ArtefactError as error:
            if mismatch == "raise":
                raise RuntimeError(
                    f"{error} Run `search` again (it retrains), or call "
                    "`retrain(...)`, before `get_retrained_model()`."
                ) from error
            warnings.warn(str(error), stacklevel=3)
            return None
        except (KeyError, TypeError, ValueError) as error:
            warnings.warn(f"Ignoring an unreadable {path}: {error!r}", stacklevel=3)
            return None

    def _already_retrained(self, trial: Any, epochs: int, plan: _data.FullData) -> bool:
        saved = self._read_saved_retrain()
        if saved is None or not _kt.exists(self._retrained_path()):
            return False
        info = saved[0]
        return (
            self._saved_is_best(info, trial)
            and info.epochs == epochs
            and info.data == plan.kind
            and info.samples == plan.samples
            and info.batches == plan.batches
        )

    def _saved_is_best(self, info: RetrainInfo, best: Any = None) -> bool:
        """Whether a saved retrain is of the best trial, or of one tied with it.

        The trial must also have the hyperparameters the retrain trained: a
        trial id alone could be another search's.
        """
        best = best if best is not None else self._best_completed_trial()
        if best is None:
            return False
        if info.trial_id == str(best.trial_id):
            saved = best
        else:
            trials = getattr(self.oracle, "trials", None)
            saved = trials.get(info.trial_id) if isinstance(trials, dict) else None
            if (
                saved is None
                or saved.status != TrialStatus.COMPLETED
                or saved.score is None
                or saved.score != best.score
            ):
                return False
        trained = dict(self._retrain_hyperparameters(saved).values)
        return _same_values(info.hyperparameters, trained)


# ---------------------------------------------------------------- helpers


def _check_finite(model: keras.Model, results: Any) -> None:
    """A `RuntimeError` for a retrain that diverged: never saved, never reused."""
    bad = _snapshot.first_nonfinite_variable(model)
    if bad is None:
        return
    where = ""
    if isinstance(results, keras.callbacks.History):
        for epoch, loss in enumerate(results.history.get("loss", [])):
            if not math.isfinite(float(loss)):
                where = f" at epoch {epoch + 1} (loss={float(loss)})"
                break
    raise RuntimeError(
        f"The retrain on the full data diverged{where}: {bad.path} is not finite. "
        "It is not saved, and the project keeps no retrained model from it. Look "
        "for bad samples in the validation data (the trials never trained on "
        "them), or retrain with a lower learning rate."
    )


def _check_objective_logged(objective: Any, histories: list[Any]) -> None:
    """A `FatalValueError` (it ends the search) for an objective no epoch logged.

    keras-tuner would fail every trial with a bare `KeyError: 'val_acc'`, print
    "Best val_acc So Far: None" and go on. Our `EarlyStopping` names the
    metrics that were logged for a wrong `monitor`; so does this.
    """
    objectives = getattr(objective, "objectives", None) or [objective]
    for history in histories:
        logged = sorted(history.history)
        for name in (getattr(o, "name", None) for o in objectives):
            if not logged or name is None or name in logged:
                continue
            close = difflib.get_close_matches(name, logged, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise keras_tuner.errors.FatalValueError(
                f"The objective {name!r} is not among the metrics the model "
                f"logged: {', '.join(map(repr, logged))}.{hint} Pass "
                "`objective=` one of them (or a `keras_tuner.Objective` naming "
                "one)."
            )


def _trains_by_itself(cls: type) -> bool:
    """Whether the user's tuner class overrides `run_trial` (keras.io's custom loop)."""
    run_trial = _kt.effective_run_trial(cls, RetrainOnFullData)
    module = getattr(run_trial, "__module__", "") or ""
    return run_trial is not None and not module.startswith(
        ("keras_tuner", "keras_bettermodels")
    )


def _requires_validation_data(hypermodel: Any) -> bool:
    """Whether the HyperModel's `fit` cannot be called without `validation_data`."""
    try:
        parameters = inspect.signature(hypermodel.fit).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get("validation_data")
    return (
        parameter is not None
        and parameter.default is inspect.Parameter.empty
        and parameter.kind
        in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def _parent_init(cls: type) -> Any:
    """The `__init__` the mixin hands over to: the tuner's own."""
    mro = cls.__mro__
    for klass in mro[mro.index(RetrainOnFullData) + 1 :]:
        if "__init__" in vars(klass):
            return vars(klass)["__init__"]
    return object.__init__


def _hypermodel_and_objective(bound: inspect.BoundArguments) -> tuple[Any, ...]:
    """`(hypermodel,)`, and the objective a built-in tuner's oracle reads."""
    hypermodel = bound.arguments.get("hypermodel")
    if "objective" not in bound.signature.parameters:
        return (hypermodel,)  # a user's Tuner: its oracle is built already
    default = bound.signature.parameters["objective"].default
    return hypermodel, bound.arguments.get("objective", default)


def _bind_parent_arguments(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> inspect.BoundArguments | None:
    """Binds the tuner's arguments, or `None` if they do not bind (the tuner
    then raises its own `TypeError`)."""
    try:
        return inspect.signature(_parent_init(cls)).bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return None


def _init_with_signature(cls: type) -> Any:
    """An `__init__` for `cls` whose signature is the tuner's plus ours.

    `inspect.signature(RandomSearch.__init__)` then shows keras-tuner's
    arguments in their positions, and the mixin's keyword-only ones after.
    """

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        super(cls, self).__init__(*args, **kwargs)  # type: ignore[arg-type]

    parent = inspect.signature(_parent_init(cls))
    ours = inspect.signature(RetrainOnFullData.__init__).parameters
    params = [p for p in parent.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params += [ours["retrain_on_full_data"], ours["retrain_epochs"]]
    params.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
    __init__.__signature__ = parent.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=None
    )
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__doc__ = RetrainOnFullData.__init__.__doc__
    return __init__


# What a saved model that does not fit the model it is loaded into raises:
# Keras' "A total of 2 objects could not be loaded" is a ValueError; a file
# that is no `.keras` archive, zipfile's BadZipFile or an OSError.
_UNLOADABLE = (ValueError, KeyError, OSError, zipfile.BadZipFile)


def _same_values(saved: dict[str, Any], trained: dict[str, Any]) -> bool:
    """Whether hyperparameter values read back from JSON are `trained`'s."""
    return json.loads(json.dumps(trained)) == saved


def _describe_values(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items()) or "none"


def _say(verbose: Any, message: str) -> None:
    if verbose != 0:
        print_msg(message)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):.4g}"


def _validation_samples(full: _data.FullData) -> int | None:
    if full.kind == _data.TRAINING_ONLY and full.train_samples is not None:
        return 0
    return full.validation_samples


def _describe_data(full: _data.FullData) -> str:
    if full.kind == _data.ARRAYS:
        return (
            f"{full.samples} samples ({full.train_samples} training + "
            f"{full.validation_samples} validation)"
        )
    if full.kind == _data.SPLIT:
        if full.samples is None:
            return "the whole `x` (no validation_split)"
        return (
            f"all {full.samples} samples of `x` ({full.train_samples} training + "
            f"{full.validation_samples} that validation_split held out)"
        )
    if full.kind == _data.DATASET:
        if full.batches is None:
            return "the training and validation datasets, concatenated"
        return (
            f"the training and validation datasets, concatenated ({full.batches} "
            f"batches: {full.train_batches} + {full.validation_batches})"
        )
    if full.samples is not None:
        return f"{full.samples} training samples (no validation data to add)"
    return "the training data (no validation data to add)"


def _describe_source(source: str, how: str) -> str:
    if source == BEST_STEP:
        return how
    if source == SEARCH_EPOCHS:
        return "the search's `epochs`: the trial's fit returned no History"
    return "`retrain_epochs`"


def _logs_itself(callback: Any) -> bool:
    """Whether `callback` is one of ours (or a subclass) with a `log_dir`."""
    ours = any(
        (klass.__module__ or "").split(".")[0] == "keras_bettermodels"
        for klass in type(callback).__mro__
    )
    return ours and getattr(callback, "log_dir", None) is not None


def _retrain_tensorboard_dirs(callbacks: list[Any]) -> None:
    """Points `TensorBoard` and our callbacks at `<log_dir>/retrain`."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.TensorBoard) or _logs_itself(callback):
            callback.log_dir = os.path.join(os.fspath(callback.log_dir), "retrain")


def _is_local(path: str) -> bool:
    return "://" not in path


def _save_model(model: keras.Model, path: str) -> None:
    """Saves `model` to `path`, replacing an older file only once saved."""
    if not _is_local(path):
        model.save(path)
        return
    partial = path[: -len(".keras")] + ".partial.keras"
    model.save(partial)
    os.replace(partial, path)


def _save_json(path: str, document: dict[str, Any]) -> None:
    if not _is_local(path):
        _kt.save_json(path, document)
        return
    partial = f"{path}.partial"
    _kt.save_json(partial, document)
    os.replace(partial, path)


def _waiting_for(oracle: Any) -> list[str]:
    """What the chief waits for: running trials, and workers yet to check out."""
    ongoing = dict(oracle.ongoing_trials)
    waiting = [
        f"trial {trial.trial_id} on worker {tuner_id!r}"
        for tuner_id, trial in sorted(ongoing.items())
    ]
    waiting += [
        f"worker {tuner_id!r} to ask for its next trial"
        for tuner_id in sorted(set(oracle.tuner_ids) - set(ongoing))
    ]
    return waiting


def _serve_as_chief(oracle: Any, verbose: Any) -> None:
    """Serves the oracle to the workers until every trial has ended.

    keras-tuner's own chief loop (`oracle_chief.start_server`), with the same
    servicer, but it notices the end within a second, where keras-tuner's
    sleeps 20 seconds at a time, and it says which workers it waits for.
    """
    server, servicer = _kt.start_oracle_server(oracle)
    waiting_for: list[str] | None = None
    try:
        while True:
            time.sleep(_CHIEF_POLL_SECONDS)
            if not servicer.stop_triggered:
                continue
            if _kt.chief_may_exit(oracle):
                break
            waiting = _waiting_for(oracle)
            if waiting and waiting != waiting_for:
                _say(
                    verbose,
                    f"All trials are handed out; waiting for {', '.join(waiting)}. "
                    "If a worker has died, start it again with the same "
                    "KERASTUNER_TUNER_ID: it gets its trial back.",
                )
            waiting_for = waiting
    finally:
        server.stop(grace=1)

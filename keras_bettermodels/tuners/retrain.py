"""The retrain on all the data after a search, as a mixin for any keras-tuner tuner.

The mixin wires keras-tuner's search to the retrain; the parts live beside
it: `_data` (the data plan, built once per search), `_skips` (when the
retrain cannot run), `_retrainer` (the retrain), `_store` (its files),
`_log_dirs` (where the callbacks log), `_signature` (the generated
`__init__` signatures), and `_compat.tuner` (keras-tuner's internals).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras

from keras_bettermodels import _validation
from keras_bettermodels._compat import tuner as _kt
from keras_bettermodels.tuners import (
    _cv,
    _data,
    _hparams,
    _log_dirs,
    _results,
    _signature,
    _skips,
    _trials,
)
from keras_bettermodels.tuners._info import RetrainInfo
from keras_bettermodels.tuners._retrainer import Retrainer, say, verbose_of
from keras_bettermodels.tuners._store import RetrainStore

__all__ = ["RetrainInfo", "RetrainOnFullData"]

if TYPE_CHECKING:  # the mixin's `super()` is a keras-tuner Tuner's
    from keras_tuner import Tuner as _TunerBase
else:
    _TunerBase = object


class RetrainOnFullData(_kt.TrialLogDirHook, _kt.CheckpointPathHook, _TunerBase):
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
    itself during a search. Each trial's runs carry TensorBoard's HParams
    summaries (its hyperparameters, and its objective when it ends) on every
    backend, and `<log_dir>` gets the HParams experiment summary when the
    search ends, so the HParams tab lists every trial.

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
        cv: cross-validated trials: an int `k` (scikit-learn's
            `StratifiedKFold` for classification targets, else `KFold`, both
            shuffled with the tuner's `seed`) or any object with
            scikit-learn's `split(x, y)`. Each trial then trains once per fold
            of the `x`, `y` given to `search` (no validation data), its
            objective is the mean of the folds' values, and its metrics hold
            the fold values (`<objective>_fold<k>`) and their standard
            deviation (`<objective>_std`). The retrain trains on all of
            `x`, `y` for the median of the folds' best epoch counts. `None`
            searches as keras-tuner does. Defaults to `None`.
        select: which trial the retrain trains, as scikit-learn's
            `refit=callable`: a function given `results_table()` that returns
            a row of it (or a trial id, or a row index), for example
            `one_standard_error`. `None` retrains the best trial. Defaults to
            `None`.
        **kwargs: the keyword arguments of the keras-tuner tuner:
            `directory`, `project_name`, `overwrite`, `executions_per_trial`,
            `optimizer`, ...

    Attributes:
        retrain_info: a `RetrainInfo` saying what the last retrain saw
            (samples, epochs, hyperparameters), or `None` before any retrain.
            A reloaded project reads it back from `retrained.json`.

    Raises:
        TypeError: for a `retrain_on_full_data` that is not a bool, a
            `retrain_epochs` that is not an integer, a `cv` that is neither an
            integer nor a splitter, or a `select` that is not callable.
        ValueError: for a `retrain_epochs` below 1, a `cv` below 2; for
            `hypermodel=None` without a `run_trial` override, as keras-tuner.

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
        cv: Any = None,
        select: Callable[[Any], Any] | None = None,
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
        self.cv = _cv.check_cv(cv)
        self.select = _results.check_select(select)
        self._current_fold: int | None = None
        self._trial_params: dict[str, int] = {}
        self._folds: _cv.Folds | None = None
        self._hparams_runs: dict[str, list[str]] = {}
        bound = _signature.bind_parent_arguments(
            type(self), RetrainOnFullData, args, kwargs
        )
        if bound is not None:
            _kt.check_hypermodel(
                type(self),
                RetrainOnFullData,
                *_signature.hypermodel_and_objective(bound),
            )
        self._retrained_model: keras.Model | None = None
        self.retrain_info: RetrainInfo | None = None
        # Before keras-tuner reloads or writes the project: a kill while it
        # writes `oracle.json` or a `trial.json` must not leave it empty.
        _kt.write_project_files_whole()
        super().__init__(*args, **kwargs)
        _kt.settle_trials_after_reload(self.oracle)
        _kt.restore_trial_order(self.oracle)
        saved = RetrainStore(self.project_dir).read()
        self.retrain_info = None if saved is None else saved[0]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in vars(cls):
            init = _signature.init_with_signature(cls, RetrainOnFullData)
            type.__setattr__(cls, "__init__", init)  # mypy: no method assignment

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
        verbose = verbose_of(fit_args, fit_kwargs)
        plan, skip = None, None
        self._folds = None
        if self.cv is not None:
            self._folds = self._cv_folds(_data.fit_arguments(fit_args, fit_kwargs))
        if self.retrain_on_full_data:
            plan, skip = _skips.plan_search(self, fit_args, fit_kwargs, verbose)
        if _kt.is_chief_oracle():
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            _kt.serve_as_chief(self.oracle, lambda message: say(verbose, message))
        else:
            # keras-tuner first writes `<tuner_id>.json`, by which a project
            # is reloaded, after the first trial: a kill before left a
            # project that restarted from scratch, over its completed trial.
            self.save()
            super().search(*fit_args, **fit_kwargs)
        if _kt.is_worker(self):
            return
        callbacks = _data.fit_arguments(fit_args, fit_kwargs).get("callbacks")
        _hparams.write_experiments(callbacks, self.oracle)
        if not self.retrain_on_full_data:
            return
        trial = _results.trial_to_retrain(self)
        if skip is None and trial is not None:
            skip = _skips.skip_reason_after(self, trial)
        if skip is not None:
            self.retrain_info = RetrainInfo.skipped_search_retrain(skip, trial)
            return
        try:
            Retrainer(self).run(fit_args, fit_kwargs, plan=plan, after_search=True)
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

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Runs a trial, as `keras_tuner.Tuner.run_trial`, and notes its result type.

        Writes `fit_result.json` in the trial's directory: whether the
        HyperModel's `fit` returned a History, which tells the retrain whether
        the trial's `best_step` is an epoch count.
        """
        objective = self.oracle.objective
        if self.cv is not None:
            metrics = _cv.run_folds(self, trial, args, kwargs, super().run_trial)
            _hparams.end_trial(
                self._hparams_runs, trial, objective, metrics[objective.name]
            )
            return metrics
        start = time.monotonic()
        results = super().run_trial(trial, *args, **kwargs)
        items = results if isinstance(results, list) else [results]
        histories = [r for r in items if isinstance(r, keras.callbacks.History)]
        _trials.check_objective_logged(self.oracle.objective, histories)
        RetrainStore.write_fit_result(
            self.get_trial_dir(trial.trial_id),
            items,
            histories,
            seconds=time.monotonic() - start,
            params=self._trial_params.get(str(trial.trial_id)),
        )
        if str(trial.trial_id) in self._hparams_runs:
            value = None
            if histories and len(histories) == len(items):
                metrics, _ = _kt.trial_metrics(results, objective)
                value = objective.get_value(metrics)
            _hparams.end_trial(self._hparams_runs, trial, objective, value)
        return results

    def on_epoch_end(
        self, trial: Any, model: Any, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        """keras-tuner's hook at each epoch's end; notes the model's size."""
        super().on_epoch_end(trial, model, epoch, logs=logs)
        if epoch == 0 or str(trial.trial_id) not in self._trial_params:
            self._trial_params[str(trial.trial_id)] = int(model.count_params())

    def results_table(self) -> _results.ResultsTable:
        """One row per trial, as a list of dicts, like Optuna's `trials_dataframe()`.

        Each row holds `trial_id`, `status`, every hyperparameter (by its
        name), `objective` (the trial's score), `best_epoch` (the epoch count
        the retrain would use for it), `epochs_run`, `seconds` and `params`
        (the model's parameter count); with `cv`, also `objective_std` and
        `fold_values` (a list, one value per fold). `pandas.DataFrame(rows)`
        makes a data frame of it, and `rows.to_csv(path)` writes a CSV file.

        Returns:
            A `ResultsTable`: a `list` of dicts, in the order the trials
            started, with `to_csv(path)`.
        """
        return _results.results_table(self)

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
        _skips.check_can_retrain(self)
        model = Retrainer(self).run(fit_args, fit_kwargs, after_search=False)
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
        return Retrainer(self).retrained_model()

    def _best_epoch_count(self, trial: Any) -> tuple[int, str]:
        """The epochs the best trial's model had trained at its best epoch.

        Returns:
            `(count, how)`: `how` says how the count was derived, for the
            console. A tuner whose trials resume other trials' models
            (`Hyperband`) adds theirs.
        """
        if self.cv is not None:
            return _results.cv_epoch_count(self, trial)
        best_step = int(trial.best_step or 0)
        return best_step + 1, (
            f"the best trial's best epoch count, best_step + 1 = {best_step} + 1"
        )

    def _resumed_trial(self, trial: Any) -> Any:
        """The trial whose model `trial` resumed (`Hyperband`'s rounds), or `None`."""
        return None

    def _cv_folds(self, named: dict[str, Any]) -> _cv.Folds:
        """The search's folds of the `fit` arguments `named` (made once per search)."""
        if self._folds is None:
            seed = _kt.oracle_seed(self.oracle)
            self._folds = _cv.make_folds(self.cv, named, seed)
        return self._folds

    def _checkpoint_path(self, trial_id: Any, path: str) -> str:
        """A fold's own checkpoint while it trains, with `cv`; else keras-tuner's."""
        if self._current_fold is None:
            return path
        return _cv.fold_checkpoint(path, self._current_fold)

    def _retrain_hyperparameters(self, trial: Any) -> Any:
        """The hyperparameters the retrain builds and fits the model with."""
        return trial.hyperparameters

    def _trial_log_dirs(
        self,
        callbacks: list[Any],
        trial: Any,
        execution: int,
        keras_tuners: Callable[[Any], None],
    ) -> None:
        """Gives each trial's callbacks their own log folder (see `_log_dirs`)."""
        _log_dirs.trial_log_dirs(
            callbacks,
            trial,
            execution,
            self.executions_per_trial,
            keras_tuners,
            fold=self._current_fold,
        )
        _hparams.start_runs(self._hparams_runs, callbacks, trial, self._current_fold)

    @classmethod
    def _trains_by_itself(cls) -> bool:
        """Whether the tuner class overrides `run_trial` (keras.io's custom loop)."""
        return _skips.overrides_run_trial(
            _kt.effective_run_trial(cls, RetrainOnFullData)
        )

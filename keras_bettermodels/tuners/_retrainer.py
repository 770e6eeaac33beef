"""The retrain of a tuner's best hyperparameters on all the data (private).

`Retrainer` builds the best trial's model afresh, fits it through the
HyperModel on the search's data plan (training + validation data as one),
saves it in the project (`_store`), and loads it back for a reloaded project.
Its state lives on the tuner (`retrain_info`, `_retrained_model`), whose
hooks (`_best_epoch_count`, `_retrain_hyperparameters`) say for how many
epochs and with which hyperparameters.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
import zipfile
from typing import Any

import keras
import keras_tuner
from keras_tuner.engine.trial import TrialStatus

from keras_bettermodels import _snapshot
from keras_bettermodels._compat import tuner as _kt
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels.tuners import _data, _log_dirs, _results
from keras_bettermodels.tuners._info import (
    BEST_STEP,
    RETRAIN_EPOCHS,
    SEARCH_EPOCHS,
    RetrainInfo,
)
from keras_bettermodels.tuners._store import RetrainStore

__all__ = ["Retrainer", "returned_history", "say", "verbose_of"]

# What a saved model that does not fit the model it is loaded into raises:
# Keras' "A total of 2 objects could not be loaded" is a ValueError; a file
# that is no `.keras` archive, zipfile's BadZipFile or an OSError.
_UNLOADABLE = (ValueError, KeyError, OSError, zipfile.BadZipFile)


class Retrainer:
    """Retrains, saves and reloads the best hyperparameters of `tuner`.

    Args:
        tuner: a `RetrainOnFullData` tuner.
    """

    def __init__(self, tuner: Any) -> None:
        self.tuner = tuner
        self.store = RetrainStore(tuner.project_dir)

    def run(
        self,
        fit_args: tuple[Any, ...],
        fit_kwargs: dict[str, Any],
        *,
        plan: _data.DataPlan | None = None,
        after_search: bool,
    ) -> keras.Model | None:
        """Retrains on `plan` (built from the arguments if `None`).

        Returns:
            The model; `None` for a search's retrain with no completed trial.
        """
        tuner = self.tuner
        verbose = verbose_of(fit_args, fit_kwargs)
        trial = _results.trial_to_retrain(tuner)
        if trial is None:
            message = (
                "No trial has completed, so there are no best hyperparameters "
                "to retrain."
            )
            if after_search:
                warnings.warn(f"{message} The retrain is skipped.", stacklevel=3)
                return None
            raise RuntimeError(message + " Run `search(...)` first.")
        named = (
            _data.fit_arguments(fit_args, fit_kwargs) if plan is None else plan.named
        )
        epochs, source = self._epochs_for(trial, named)
        if plan is None:
            plan = _data.plan(fit_args, fit_kwargs)
        if after_search and self._already_retrained(trial, epochs, plan.found):
            try:
                model = tuner.get_retrained_model()
            except RuntimeError as error:  # a pair that does not load: retrained
                warnings.warn(f"{error} Retraining it now.", stacklevel=3)
            else:
                say(
                    verbose,
                    f"Reusing the model retrained on the best hyperparameters "
                    f"(trial {trial.trial_id}) from {self.store.model_path}; "
                    "call `retrain(...)` to train it again.",
                )
                return model

        full = plan.full()
        kept, dropped = _data.split_callbacks(named.get("callbacks"))
        callbacks = _kt.deepcopy_callbacks(tuner, kept)
        _log_dirs.retrain_log_dirs(callbacks)
        dropped_names = tuple(_data.describe_callback(c) for c in dropped)
        for name in dropped_names:
            say(
                verbose,
                f"Note: {name} is left out of the retrain: it needs validation "
                "data, and the retrain holds none out.",
            )
        for note in full.notes:
            say(verbose, f"Note: {note}")
        if full.kind == _data.TRAINING_ONLY and not after_search and tuner.cv is None:
            say(
                verbose,
                "Note: no validation data given: retraining on the data given "
                "as the whole data set.",
            )
        say(
            verbose,
            f"Retraining the best hyperparameters (trial {trial.trial_id}, "
            f"{tuner.oracle.objective.name}={_number(trial.score)}) on "
            f"{_describe_data(full, tuner.cv is not None)} for {epochs} "
            f"epoch{'s' * (epochs != 1)} "
            f"({_describe_source(source, tuner._best_epoch_count(trial)[1])}).",
        )

        kwargs = dict(full.kwargs)
        kwargs.pop("initial_epoch", None)
        kwargs["epochs"] = epochs
        kwargs["callbacks"] = callbacks
        hp = tuner._retrain_hyperparameters(trial)
        model = _kt.try_build(tuner, hp)
        results = tuner.hypermodel.fit(hp, model, *full.args, **kwargs)
        epochs_run = (
            len(results.epoch) if isinstance(results, keras.callbacks.History) else None
        )
        _check_finite(model, results)
        tuner._retrained_model = model
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
            model_path=self.store.model_path,
        )
        info = self.store.save(model, hp, info)
        tuner.retrain_info = info
        if info.model_path is not None:
            say(verbose, f"Retrained model saved to {info.model_path}")
        return model

    def retrained_model(self) -> keras.Model:
        """The retrained model, from memory or the project (`get_retrained_model`)."""
        tuner = self.tuner
        if tuner._retrained_model is not None:
            info = tuner.retrain_info
            if info is not None and info.skipped is None:
                self._check_of_the_best(info)
            return tuner._retrained_model
        saved = self.store.read(mismatch="raise")
        skipped = None if tuner.retrain_info is None else tuner.retrain_info.skipped
        if skipped is not None and (saved is None or not self.saved_is_best(saved[0])):
            raise RuntimeError(
                f"There is no retrained model: the search's retrain was skipped: "
                f"{skipped.rstrip('.')}. Call `tuner.retrain(x, y, epochs=..., "
                "validation_data=...)` with the arguments you gave `search` where "
                "it can run, then `get_retrained_model()`."
            )
        if saved is None or not self.store.has_model():
            raise RuntimeError(
                "There is no retrained model: the search ran with "
                "`retrain_on_full_data=False`, or has not run. Call "
                "`tuner.retrain(x, y, epochs=..., validation_data=...)` with "
                "the arguments you gave `search`, then `get_retrained_model()`. "
                f"(Looked for {self.store.model_path}.)"
            )
        self._check_of_the_best(saved[0])
        try:
            model = self._load_saved(saved)
        except _UNLOADABLE as error:
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise RuntimeError(
                f"The retrained model {self.store.model_path} does not load into "
                f"the model of the hyperparameters {self.store.info_path} names "
                f"({type(error).__name__}: {first_line}). Run `search` again (it "
                "retrains), or call `retrain(...)`, before `get_retrained_model()`."
            ) from error
        tuner._retrained_model = model
        tuner.retrain_info = saved[0]
        return model

    def saved_is_best(self, info: RetrainInfo, best: Any = None) -> bool:
        """Whether a saved retrain is of the best trial, or of one tied with it.

        The trial must also have the hyperparameters the retrain trained: a
        trial id alone could be another search's.
        """
        tuner = self.tuner
        best = best if best is not None else _results.trial_to_retrain(tuner)
        if best is None:
            return False
        if info.trial_id == str(best.trial_id):
            saved = best
        else:
            trials = getattr(tuner.oracle, "trials", None)
            saved = trials.get(info.trial_id) if isinstance(trials, dict) else None
            if (
                saved is None
                or saved.status != TrialStatus.COMPLETED
                or saved.score is None
                or saved.score != best.score
            ):
                return False
        trained = dict(tuner._retrain_hyperparameters(saved).values)
        return _same_values(info.hyperparameters, trained)

    def _check_of_the_best(self, info: RetrainInfo) -> None:
        """A `RuntimeError` for a retrain that is not of the current best trial.

        A later search (`overwrite=False`, more trials) that found a better
        trial and died before its retrain was saved leaves the previous
        search's retrained model: never returned as if it were the best's.
        """
        if self.saved_is_best(info):
            return
        tuner = self.tuner
        best = _results.trial_to_retrain(tuner)
        objective = tuner.oracle.objective.name
        now = (
            "no trial has completed"
            if best is None
            else f"the best trial is trial {best.trial_id} "
            f"({_describe_values(tuner._retrain_hyperparameters(best).values)}, "
            f"{objective}={_number(best.score)})"
        )
        raise RuntimeError(
            f"The retrained model {self.store.model_path} is of trial "
            f"{info.trial_id} ({_describe_values(info.hyperparameters)}, "
            f"{objective}={_number(info.score)}), but {now}: a "
            "later search found it and did not finish its retrain. Run `search` "
            "again (it retrains), or call `retrain(...)`, before "
            "`get_retrained_model()`."
        )

    def _load_saved(self, saved: tuple[RetrainInfo, dict[str, Any], Any]) -> Any:
        """Builds the saved retrain's model and loads its weights (and optimizer)."""
        _, hp_config, build_config = saved
        hp = keras_tuner.HyperParameters.from_config(hp_config)
        model = _kt.try_build(self.tuner, hp)
        if not model.built and build_config:
            model.build_from_config(build_config)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built and model.built:
            # Loads the optimizer's state too, so that training can go on.
            optimizer.build(model.trainable_variables)
        model.load_weights(self.store.model_path)
        return model

    def _already_retrained(
        self, trial: Any, epochs: int, found: _data.FullData
    ) -> bool:
        saved = self.store.read()
        if saved is None or not self.store.has_model():
            return False
        info = saved[0]
        return (
            self.saved_is_best(info, trial)
            and info.epochs == epochs
            and info.data == found.kind
            and info.samples == found.samples
            and info.batches == found.batches
        )

    def _epochs_for(self, trial: Any, named: dict[str, Any]) -> tuple[int, str]:
        """The retrain's epochs, and where they come from."""
        tuner = self.tuner
        if tuner.retrain_epochs is not None:
            return tuner.retrain_epochs, RETRAIN_EPOCHS
        best_step = int(trial.best_step or 0)
        if best_step > 0 or returned_history(tuner, trial) is True:
            return tuner._best_epoch_count(trial)[0], BEST_STEP
        epochs = named.get("epochs", 1)
        initial = named.get("initial_epoch", 0) or 0
        return max(1, int(epochs) - int(initial)), SEARCH_EPOCHS

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
        tuner = self.tuner
        own = tuner.hypermodel.build(hp)
        config = keras.saving.deserialize_keras_object(own.get_compile_config() or {})
        config["optimizer"] = model.optimizer
        config["loss"] = model.loss
        if tuner.metrics:
            config["metrics"] = tuner.metrics
        strategy = tuner.distribution_strategy
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model.compile(**config)


def returned_history(tuner: Any, trial: Any) -> bool | None:
    """Whether the trial's fit returned a History; `None` if not recorded."""
    return RetrainStore.returned_history(tuner.get_trial_dir(trial.trial_id))


def verbose_of(fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]) -> Any:
    """The `verbose` of a `fit` call's arguments."""
    try:
        return _data.fit_arguments(fit_args, fit_kwargs).get("verbose", "auto")
    except TypeError:
        return "auto"


def say(verbose: Any, message: str) -> None:
    """Prints `message` unless `verbose=0`."""
    if verbose != 0:
        print_msg(message)


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


def _same_values(saved: dict[str, Any], trained: dict[str, Any]) -> bool:
    """Whether hyperparameter values read back from JSON are `trained`'s."""
    return json.loads(json.dumps(trained)) == saved


def _describe_values(values: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items()) or "none"


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):.4g}"


def _validation_samples(full: _data.FullData) -> int | None:
    if full.kind == _data.TRAINING_ONLY and full.train_samples is not None:
        return 0
    return full.validation_samples


def _describe_data(full: _data.FullData, cv: bool = False) -> str:
    if cv and full.kind == _data.TRAINING_ONLY and full.samples is not None:
        return f"all {full.samples} samples the folds were drawn from"
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

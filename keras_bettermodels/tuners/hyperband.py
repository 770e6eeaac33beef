"""Hyperband that retrains the best hyperparameters on all data."""

from __future__ import annotations

from typing import Any

import keras_tuner

from keras_bettermodels.tuners.retrain import RetrainOnFullData

__all__ = ["Hyperband"]

# The values keras-tuner's HyperbandOracle adds to each trial's hyperparameters
# (keras-tuner 1.4.8): the trial a round resumes, and its epoch range.
_RESUMED_TRIAL = "tuner/trial_id"


class Hyperband(RetrainOnFullData, keras_tuner.Hyperband):
    """Hyperband that retrains the best hyperparameters on all the data.

    A drop-in subclass of `keras_tuner.Hyperband` (every argument, error and
    method keeps its meaning and position) that ends the search with the
    retrain of `RetrainOnFullData`, from scratch.

    The retrain's epoch count is the number of epochs the best trial's model
    had trained at its best epoch, counted over all its bracket's rounds. A
    trial of round `r > 0` resumes the best checkpoint of a trial of round
    `r - 1` (`tuner/trial_id`) and trains it on from `tuner/initial_epoch`;
    its `best_step` counts its own epochs only. So the count is
    `(best_step + 1)` of the best trial, plus `(best_step + 1)` of the trial
    it resumed, and so on back to round 0. For example, with `max_epochs=9,
    factor=3`: a round-0 trial best at its 3rd epoch (`best_step=2`) resumed
    by a round-1 trial best at its 4th (`best_step=3`) is retrained for
    `3 + 4 = 7` epochs.

    The count assumes the objective is in each epoch's logs (as `val_loss` or
    any Keras metric is), so that keras-tuner's `SaveBestEpoch` checkpoints a
    trial at its best epoch. If the HyperModel's `fit` adds the objective only
    after training, `SaveBestEpoch` checkpoints every epoch, a resumed trial
    loads its parent's last epoch, and the count falls short: pass
    `retrain_epochs`.

    Args:
        *args: `keras_tuner.Hyperband`'s: `hypermodel`, `objective`,
            `max_epochs`, `factor`, `hyperband_iterations`, `seed`, ...
        retrain_on_full_data: whether `search` ends with the retrain.
            Defaults to `True`.
        retrain_epochs: epochs of the retrain; `None` uses the count above.
            Defaults to `None`.
        **kwargs: the arguments of `keras_tuner.Tuner`.

    Example:

    ```python
    from keras_bettermodels.tuners import Hyperband

    tuner = Hyperband(build, objective="val_accuracy", max_epochs=27, factor=3)
    tuner.search(x_train, y_train, validation_data=(x_val, y_val))
    model = tuner.get_retrained_model()
    print(tuner.retrain_info.epochs)   # counted over the rounds
    ```

    References:
        Lisha Li, Kevin Jamieson, Giulia DeSalvo, Afshin Rostamizadeh and
        Ameet Talwalkar, "Hyperband: A Novel Bandit-Based Approach to
        Hyperparameter Optimization", JMLR 18, 2018.
    """

    def _best_epoch_count(self, trial: Any) -> tuple[int, str]:
        if self.cv is not None:  # fold by fold along the chain, then the median
            return super()._best_epoch_count(trial)
        counts = []
        while trial is not None:
            counts.append(int(trial.best_step or 0) + 1)
            resumed = trial.hyperparameters.values.get(_RESUMED_TRIAL)
            trial = None if resumed is None else self.oracle.get_trial(resumed)
        total = sum(counts)
        if len(counts) == 1:
            return total, f"the best trial's best epoch count, best_step + 1 = {total}"
        terms = " + ".join(str(c) for c in reversed(counts))
        return total, (
            "the best trial's best epoch count over its bracket's rounds, "
            f"best_step + 1 per round: {terms} = {total}"
        )

    def _resumed_trial(self, trial: Any) -> Any:
        resumed = trial.hyperparameters.values.get(_RESUMED_TRIAL)
        return None if resumed is None else self.oracle.get_trial(resumed)

    def _retrain_hyperparameters(self, trial: Any) -> Any:
        # Without `tuner/trial_id`, the model is built fresh instead of
        # loading the resumed trial's checkpoint: the retrain starts anew.
        hp = trial.hyperparameters.copy()
        hp.values.pop(_RESUMED_TRIAL, None)
        return hp

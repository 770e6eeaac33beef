"""The search's trials, as the retrain reads and checks them (private)."""

from __future__ import annotations

import difflib
from typing import Any

import keras_tuner
from keras_tuner.engine.trial import TrialStatus

__all__ = ["best_completed_trial", "check_objective_logged"]


def best_completed_trial(oracle: Any) -> Any:
    """The best trial if it completed, else `None`."""
    for trial in oracle.get_best_trials(1):
        if trial.status == TrialStatus.COMPLETED:
            return trial
    return None


def check_objective_logged(objective: Any, histories: list[Any]) -> None:
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

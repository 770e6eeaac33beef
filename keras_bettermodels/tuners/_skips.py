"""When the retrain on the full data cannot run, and what it says then (private).

`search` learns some reasons before its first trial (data that cannot be
combined, a HyperModel whose `fit` requires `validation_data`), so that they
show at once, not after hours of search; others once the trials have run (a
`fit` that returned no History). `retrain` raises for the reasons that make
it impossible.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from keras_bettermodels._compat import tuner as _kt
from keras_bettermodels.tuners import _data
from keras_bettermodels.tuners._retrainer import returned_history, say

__all__ = [
    "check_can_retrain",
    "overrides_run_trial",
    "plan_search",
    "requires_validation_data",
    "skip_reason_after",
]


def plan_search(
    tuner: Any, fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any], verbose: Any
) -> tuple[_data.DataPlan | None, str | None]:
    """The search's data plan, and why its retrain cannot run, before the trials.

    Said at once (a warning, or a note where nobody asked for a retrain), so
    it does not surprise after hours of search.

    Returns:
        `(plan, reason)`: `plan` is `None` for data that cannot be combined;
        `reason` is `None` when the retrain can run.
    """
    try:
        plan = _data.plan(fit_args, fit_kwargs)
    except _data.CannotCombine as error:
        reason = str(error)
        if not _kt.is_worker(tuner):
            warnings.warn(
                f"The retrain on the full data will be skipped: {reason}",
                stacklevel=3,
            )
        return None, reason
    return plan, _skip_reason_before(tuner, plan, verbose)


def _skip_reason_before(tuner: Any, plan: _data.DataPlan, verbose: Any) -> str | None:
    if _kt.is_worker(tuner):
        return "this process is a worker of a distributed search"
    trains_by_itself = tuner._trains_by_itself()
    if tuner.hypermodel is None:
        reason = "the tuner has no `hypermodel` to build the best hyperparameters with"
        if trains_by_itself:  # keras-tuner's custom-tuner pattern: a note
            say(verbose, f"Note: the retrain on the full data is skipped: {reason}.")
        else:
            warnings.warn(
                f"The retrain on the full data is skipped: {reason}. Pass "
                "`retrain_on_full_data=False` to silence this warning.",
                stacklevel=4,
            )
        return reason
    fit_name = f"`{type(tuner.hypermodel).__name__}.fit`"
    if requires_validation_data(tuner.hypermodel):
        reason = (
            f"{fit_name} requires `validation_data`: it scores the model on "
            "it, and a retrain on the full data holds none out. To retrain, "
            "give it a default (`validation_data=None`) that it handles, and "
            "pass `retrain_epochs=` to the tuner"
        )
    else:
        if plan.found.kind == _data.TRAINING_ONLY and tuner.cv is None:
            warnings.warn(
                "No validation data (`validation_data` or `validation_split`): "
                "the retrain after the search has nothing to add, and retrains "
                "the best hyperparameters on the training data only. Pass "
                "validation data to `search`, or `retrain_on_full_data=False` "
                "to skip the retrain.",
                stacklevel=4,
            )
        return None
    warnings.warn(
        f"The retrain on the full data will be skipped: {reason}; or "
        "`retrain_on_full_data=False` to silence this warning.",
        stacklevel=4,
    )
    return reason


def skip_reason_after(tuner: Any, trial: Any) -> str | None:
    """Why the retrain cannot run, known once the trials have run; warns."""
    if tuner.retrain_epochs is not None:
        return None
    returned = returned_history(tuner, trial)
    if returned is None and tuner._trains_by_itself():
        reason = (
            f"`{type(tuner).__name__}.run_trial` trains by itself, so the "
            "search kept no epoch count to retrain for. To retrain through "
            f"`{type(tuner.hypermodel).__name__}.fit`, pass `retrain_epochs=` "
            "to the tuner"
        )
    elif returned is False:
        reason = (
            f"`{type(tuner.hypermodel).__name__}.fit` returned a score, not a "
            "History, so the search kept no epoch count to retrain for. To "
            "retrain, pass `retrain_epochs=` to the tuner (with a `fit` that "
            "accepts `validation_data=None`)"
        )
    else:
        return None
    warnings.warn(f"The retrain on the full data is skipped: {reason}.", stacklevel=3)
    return reason


def check_can_retrain(tuner: Any) -> None:
    """The `RuntimeError` of `retrain(...)` where it cannot run at all."""
    if _kt.is_worker(tuner):
        raise RuntimeError(
            "Only the chief of a distributed search retrains (its oracle "
            f"holds the results); this process is worker {tuner.tuner_id!r}. "
            "Call `retrain(...)` in the process with KERASTUNER_TUNER_ID=chief."
        )
    if tuner.hypermodel is None:
        raise RuntimeError(
            "`retrain` needs the tuner's `hypermodel` to build the best "
            "hyperparameters, and this tuner has none."
        )
    if requires_validation_data(tuner.hypermodel):
        raise RuntimeError(
            f"`{type(tuner.hypermodel).__name__}.fit` requires "
            "`validation_data`: it scores the model on it, and a retrain on "
            "the full data holds none out. Give it a default "
            "(`validation_data=None`) that it handles, then call `retrain`."
        )


def overrides_run_trial(run_trial: Any) -> bool:
    """Whether `run_trial` is the user's own (keras.io's custom loop)."""
    module = getattr(run_trial, "__module__", "") or ""
    return run_trial is not None and not module.startswith(
        ("keras_tuner", "keras_bettermodels")
    )


def requires_validation_data(hypermodel: Any) -> bool:
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

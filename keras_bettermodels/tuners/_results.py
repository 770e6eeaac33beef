"""The trials table, and which trial the retrain trains (`select=`).

`results_table(tuner)` reads the oracle's trials and the files each trial left
(`fit_result.json`, and `folds.json` with `cv`) into one row per trial, the
way Optuna's `trials_dataframe()` and scikit-learn's `cv_results_` lay a
search out. `one_standard_error` is a ready `select=` rule.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from keras_tuner.engine.trial import TrialStatus

from keras_bettermodels import _validation
from keras_bettermodels.tuners import _cv, _trials
from keras_bettermodels.tuners._store import RetrainStore

__all__ = [
    "ResultsTable",
    "check_select",
    "cv_epoch_count",
    "one_standard_error",
    "results_table",
    "trial_to_retrain",
]

_SELECT = "a function of the results table that returns a row, a trial id or an index"


class ResultsTable(list[dict[str, Any]]):
    """The rows of `results_table()`: a `list` of dicts, one per trial.

    Attributes:
        objective: the objective's name.
        direction: `"max"` or `"min"`, the objective's.
    """

    def __init__(
        self, rows: Sequence[dict[str, Any]] = (), *, objective: str, direction: str
    ) -> None:
        super().__init__(rows)
        self.objective = objective
        self.direction = direction

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Writes the rows as CSV, one column per key, lists as JSON.

        Args:
            path: the file to write.
        """
        columns: dict[str, None] = {}
        for row in self:
            columns.update(dict.fromkeys(row))
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(columns))
            writer.writeheader()
            for row in self:
                writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value: Any) -> Any:
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return "" if value is None else value


def results_table(tuner: Any) -> ResultsTable:
    """One row per trial of `tuner`, in the order the trials started."""
    objective = tuner.oracle.objective
    rows = []
    for trial in tuner.oracle.trials.values():
        trial_dir = tuner.get_trial_dir(trial.trial_id)
        record = RetrainStore.read_fit_record(trial_dir)
        done = trial.status == TrialStatus.COMPLETED and trial.score is not None
        row: dict[str, Any] = {
            "trial_id": str(trial.trial_id),
            "status": str(trial.status),
            **dict(trial.hyperparameters.values),
            "objective": None if trial.score is None else float(trial.score),
        }
        if tuner.cv is not None:
            folds = _cv.read_records(trial_dir)
            values = [r.value for r in folds]
            row["objective_std"] = float(np.std(values)) if values else None
            row["fold_values"] = values
        row["best_epoch"] = tuner._best_epoch_count(trial)[0] if done else None
        epochs = record.get("epochs_run")
        row["epochs_run"] = sum(epochs) if isinstance(epochs, list) else None
        row["seconds"] = record.get("seconds")
        row["params"] = record.get("params")
        rows.append(row)
    direction = getattr(objective, "direction", None) or "min"
    return ResultsTable(rows, objective=objective.name, direction=direction)


def cv_epoch_count(tuner: Any, trial: Any) -> tuple[int, str]:
    """The median over folds of the best epoch counts (summed over the rounds a
    `Hyperband` trial resumed, fold by fold)."""
    per_fold: dict[int, int] = {}
    chain = 0
    while trial is not None:
        for record in _cv.read_records(tuner.get_trial_dir(trial.trial_id)):
            per_fold[record.fold] = per_fold.get(record.fold, 0) + record.best_step + 1
        trial = tuner._resumed_trial(trial)
        chain += 1
    if not per_fold:
        return 1, "no fold was recorded: 1 epoch"
    counts = [per_fold[k] for k in sorted(per_fold)]
    median = _cv.median_epochs(counts)
    rounds = " over its bracket's rounds" if chain > 1 else ""
    return median, (
        f"the median of the folds' best epoch counts{rounds}, "
        f"{', '.join(map(str, counts))}: {median}"
    )


def check_select(select: Any) -> Callable[[Any], Any] | None:
    """Checks the `select` argument: `None` or a callable."""
    if select is not None and not callable(select):
        raise TypeError(_validation.invalid_type("select", _SELECT, select))
    return select


def trial_to_retrain(tuner: Any) -> Any:
    """The trial the retrain trains: `select`'s choice, else the best completed."""
    if tuner.select is None:
        return _trials.best_completed_trial(tuner.oracle)
    table = results_table(tuner)
    if not any(row["status"] == TrialStatus.COMPLETED for row in table):
        return None
    choice = tuner.select(table)
    if isinstance(choice, dict):
        choice = choice.get("trial_id")
    elif isinstance(choice, int) and not isinstance(choice, bool):
        if not 0 <= choice < len(table):
            raise ValueError(
                _validation.invalid_value(
                    "select", f"a row index below {len(table)}", choice
                )
            )
        choice = table[choice]["trial_id"]
    trial = tuner.oracle.trials.get(str(choice))
    if trial is None or trial.status != TrialStatus.COMPLETED:
        completed = [r["trial_id"] for r in table if r["status"] == "COMPLETED"]
        raise ValueError(
            f"`select` returned {choice!r}, which is not a completed trial. "
            f"Expected one of the completed trials' ids: {', '.join(completed)}."
        )
    return trial


def one_standard_error(
    table: Sequence[dict[str, Any]], direction: str | None = None
) -> dict[str, Any]:
    """The simplest trial within one standard error of the best: a `select=` rule.

    Among the completed cross-validated trials, finds the best mean objective
    and its standard error, `std(fold values, ddof=1) / sqrt(k)`; then
    returns the trial with the fewest parameters (`params`) whose mean is
    within one standard error of the best (ties: the better mean). This is
    the "one standard error rule" of Breiman et al. (1984) and Hastie,
    Tibshirani and Friedman (2009, section 7.10): on small data the best
    trial's lead is often noise, and the simpler model generalizes as well.

    Args:
        table: `tuner.results_table()`, or rows of it.
        direction: `"max"` or `"min"`; `None` reads the table's `direction`.
            Defaults to `None`.

    Returns:
        The chosen row.

    Raises:
        ValueError: for a table with no completed trial with fold values
            (the search ran without `cv`), or an unknown `direction`.

    Example:

    ```python
    from keras_bettermodels.tuners import RandomSearch, one_standard_error

    tuner = RandomSearch(build, "val_accuracy", max_trials=20, cv=5,
                         select=one_standard_error)
    tuner.search(x, y, epochs=20)
    ```

    References:
        Leo Breiman, Jerome Friedman, Richard Olshen and Charles Stone,
        "Classification and Regression Trees", 1984. Trevor Hastie, Robert
        Tibshirani and Jerome Friedman, "The Elements of Statistical
        Learning", 2nd ed., 2009, section 7.10.
    """
    direction = direction or getattr(table, "direction", None)
    if direction not in ("max", "min"):
        raise ValueError(
            _validation.invalid_value(
                "direction",
                '"max" or "min" (a results table carries its own)',
                direction,
            )
        )
    rows = [
        row
        for row in table
        if row.get("status") == "COMPLETED"
        and row.get("objective") is not None
        and len(row.get("fold_values") or ()) >= 2
    ]
    if not rows:
        raise ValueError(
            "`one_standard_error` needs cross-validated trials: none of the "
            "table's completed trials has fold values. Pass `cv=` to the tuner."
        )
    sign = 1.0 if direction == "max" else -1.0
    best = max(rows, key=lambda row: sign * row["objective"])
    folds = best["fold_values"]
    error = float(np.std(folds, ddof=1)) / math.sqrt(len(folds))
    close = [r for r in rows if sign * (best["objective"] - r["objective"]) <= error]

    def size(row: dict[str, Any]) -> tuple[float, float]:
        params = row.get("params")
        return (math.inf if params is None else params, -sign * row["objective"])

    return min(close, key=size)

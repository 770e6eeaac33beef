"""TimeLimit: stop once the run has used its time budget."""

from __future__ import annotations

from keras_bettermodels import _validation
from keras_bettermodels.criteria._base import Criterion, Firing, fmt
from keras_bettermodels.criteria._history import ErrorHistory


class TimeLimit(Criterion):
    """Stops after the first epoch that ends `seconds` or more after training began.

    A time budget, to combine with the other rules: `GL(5) | TimeLimit(3600)`
    stops at whichever comes first. `EarlyStopping` measures the time from
    `on_train_begin` (a run resumed with `keras.callbacks.BackupAndRestore`
    counts the time of the interrupted part too) and checks it at each epoch
    end where the monitored value is logged. It reads no error, so it also
    works on a maximized metric. Lightning's `Timer`, EarlyStopping.jl's
    `TimeLimit` and TF Addons' `TimeStopping` do the same.

    Args:
        seconds: the budget, in seconds (> 0).

    Raises:
        ValueError: when asked on an `ErrorHistory` without `elapsed`.
    """

    needs_errors = False

    def __init__(self, seconds: float) -> None:
        self.seconds = _validation.check_number(
            "seconds", seconds, strictly_positive=True
        )

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        if history.elapsed is None:
            raise ValueError(
                f"{self!r} needs the time since training began. Received: "
                "elapsed=None. Pass it as `ErrorHistory(..., elapsed=seconds)`."
            )
        if history.elapsed >= self.seconds:
            detail = (
                f"{fmt(history.elapsed)} s since training began, time limit "
                f"{fmt(self.seconds)} s"
            )
            return Firing(repr(self), history.elapsed, detail)
        return None

    def __repr__(self) -> str:
        return f"TimeLimit({fmt(self.seconds)})"

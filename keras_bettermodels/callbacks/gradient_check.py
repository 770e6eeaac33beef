"""GradientCheckCallback: checks backprop's gradient when training starts, and again."""

from __future__ import annotations

import os
import warnings
from typing import Any

import keras

from keras_bettermodels import _validation
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels.gradient_check import check_gradients
from keras_bettermodels.gradient_check.check import METHODS
from keras_bettermodels.gradient_check.report import GradientCheckReport

__all__ = ["GradientCheckCallback", "GradientCheckError"]

ON_FAILURE = ("warn", "raise", "stop")
#: The arguments of `check_gradients` that `**check_kwargs` may hold.
CHECK_ARGUMENTS = (
    "sample_weight",
    "loss",
    "num_directions",
    "epsilon",
    "seed",
    "training",
    "max_coordinates_per_variable",
    "thresholds",
)
#: The TensorBoard tag of each report (JSON, for the "Gradient check" tab)
#: and of its relative error (a scalar).
REPORT_TAG = "gradient_check/report"
RELATIVE_ERROR_TAG = "gradient_check/relative_error"


class GradientCheckError(RuntimeError):
    """A gradient check failed during training (`on_failure="raise"`).

    Attributes:
        report: the failing `GradientCheckReport`.
    """

    def __init__(self, message: str, report: GradientCheckReport) -> None:
        super().__init__(message)
        self.report = report


@_validation.suggest_keywords(*CHECK_ARGUMENTS)
class GradientCheckCallback(keras.callbacks.Callback):
    """Checks the model's gradient with finite differences during `fit`.

    Runs `check_gradients` on the batch `x`, `y` when training begins (the
    step is 0) and, with `every_n_epochs=n`, after every n-th epoch (the step
    is the number of epochs done): Ng advises checking again once the weights
    have moved away from their initial values. The float64 copy of the model
    is built once and reused, so a repeated check costs a few dozen forward
    passes.

    Args:
        x: one batch of inputs (an array, or a list or dict of arrays).
        y: its targets. Defaults to `None`.
        every_n_epochs: check again after every n-th epoch; `None` checks at
            the start of training only. Defaults to `None`.
        on_failure: what a failing check (verdict "check" or "bug") does:
            `"warn"` warns with the report's table, `"raise"` raises a
            `GradientCheckError` with it, `"stop"` warns and stops training.
            Defaults to `"warn"`.
        method: `"directional"` or `"coordinate"`, as in `check_gradients`.
            Defaults to `"directional"`.
        verbose: 0 is silent, 1 prints one line per check (and shows the
            coordinate method's progress bar). Defaults to `1`.
        log_dir: if set, each report is written there for TensorBoard: the
            report as JSON for the "Gradient check" tab (tag
            `gradient_check/report`) and its relative error as a scalar (tag
            `gradient_check/relative_error`). Defaults to `None`.
        **check_kwargs: other arguments of `check_gradients`:
            `sample_weight`, `loss`, `num_directions`, `epsilon`, `seed`,
            `training`, `max_coordinates_per_variable`, `thresholds`.

    Attributes:
        reports: the `GradientCheckReport` of each check of the last `fit`.
        steps: the step of each report: 0 at the start of training, else the
            number of epochs done.

    Raises:
        TypeError: for an unknown keyword argument or an argument of the wrong
            type.
        ValueError: for invalid arguments.

    Example:

    ```python
    from keras_bettermodels.callbacks import GradientCheckCallback

    check = GradientCheckCallback(x_train[:32], y_train[:32], every_n_epochs=5)
    model.fit(x_train, y_train, epochs=20, callbacks=[check])
    print(check.reports[-1])
    ```

    References:
        Andrew Ng, "Improving Deep Neural Networks", week 1: gradient checking.
    """

    def __init__(
        self,
        x: Any,
        y: Any = None,
        *,
        every_n_epochs: int | None = None,
        on_failure: str = "warn",
        method: str = "directional",
        verbose: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
        **check_kwargs: Any,
    ) -> None:
        super().__init__()
        # Unknown keywords: `suggest_keywords` names the nearest accepted one.
        if x is None:
            raise ValueError(_validation.invalid_value("x", "one batch of inputs", x))
        if every_n_epochs is not None:
            _validation.check_int("every_n_epochs", every_n_epochs, minimum=1)
        if on_failure not in ON_FAILURE:
            raise ValueError(
                _validation.invalid_value(
                    "on_failure", f"one of {ON_FAILURE}", on_failure
                )
            )
        if method not in METHODS:
            raise ValueError(
                _validation.invalid_value("method", f"one of {METHODS}", method)
            )
        _validation.check_int("verbose", verbose)
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                _validation.invalid_type("log_dir", "a path or None", log_dir)
            )
        self.x = x
        self.y = y
        self.every_n_epochs = every_n_epochs
        self.on_failure = on_failure
        self.method = method
        self.verbose = verbose
        self.log_dir = log_dir
        self.check_kwargs = dict(check_kwargs)
        self.reports: list[GradientCheckReport] = []
        self.steps: list[int] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.reports = []
        self.steps = []
        self._check(0, "at the start of training")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0:
            self._check(epoch + 1, f"after epoch {epoch + 1}")

    def _check(self, step: int, when: str) -> None:
        report = check_gradients(
            self.model,
            self.x,
            self.y,
            method=self.method,
            verbose=self.verbose,
            **self.check_kwargs,
        )
        self.reports.append(report)
        self.steps.append(step)
        if self.log_dir is not None:
            self._write(self.log_dir, step, report)
        if self.verbose > 0:
            print_msg(
                f"Gradient check {when}: relative error "
                f"{report.relative_error:.2e} ({report.verdict}"
                + (f", set by {report.set_by}" if report.set_by else "")
                + f"), {report.elapsed:.2f} s"
            )
        if report.passed:
            return
        message = f"Gradient check {when} failed.\n{report}"
        if self.on_failure == "raise":
            raise GradientCheckError(message, report)
        warnings.warn(message, stacklevel=2)
        if self.on_failure == "stop":
            self.model.stop_training = True

    @staticmethod
    def _write(
        log_dir: str | os.PathLike[str], step: int, report: GradientCheckReport
    ) -> None:
        from keras_bettermodels.tensorboard import metadata, summary

        summary.write_json(
            log_dir,
            step,
            REPORT_TAG,
            report.to_dict(),
            plugin_name=metadata.GRADIENT_CHECK_PLUGIN,
        )
        summary.write_scalars(
            log_dir, step, {RELATIVE_ERROR_TAG: report.relative_error}
        )

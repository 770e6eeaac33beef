"""EarlyStopping: Keras' callback plus Prechelt's GL / PQ / UP criteria."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import keras
from keras import ops

from keras_bettermodels import _validation, criteria
from keras_bettermodels._compat.io import print_msg

__all__ = ["EarlyStopping", "StoppingReason"]


class StoppingReason(str):
    """Why training stopped: a sentence that also carries its parts.

    It is a `str` (`print(cb.stopping_reason)`, `"GL" in cb.stopping_reason`)
    with attributes for code that wants the parts.

    Attributes:
        criterion: the rule that fired: a criterion as written (`"GL(5)"`), or
            `"patience"`, `"check_finite"`, `"stopping_threshold"`,
            `"divergence_threshold"`.
        value: the quantity the rule compared (GL(t), PQ(t), the monitored
            value, ...), or `None` for a combination of criteria.
        epoch: the 0-based epoch after which training stopped, as
            `EarlyStopping.stopped_epoch`.
    """

    criterion: str
    value: float | None
    epoch: int

    def __new__(
        cls, message: str, *, criterion: str, value: float | None, epoch: int
    ) -> StoppingReason:
        reason = super().__new__(cls, message)
        reason.criterion = criterion
        reason.value = value
        reason.epoch = epoch
        return reason

    def __reduce__(self) -> Any:  # keeps the attributes through copy and pickle
        return (
            _make_reason,
            (str(self), self.criterion, self.value, self.epoch),
        )


def _make_reason(
    message: str, criterion: str, value: float | None, epoch: int
) -> StoppingReason:
    return StoppingReason(message, criterion=criterion, value=value, epoch=epoch)


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Stops training when the monitored loss stops improving, Keras' way or Prechelt's.

    A drop-in superset of `keras.callbacks.EarlyStopping`: with no `criterion`
    it takes the same arguments and stops at the same epoch as Keras' own. With
    a `criterion` it stops when one of Prechelt's rules fires instead:

    - `GL(alpha)`: the validation loss is more than `alpha` percent above the
      best so far (generalization loss);
    - `PQ(alpha)`: generalization loss divided by training progress over a
      strip of 5 epochs exceeds `alpha` (reads `training_monitor`);
    - `UP(s)`: the validation loss rose at `s` successive strip ends;
    - `Patience(n, min_delta)`: Keras' own rule, to combine with the others.

    Combine them with `|` (stop when any fires) and `&` (when all fire at the
    same epoch), or name one as a string: `"GL5"`, `"PQ0.5"`, `"UP3"`.

    The one intended difference from Keras: with `check_finite=True` (the
    default) a NaN or infinite monitored value stops training at once, where
    Keras would wait out its patience. Set `check_finite=False` for Keras'
    behaviour.

    Args:
        monitor: quantity to be monitored. Defaults to `"val_loss"`.
        min_delta: minimum change in the monitored quantity to qualify as an
            improvement. Defaults to `0`.
        patience: Keras' rule: epochs with no improvement after which training
            stops. With a `criterion`, use `Patience(n)` in it instead.
            Defaults to `0`.
        verbose: 0 is silent, 1 prints why and when training stopped and which
            weights were restored. Defaults to `0`.
        mode: one of `{"auto", "min", "max"}`, as in Keras. Prechelt's criteria
            need a loss (`"min"`). Defaults to `"auto"`.
        baseline: Keras' baseline for its patience rule. Defaults to `None`.
        restore_best_weights: whether to restore the weights of the epoch with
            the best monitored value at the end of training, whichever rule
            stopped it or if none did. Defaults to `False`.
        start_from_epoch: epochs to wait before monitoring. Defaults to `0`.
        criterion: a `keras_bettermodels.criteria.Criterion` or a shorthand
            string; `None` keeps Keras' patience rule. Defaults to `None`.
        training_monitor: the training error E_tr that `PQ` reads, and that
            `criterion_history` uses for P_k. Defaults to `"loss"`.
        stopping_threshold: stop as soon as the monitored value is better than
            this (below it in `"min"` mode). Defaults to `None`.
        divergence_threshold: stop as soon as the monitored value is worse than
            this (above it in `"min"` mode): the run is diverging. Defaults to
            `None`.
        check_finite: stop at once when the monitored value is NaN or
            infinite. Defaults to `True`.
        strict: raise instead of warn when `monitor` is missing from the
            logs. (A missing `training_monitor` is always an error for `PQ`,
            which cannot work without it.) Defaults to `False`.
        log_dir: if set, GL(t), P_k(t) and PQ(t) are written there as
            TensorBoard scalars under `early_stopping/`. Defaults to `None`.

    Attributes:
        stopped_epoch: the 0-based epoch after which training stopped; 0 if it
            did not stop (Keras' semantics).
        stopping_reason: a `StoppingReason` (a `str` with `criterion`,
            `value` and `epoch`), or `None` if no rule fired.
        criterion_history: one dict per monitored epoch with `epoch`, `GL`,
            `P_k`, `PQ` and `UP` (the count of successive rises). P_k, PQ and UP
            are defined at strip ends only and are `None` elsewhere.
        best: the best monitored value so far, as in Keras.
        best_epoch: the 0-based epoch of `best`, as in Keras.
        best_weights: the weights of `best_epoch` when `restore_best_weights`.
        wait: epochs since the last improvement, as in Keras.

    Raises:
        ValueError: for invalid arguments, a non-default `patience` or a
            `baseline` together with a `criterion`, or a `criterion` on a metric
            that is maximized (at construction with `mode="max"`, at the first
            epoch end with `mode="auto"`).

    Example:

    ```python
    from keras_bettermodels.callbacks import EarlyStopping
    from keras_bettermodels.criteria import GL, UP

    stopper = EarlyStopping(criterion=GL(5) | UP(3), restore_best_weights=True)
    model.fit(x, y, validation_split=0.2, epochs=200, callbacks=[stopper])
    print(stopper.stopping_reason)
    ```

    References:
        Lutz Prechelt, "Early Stopping -- But When?", Neural Networks: Tricks of
        the Trade, Springer, 1998.
    """

    # Keras' own state, declared for the type checker.
    best: Any
    best_epoch: int
    best_weights: Any
    wait: int

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        *,
        criterion: criteria.Criterion | str | None = None,
        training_monitor: str = "loss",
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_finite: bool = True,
        strict: bool = False,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _validation.check_str("monitor", monitor)
        _validation.check_number("min_delta", min_delta)
        _validation.check_int("patience", patience)
        _validation.check_optional_number("baseline", baseline)
        _validation.check_int("start_from_epoch", start_from_epoch)
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=mode,
            baseline=baseline,
            restore_best_weights=restore_best_weights,
            start_from_epoch=start_from_epoch,
        )
        self.criterion = None if criterion is None else criteria.get(criterion)
        self.training_monitor = _validation.check_str(
            "training_monitor", training_monitor
        )
        self.stopping_threshold = _validation.check_optional_number(
            "stopping_threshold", stopping_threshold
        )
        self.divergence_threshold = _validation.check_optional_number(
            "divergence_threshold", divergence_threshold
        )
        self.check_finite = _validation.check_bool("check_finite", check_finite)
        self.strict = _validation.check_bool("strict", strict)
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                _validation.invalid_type("log_dir", "a path or None", log_dir)
            )
        self.log_dir = log_dir
        if self.criterion is not None:
            self._check_criterion_arguments(patience, baseline)
        self.stopping_reason: StoppingReason | None = None
        self.criterion_history: list[dict[str, Any]] = []
        self._val_errors: list[float] = []
        self._train_errors: list[float] = []

    def _check_criterion_arguments(self, patience: int, baseline: float | None) -> None:
        if patience != 0:
            raise ValueError(
                _validation.invalid_value(
                    "patience",
                    "the default 0 together with `criterion`, which turns Keras' "
                    "patience rule off",
                    patience,
                    f"To keep it, pass `criterion={self.criterion!r} | "
                    f"Patience({patience})`.",
                )
            )
        if baseline is not None:
            raise ValueError(
                _validation.invalid_value(
                    "baseline",
                    "None together with `criterion`: `baseline` belongs to Keras' "
                    "patience rule, which `criterion` turns off",
                    baseline,
                    "Remove `baseline`, or drop `criterion` to use Keras' rule.",
                )
            )
        if self.mode == "max":
            raise ValueError(self._max_mode_message())

    def _max_mode_message(self) -> str:
        return (
            f"Prechelt's criteria need an error to minimize, but `{self.monitor}` "
            f"is maximized (mode='max'). Received: criterion={self.criterion!r}, "
            f"monitor={self.monitor!r}. Monitor a loss instead, such as "
            "monitor='val_loss'."
        )

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        self.stopping_reason = None
        self.criterion_history = []
        self._val_errors = []
        self._train_errors = []

    def get_monitor_value(self, logs: dict[str, Any] | None) -> Any:
        return self._logged(self.monitor, logs)

    def _logged(self, name: str, logs: dict[str, Any] | None) -> Any:
        logs = logs or {}
        value = logs.get(name)
        if value is None:
            message = (
                f"Early stopping conditioned on metric `{name}` which is not "
                f"available. Available metrics are: {', '.join(logs) or 'none'}."
            )
            if self.strict:
                raise ValueError(message)
            warnings.warn(message, stacklevel=3)
        return value

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        # A missing monitor is reported by name first: Keras would instead say
        # it cannot tell the direction of a metric it has never seen.
        current = self.get_monitor_value(logs)
        if current is None:
            return
        if self.monitor_op is None:
            self._set_monitor_op()
            if self.criterion is not None and not self._minimizes():
                raise ValueError(self._max_mode_message())
        if self.check_finite and not math.isfinite(float(current)):
            self._stop(
                epoch,
                "check_finite",
                float(current),
                f"`{self.monitor}` is {float(current)}, not finite",
            )
            return
        if epoch < self.start_from_epoch:
            return
        improved = self._track_best(epoch, current)
        self._record(epoch, float(current), logs)
        reason = self._threshold_reason(float(current))
        if reason is None and not improved:
            reason = self._rule_reason(epoch)
        if reason is not None:
            self._stop(epoch, *reason)

    def _minimizes(self) -> bool:
        return self.monitor_op is ops.less

    def _track_best(self, epoch: int, current: Any) -> bool:
        """Keras' own bookkeeping of `best`, `best_weights` and `wait`."""
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if not self._is_improvement(current, self.best):
            return False
        self.best = current
        self.best_epoch = epoch
        if self.restore_best_weights:
            self.best_weights = self.model.get_weights()
        if self.baseline is None or self._is_improvement(current, self.baseline):
            self.wait = 0
        return True

    def _record(self, epoch: int, current: float, logs: dict[str, Any] | None) -> None:
        self._val_errors.append(current)
        needs_train = self.criterion is not None and self.criterion.needs_train_errors
        train_error = (logs or {}).get(self.training_monitor)
        if train_error is not None:
            self._train_errors.append(float(train_error))
        elif needs_train:
            raise ValueError(
                f"{self.criterion!r} reads the training error "
                f"`{self.training_monitor}`, which is not in the logs. "
                f"Received: training_monitor={self.training_monitor!r}. "
                f"Available metrics are: {', '.join(logs or {}) or 'none'}."
            )
        if self.criterion is None and not self._minimizes():
            return  # Prechelt's measures are defined for errors only.
        strip_length = (
            self.criterion.strip_length if self.criterion is not None else None
        ) or criteria.DEFAULT_STRIP_LENGTH
        try:
            values = criteria.measures(
                self._val_errors, self._train_errors or None, strip_length
            )
        except ValueError:
            if self.criterion is not None:
                raise
            # Without a criterion the measures are extras: a negative loss has none.
            return
        self.criterion_history.append({"epoch": epoch, **values})
        if self.log_dir is not None:
            from keras_bettermodels.tensorboard import summary

            summary.write_scalars(
                self.log_dir,
                epoch,
                {
                    f"early_stopping/{name}": values[name]
                    for name in ("GL", "P_k", "PQ")
                },
            )

    def _threshold_reason(self, current: float) -> tuple[str, float | None, str] | None:
        better = (lambda a, b: a < b) if self._minimizes() else (lambda a, b: a > b)
        name = f"`{self.monitor}`={current:.4g}"
        if self.stopping_threshold is not None and better(
            current, self.stopping_threshold
        ):
            return (
                "stopping_threshold",
                current,
                f"{name} reached stopping_threshold={self.stopping_threshold:g}",
            )
        if self.divergence_threshold is not None and better(
            self.divergence_threshold, current
        ):
            return (
                "divergence_threshold",
                current,
                f"{name} crossed divergence_threshold={self.divergence_threshold:g}",
            )
        return None

    def _rule_reason(self, epoch: int) -> tuple[str, float | None, str] | None:
        if self.criterion is None:
            # Keras' patience rule, exactly.
            if self.wait >= self.patience and epoch > 0:
                return (
                    "patience",
                    float(self.wait),
                    f"no improvement in `{self.monitor}` for {self.wait} epochs "
                    f"(patience={self.patience})",
                )
            return None
        firing = self.criterion.evaluate(self._val_errors, self._train_errors or None)
        if firing is None:
            return None
        return firing.criterion, firing.value, firing.detail

    def _stop(self, epoch: int, rule: str, value: float | None, detail: str) -> None:
        self.stopped_epoch = epoch
        self.model.stop_training = True
        self.stopping_reason = StoppingReason(
            f"Epoch {epoch + 1}: early stopping by {rule}: {detail}.",
            criterion=rule,
            value=value,
            epoch=epoch,
        )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopping_reason is not None and self.verbose > 0:
            print_msg(str(self.stopping_reason))
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

"""EarlyStopping: Keras' callback plus Prechelt's GL / PQ / UP criteria.

The callback feeds `keras_bettermodels.stopping.decide` and acts on its answer;
the decision, in its documented order, lives there.
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bettermodels import _validation, criteria, stopping
from keras_bettermodels._compat import callbacks as _compat_callbacks
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels._snapshot import first_nonfinite_variable, take_weights
from keras_bettermodels.stopping import StoppingReason

__all__ = ["EarlyStopping", "StoppingReason"]


def _number(value: Any) -> float | None:
    """A logged value as a float, if it is one number (0-d or one element)."""
    if value is None or isinstance(value, numbers.Real):
        return None if value is None else float(value)
    try:
        array = np.asarray(value)
    except (TypeError, RuntimeError, ValueError):  # on an accelerator; TF bfloat16
        if "bfloat16" in str(getattr(value, "dtype", "")):
            value = ops.cast(value, "float32")  # exact; NumPy has no bfloat16
        array = np.asarray(ops.convert_to_numpy(value))
    # bfloat16 (ml_dtypes, JAX and TensorFlow tensors) is NumPy kind "V".
    numeric = array.dtype.kind in "biuf" or array.dtype.name == "bfloat16"
    if array.size != 1 or not numeric:
        return None  # Keras' comparison decides, and raises, at its moment.
    return float(array.reshape(()))


def _check_keras_number(name: str, value: Any) -> None:
    """Keras takes any one number here, as it is: a float or negative
    `patience`, an infinite `baseline`, a 0-d array. What is not one number
    (a string, `None`, a list) is refused now, where Keras fails at an epoch
    end."""
    if isinstance(value, bool) or _number(value) is None:
        raise TypeError(_validation.invalid_type(name, "a number", value))


@_validation.suggest_keywords()
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
    same epoch), or name one as a string, as it prints itself (`"GL(5)"`,
    `"UP(3) | GL(2)"`) or in Prechelt's shorthand (`"GL5"`, `"PQ0.5"`).

    The intended difference from Keras: with `check_finite=True` (the default)
    a NaN or infinite monitored value, or a non-finite weight or optimizer
    variable (one fused reduction on the device per epoch), stops training at
    once, where Keras would wait out its patience or not notice. Set
    `check_finite=False` for Keras' behaviour. Every decision is
    `keras_bettermodels.stopping.decide`'s; this callback feeds it and acts.

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
        criterion: a `keras_bettermodels.criteria.Criterion` or a string naming
            one (see `keras_bettermodels.criteria.get`); `None` keeps Keras'
            patience rule. Defaults to `None`.
        training_monitor: the training error E_tr that `PQ` reads, and that
            `criterion_history` uses for P_k. Defaults to `"loss"`.
        stopping_threshold: stop as soon as the monitored value is better than
            this (below it in `"min"` mode). Defaults to `None`.
        divergence_threshold: stop as soon as the monitored value is worse than
            this (above it in `"min"` mode): the run is diverging. Defaults to
            `None`.
        check_finite: stop at once when the monitored value is NaN or
            infinite, or when a model or optimizer variable is (checked at
            every epoch end and at the end of training; the variables of a
            `keras.Model` only). Defaults to `True`.
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
        best_weights: the weights of `best_epoch` when `restore_best_weights`:
            a snapshot kept on the device (Keras keeps NumPy copies). For a
            model that is not a `keras.Model` but has `get_weights` and
            `set_weights` (Keras takes those too), what `get_weights`
            returned, restored with `set_weights`, as Keras does.
        wait: epochs since the last improvement, as in Keras.

    Raises:
        ValueError: for invalid arguments, a non-default `patience` or a
            `baseline` together with a `criterion`, or a `criterion` on a metric
            that is maximized (at construction with `mode="max"`, at the first
            epoch end with `mode="auto"`); at the first epoch end, as Keras,
            when `mode="auto"` cannot tell the metric's direction.

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
        for name, value in (
            ("min_delta", min_delta),
            ("patience", patience),
            ("start_from_epoch", start_from_epoch),
        ):
            _check_keras_number(name, value)
        if baseline is not None:
            _check_keras_number("baseline", baseline)
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
        stopping.check_criterion(
            self.criterion, patience, baseline, self.mode == "max", monitor
        )
        self.stopping_reason: StoppingReason | None = None
        self.criterion_history: list[dict[str, Any]] = []
        self._state = stopping.State()
        self._epoch: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        self.stopping_reason = None
        self.criterion_history = []
        self._state = stopping.State()
        self._epoch = None

    def get_monitor_value(self, logs: dict[str, Any] | None) -> Any:
        value = (logs or {}).get(self.monitor)
        if value is None:
            message = f"Early stopping conditioned on metric `{self.monitor}` which "
            message += f"is not available. {_available(logs)}"
            if self.strict:
                raise ValueError(message)
            warnings.warn(message, stacklevel=2)
        return value

    def _infer_mode(self, logs: dict[str, Any] | None = None) -> None:
        try:
            _compat_callbacks.set_monitor_op(self)  # Keras' own inference, exactly
        except ValueError as error:
            raise ValueError(f"{error} {_available(logs)}") from None
        maximize = self.monitor_op is not ops.less
        stopping.check_criterion(self.criterion, 0, None, maximize, self.monitor)

    def _improves(self, value: Any, reference: Any) -> bool:
        """Keras' `_is_improvement` on the values as logged (its dtypes, its errors)."""
        return bool(self.monitor_op(value - self.min_delta, reference))

    def _rules(self) -> stopping.Rules:
        strip = self.criterion.strip_length if self.criterion is not None else None
        return stopping.Rules(
            minimize=self.monitor_op is ops.less,
            min_delta=abs(self.min_delta),
            patience=self.patience,
            baseline=self.baseline,
            start_from_epoch=self.start_from_epoch,
            criterion=self.criterion,
            stopping_threshold=self.stopping_threshold,
            divergence_threshold=self.divergence_threshold,
            check_finite=self.check_finite,
            strip_length=strip or criteria.DEFAULT_STRIP_LENGTH,
            is_improvement=self._improves,
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.monitor_op is None:
            self._infer_mode(logs)  # at the first epoch end, as Keras does
        value = self.get_monitor_value(logs)
        train_error = _number((logs or {}).get(self.training_monitor))
        needs_train = self.criterion is not None and self.criterion.needs_train_errors
        if needs_train and train_error is None and value is not None:
            raise ValueError(
                f"{self.criterion!r} reads the training error "
                f"`{self.training_monitor}`, which is not in the logs. "
                f"Received: training_monitor={self.training_monitor!r}. "
                f"{_available(logs)}"
            )
        decision = stopping.decide(
            self._state,
            epoch,
            value,
            rules=self._rules(),
            number=_number(value),
            train_error=train_error,
            nonfinite=self._nonfinite_state(),
            monitor=self.monitor,
        )
        self._epoch = epoch
        self._act(epoch, decision)

    def _nonfinite_state(self) -> str | None:
        """The first non-finite weight or optimizer variable: one reduction.

        Only a `keras.Model` has variables to watch; Keras' EarlyStopping also
        takes any object with `get_weights` / `set_weights`, whose state this
        does not read (its monitored value is still checked).
        """
        if not self.check_finite or not isinstance(self.model, keras.Model):
            return None
        found = first_nonfinite_variable(self.model)
        return None if found is None else f"{found} is not finite"

    def _act(self, epoch: int, decision: stopping.Decision) -> None:
        self._state = state = decision.state
        self.best, self.best_epoch, self.wait = state.best, state.best_epoch, state.wait
        if decision.improved and self.restore_best_weights:
            self.best_weights = take_weights(self.model, optimizer=False)
        if decision.measures is not None:
            self.criterion_history.append({"epoch": epoch, **decision.measures})
            if self.log_dir is not None:
                from keras_bettermodels.tensorboard import summary

                names = ("GL", "P_k", "PQ")
                scalars = {f"early_stopping/{n}": decision.measures[n] for n in names}
                summary.write_scalars(self.log_dir, epoch, scalars)
        if decision.reason is not None:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            self.stopping_reason = decision.reason

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopping_reason is None and self._epoch is not None:
            # The state once more: a batch after the last epoch end may spoil it.
            nonfinite = self._nonfinite_state()
            rules = stopping.Rules(check_finite=self.check_finite)
            decision = stopping.decide(
                self._state, self._epoch, None, rules=rules, nonfinite=nonfinite
            )
            self._act(self._epoch, decision)
        if self.stopping_reason is not None and self.verbose > 0:
            print_msg(str(self.stopping_reason))
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.best_weights.restore(self.model)


def _available(logs: dict[str, Any] | None) -> str:
    return f"Available metrics are: {', '.join(logs or {}) or 'none'}."

"""EarlyStopping: Keras' callback plus Prechelt's GL / PQ / UP criteria.

The callback turns the logged value into a float, feeds
`keras_bettermodels.stopping.decide` and acts on its answer; the decision, in
its documented order, lives there.
"""

from __future__ import annotations

import numbers
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops
from keras.backend import standardize_dtype

from keras_bettermodels import _validation, criteria, stopping
from keras_bettermodels._compat import callbacks as _compat_callbacks
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels._snapshot import (
    WeightsCopy,
    first_nonfinite_variable,
    take_weights,
)
from keras_bettermodels.criteria._improvement import PRECISIONS
from keras_bettermodels.criteria._patience import check_min_delta_mode
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


def _precision(value: Any) -> str:
    """The float type Keras compares `value` in: its own, or `floatx` for a
    Python number (Keras makes a tensor of it)."""
    dtype = getattr(value, "dtype", None)
    name = keras.config.floatx() if dtype is None else standardize_dtype(dtype)
    return name if name in PRECISIONS else keras.config.floatx()


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
        monitor: quantity to be monitored, or a list of them: then an epoch
            improves when any of them improves, and training stops when the
            rule (patience or `criterion`) holds for all of them at once —
            all have stalled. `best`, `best_epoch` and `restore_best_weights`
            follow the first; thresholds apply to the first. Defaults to
            `"val_loss"`.
        min_delta: minimum change in the monitored quantity to qualify as an
            improvement. Defaults to `0`.
        patience: Keras' rule: epochs with no improvement after which training
            stops. With a `criterion`, use `Patience(n)` in it instead.
            Defaults to `0`.
        verbose: 0 is silent, 1 prints why and when training stopped and which
            weights were restored. Defaults to `0`.
        mode: one of `{"auto", "min", "max"}`, as in Keras, or a list of them,
            one per metric of a list `monitor`. Prechelt's criteria need a loss
            (`"min"`). Defaults to `"auto"`.
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
        min_delta_mode: `"abs"`: an improvement beats the best by more than
            `min_delta`, as Keras'; `"rel"`: by more than `min_delta * |best|`.
            Defaults to `"abs"`.

    The state survives a restart: with `keras.callbacks.BackupAndRestore` in
    the same `fit`, it is saved beside its backup at every epoch end and
    restored on resume (with the best weights), so that a resumed run stops
    where an uninterrupted one would. `get_state()` / `set_state()` do the
    same for a loop of one's own. With `validation_freq > 1`, only validated
    epochs count (patience, strips).

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
        wait: epochs since the last improvement, as in Keras (of any
            metric, with several).
        diagnosis: at the end of training, what the learning curves say
            (`keras_bettermodels.diagnose` on this fit's logs), printed with
            `verbose=1`; `[]` if the logs lack a loss and a validation loss.

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
        monitor: str | Sequence[str] = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str | Sequence[str] = "auto",
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
        min_delta_mode: str = "abs",
    ) -> None:
        monitors, modes = stopping.check_monitors(monitor, mode)
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
            mode=mode if isinstance(mode, str) else "auto",
            baseline=baseline,
            restore_best_weights=restore_best_weights,
            start_from_epoch=start_from_epoch,
        )
        if not isinstance(mode, str):
            self.mode = list(modes)
        self.monitors: tuple[str, ...] = monitors
        self.min_delta_mode = check_min_delta_mode(min_delta_mode)
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
        for name, one in zip(monitors, modes, strict=True):
            stopping.check_criterion(
                self.criterion, patience, baseline, one == "max", name
            )
        self.stopping_reason: StoppingReason | None = None
        self.criterion_history: list[dict[str, Any]] = []
        self.diagnosis: list[Any] = []
        self._reset()

    def _reset(self) -> None:
        self._states = (stopping.State(),) * len(self.monitors)
        self._minimize: tuple[bool, ...] | None = None
        self._epoch: int | None = None
        self._began = time.monotonic()
        self._elapsed_before = 0.0  # of the interrupted part of a resumed run
        self._curves: dict[str, list[float]] = {}
        self._backup: _compat_callbacks.StateBackup | None = None
        self._unvalidated: dict[str, Any] | None = None  # logs of such an epoch
        self._validated = False  # whether any epoch logged `val_` values

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        self.stopping_reason = None
        self.criterion_history = []
        self.diagnosis = []
        self._reset()
        self._backup = _compat_callbacks.StateBackup.find(self)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._backup is not None and self._epoch is None:
            saved = self._backup.load(epoch)  # a resumed run starts at `epoch`
            if saved is not None:
                self.set_state(saved)

    def get_monitor_value(self, logs: dict[str, Any] | None) -> Any:
        return self._monitor_value(self.monitors[0], logs)

    def _monitor_value(self, name: str, logs: dict[str, Any] | None) -> Any:
        value = (logs or {}).get(name)
        if value is None and _not_validated(name, logs):
            self._unvalidated = logs  # `validation_freq > 1`: said at the end
        elif value is None:
            self._missing(name, logs)
        return value

    def _missing(self, name: str, logs: dict[str, Any] | None) -> None:
        message = f"Early stopping conditioned on metric `{name}` which "
        message += f"is not available. {_available(logs)}"
        if self.strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=4)

    def _infer_mode(self, logs: dict[str, Any] | None = None) -> None:
        minimize = []
        for i, name in enumerate(self.monitors):
            probe: Any = self if len(self.monitors) == 1 else _probe(self, i)
            try:
                _compat_callbacks.set_monitor_op(probe)  # Keras' own inference
            except ValueError as error:
                raise ValueError(f"{error} {_available(logs)}") from None
            minimize.append(probe.monitor_op is ops.less)
            maximize = not minimize[-1]
            stopping.check_criterion(self.criterion, 0, None, maximize, name)
        self._minimize = tuple(minimize)
        self.monitor_op = ops.less if minimize[0] else ops.greater

    def _rules(self, i: int, precision: str) -> stopping.Rules:
        strip = self.criterion.strip_length if self.criterion is not None else None
        first = i == 0
        return stopping.Rules(
            minimize=bool(self._minimize and self._minimize[i]),
            min_delta=abs(_number(self.min_delta) or 0.0),
            patience=self.patience,
            baseline=_number(self.baseline) if first else None,
            start_from_epoch=self.start_from_epoch,
            criterion=self.criterion,
            stopping_threshold=self.stopping_threshold if first else None,
            divergence_threshold=self.divergence_threshold if first else None,
            check_finite=self.check_finite,
            strip_length=strip or criteria.DEFAULT_STRIP_LENGTH,
            precision=precision,
            min_delta_mode=self.min_delta_mode,
        )

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._began

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.monitor_op is None or self._minimize is None:
            self._infer_mode(logs)  # at the first epoch end, as Keras does
        self._record_curves(logs)
        values = [self._monitor_value(name, logs) for name in self.monitors]
        numbers = [_number(value) for value in values]  # the one conversion
        for name, value, number in zip(self.monitors, values, numbers, strict=True):
            if value is not None and number is None:
                if len(self.monitors) > 1:
                    raise TypeError(
                        _validation.invalid_type(
                            name, "one number, with several monitored metrics", value
                        )
                    )
                self._not_one_number(epoch, logs)
                return
        number = numbers[0]
        train_error = _number((logs or {}).get(self.training_monitor))
        needs_train = self.criterion is not None and self.criterion.needs_train_errors
        if needs_train and train_error is None and number is not None:
            raise ValueError(
                f"{self.criterion!r} reads the training error "
                f"`{self.training_monitor}`, which is not in the logs. "
                f"Received: training_monitor={self.training_monitor!r}. "
                f"{_available(logs)}"
            )
        joint = stopping.decide_all(
            self._states,
            epoch,
            numbers,
            rules=[self._rules(i, _precision(v)) for i, v in enumerate(values)],
            monitors=self.monitors,
            train_error=train_error,
            nonfinite=self._nonfinite_state(),
            elapsed=self._elapsed(),
        )
        self._epoch = epoch
        self._act(epoch, values[0], joint)
        if self._backup is not None:
            improved = joint.decisions[0].improved and self.restore_best_weights
            self._backup.save(epoch, self._state_dict(weights=improved))

    def _not_one_number(self, epoch: int, logs: dict[str, Any] | None) -> None:
        """A value that is not one number (a per-class F1 score, a string): Keras'
        own bookkeeping compares it, and refuses it where and as Keras does."""
        reason = stopping.check_state(epoch, self._nonfinite_state())
        if reason is not None:
            self._epoch = epoch
            self._stop(epoch, reason)
            return
        super().on_epoch_end(epoch, logs)
        self._epoch = epoch
        if isinstance(self.best_weights, list):  # Keras' `get_weights()` copy
            self.best_weights = WeightsCopy(self.best_weights)

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

    def _act(self, epoch: int, value: Any, joint: stopping.Joint) -> None:
        self._states, decision = joint.states, joint.decisions[0]
        state = decision.state
        self.best_epoch = state.best_epoch
        self.wait = min(s.wait for s in self._states)
        if decision.improved:
            self.best = value  # as logged, as Keras keeps it
            if self.restore_best_weights:
                self.best_weights = take_weights(self.model, optimizer=False)
        if decision.measures is not None:
            self.criterion_history.append({"epoch": epoch, **decision.measures})
            if self.log_dir is not None:
                from keras_bettermodels.tensorboard import summary

                names = ("GL", "P_k", "PQ")
                scalars = {f"early_stopping/{n}": decision.measures[n] for n in names}
                summary.write_scalars(self.log_dir, epoch, scalars)
        if joint.reason is not None:
            self._stop(epoch, joint.reason)

    def _stop(self, epoch: int, reason: StoppingReason) -> None:
        self.stopped_epoch = epoch
        self.model.stop_training = True
        self.stopping_reason = reason

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._unvalidated is not None and not self._validated:
            self._missing(self.monitors[0], self._unvalidated)  # never validated
        if self.stopping_reason is None and self._epoch is not None:
            # The state once more: a batch after the last epoch end may spoil it.
            reason = stopping.check_state(self._epoch, self._nonfinite_state())
            if reason is not None:
                self._stop(self._epoch, reason)
        if self.stopping_reason is not None and self.verbose > 0:
            print_msg(str(self.stopping_reason))
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.best_weights.restore(self.model)
        self._diagnose()

    def _record_curves(self, logs: dict[str, Any] | None) -> None:
        """Keeps the losses and accuracies of this fit, for the diagnosis."""
        self._validated |= any(key.startswith("val_") for key in logs or {})
        for key in _CURVES:
            number = _number((logs or {}).get(key))
            if number is not None:
                self._curves.setdefault(key, []).append(number)

    def _diagnose(self) -> None:
        from keras_bettermodels.curves import diagnose

        if not {"loss", "val_loss"} <= set(self._curves):
            return  # no validation: nothing to read
        model = _compat_callbacks.bare_model(self)
        self.diagnosis = diagnose(self._curves, model=model)
        if self.verbose > 0:
            for finding in self.diagnosis:
                print_msg(f"Diagnosis: {finding.message}")

    def get_state(self) -> dict[str, Any]:
        """The run's state, to resume it with `set_state` in a new process.

        Returns:
            A dict of JSON-able values (each monitored metric's `best`,
            `best_epoch`, `wait` and errors so far, the epoch, the time used,
            the stopping reason), and, under `"best_weights"`, the best
            weights as a list of NumPy arrays (or `None`).
        """
        return self._state_dict(weights=True)

    def _state_dict(self, *, weights: bool) -> dict[str, Any]:
        reason = self.stopping_reason
        best_weights = self.best_weights if weights else None
        return {
            "monitors": list(self.monitors),
            "states": [state.to_dict() for state in self._states],
            "epoch": self._epoch,
            "elapsed": self._elapsed(),
            "stopped_epoch": self.stopped_epoch,
            "stopping_reason": None if reason is None else _reason_dict(reason),
            "criterion_history": list(self.criterion_history),
            "best_weights": _as_numpy(best_weights),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Puts back what `get_state` returned, as if the epochs had run here.

        Args:
            state: what `get_state` returned (for the same `monitor`).

        Raises:
            ValueError: for a state of other monitored metrics, or not one.
        """
        if not isinstance(state, dict) or state.get("monitors") != list(self.monitors):
            raise ValueError(
                _validation.invalid_value(
                    "state",
                    f"what `get_state()` returned for monitor={list(self.monitors)}",
                    state,
                )
            )
        self._states = tuple(stopping.State.from_dict(s) for s in state["states"])
        first = self._states[0]
        self.best, self.best_epoch = first.best, first.best_epoch
        self.wait = min(s.wait for s in self._states)
        self._epoch = state["epoch"]
        self._elapsed_before, self._began = float(state["elapsed"]), time.monotonic()
        self.stopped_epoch = int(state["stopped_epoch"])
        reason = state["stopping_reason"]
        self.stopping_reason = None if reason is None else StoppingReason(**reason)
        self.criterion_history = list(state["criterion_history"])
        if state.get("best_weights") is not None:
            self.best_weights = WeightsCopy(list(state["best_weights"]))


_CURVES = ("loss", "val_loss", "accuracy", "val_accuracy")


def _as_numpy(weights: Any) -> list[np.ndarray] | None:
    """Kept best weights (a `Snapshot` or a `WeightsCopy`) as NumPy arrays."""
    if weights is None:
        return None
    return [np.asarray(ops.convert_to_numpy(w)) for w in weights._weights]


def _reason_dict(reason: StoppingReason) -> dict[str, Any]:
    return {
        "message": str(reason),
        "criterion": reason.criterion,
        "value": reason.value,
        "epoch": reason.epoch,
    }


def _probe(callback: EarlyStopping, i: int) -> keras.callbacks.EarlyStopping:
    """A Keras `EarlyStopping` on the i-th metric, to infer its mode as Keras."""
    mode = callback.mode if isinstance(callback.mode, str) else callback.mode[i]
    probe = keras.callbacks.EarlyStopping(monitor=callback.monitors[i], mode=mode)
    probe.set_model(_compat_callbacks.bare_model(callback))
    return probe


def _not_validated(name: str, logs: dict[str, Any] | None) -> bool:
    """An epoch `fit` did not validate (`validation_freq > 1`): no `val_` key."""
    return name.startswith("val_") and not any(
        key.startswith("val_") for key in (logs or {})
    )


def _available(logs: dict[str, Any] | None) -> str:
    return f"Available metrics are: {', '.join(logs or {}) or 'none'}."

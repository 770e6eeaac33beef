"""The early-stopping decision, as one pure function over an epoch and the state.

`decide(state, epoch, value, ...)` returns what to do after one epoch: whether
this epoch is the new best, whether to stop and why, Prechelt's measures for the
record, and the new state. `keras_bettermodels.callbacks.EarlyStopping` feeds it
and acts on the answer (stops, snapshots, restores, logs). Nothing here touches
Keras: the one comparison that must be Keras' own (`monitor_op`, with its
dtypes and its errors) is passed in as `Rules.is_improvement`.

The order of the checks, at the end of each epoch:

1. **Non-finite values**, even during the warm-up: a non-finite model or
   optimizer variable (`nonfinite`, found by the caller), then, with
   `check_finite`, a NaN or infinite monitored value. Either stops at once.
2. **Warm-up**: before `start_from_epoch` (or with no monitored value), nothing
   else happens.
3. **Keras' bookkeeping**, exactly `keras.callbacks.EarlyStopping`'s: `wait`
   grows by one; a value better than `best` by more than `min_delta` becomes
   `best`, and resets `wait` if it also beats `baseline`.
4. **Prechelt's measures**: GL, P_k, PQ and UP at this epoch, computed once (a
   `keras_bettermodels.criteria.ErrorHistory`), for the record and step 6.
5. **Thresholds**: `stopping_threshold` (the target is reached), then
   `divergence_threshold` (the run diverges).
6. **The rule**: the `criterion`, on the measures of step 4, if there is one;
   otherwise Keras' patience rule: `wait >= patience` at an epoch that did not
   improve, never the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from keras_bettermodels import _validation, criteria

__all__ = ["Decision", "Rules", "State", "StoppingReason", "check_criterion", "decide"]


class StoppingReason(str):
    """Why training stopped: a sentence that also carries its parts.

    It is a `str` (`print(cb.stopping_reason)`, `"GL" in cb.stopping_reason`)
    with attributes for code that wants the parts.

    Attributes:
        criterion: the rule that fired: a criterion as written (`"GL(5)"`), or
            `"patience"`, `"check_finite"`, `"stopping_threshold"`,
            `"divergence_threshold"`.
        value: the quantity the rule compared (GL(t), PQ(t), the monitored
            value, ...), or `None` for a combination of criteria or a
            non-finite variable.
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


def check_criterion(
    criterion: criteria.Criterion | None,
    patience: int,
    baseline: Any,
    maximize: bool,
    monitor: str,
) -> None:
    """Refuses, beside a `criterion`, what only Keras' patience rule reads.

    Raises:
        ValueError: for a non-default `patience` (suggesting `| Patience(n)`), a
            `baseline`, or a maximized metric (Prechelt's criteria need an
            error to minimize).
    """
    if criterion is None:
        return
    if patience != 0:
        raise ValueError(
            _validation.invalid_value(
                "patience",
                "the default 0 together with `criterion`, which turns Keras' "
                "patience rule off",
                patience,
                f"To keep it, pass `criterion={criterion!r} | Patience({patience})`.",
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
    if maximize:
        raise ValueError(
            f"Prechelt's criteria need an error to minimize, but `{monitor}` "
            f"is maximized (mode='max'). Received: criterion={criterion!r}, "
            f"monitor={monitor!r}. Monitor a loss instead, such as "
            "monitor='val_loss'."
        )


@dataclass(frozen=True)
class Rules:
    """The stopping rules, as `EarlyStopping`'s arguments set them.

    Attributes:
        minimize: whether lower monitored values are better (`"min"` mode).
        min_delta: the smallest change that counts as an improvement (>= 0).
        patience: Keras' patience, used when there is no `criterion`.
        baseline: Keras' baseline: `wait` resets only on values that beat it.
        start_from_epoch: epochs of warm-up, not monitored.
        criterion: Prechelt's rule(s), replacing Keras' patience rule.
        stopping_threshold: stop once the value is better than this.
        divergence_threshold: stop once the value is worse than this.
        check_finite: stop at once on a NaN or infinite monitored value.
        strip_length: the strips of `Decision.measures` (the criterion's).
        is_improvement: `(value, reference) -> bool`, Keras' comparison; by
            default `value` beats `reference` by more than `min_delta` in
            Python floats. The callback passes Keras' own, on the values as
            logged, so that dtypes and errors are Keras'.
    """

    minimize: bool = True
    min_delta: float = 0.0
    patience: int = 0
    baseline: Any = None
    start_from_epoch: int = 0
    criterion: criteria.Criterion | None = None
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None
    check_finite: bool = True
    strip_length: int = criteria.DEFAULT_STRIP_LENGTH
    is_improvement: Callable[[Any, Any], bool] | None = None

    def improves(self, value: Any, reference: Any) -> bool:
        """Keras' `_is_improvement`: anything improves on no reference."""
        if reference is None:
            return True
        if self.is_improvement is not None:
            return self.is_improvement(value, reference)
        if self.minimize:
            return bool(value + self.min_delta < reference)
        return bool(value - self.min_delta > reference)


@dataclass(frozen=True)
class State:
    """What one run has seen so far (reset by `on_train_begin`).

    Attributes:
        best: the best monitored value, as logged (Keras' `best`).
        best_epoch: its 0-based epoch.
        wait: epochs since the last improvement that beat `baseline`.
        val_errors: the monitored values of the monitored epochs (E_va).
        train_errors: the training errors logged with them (E_tr).
    """

    best: Any = None
    best_epoch: int = 0
    wait: int = 0
    val_errors: tuple[float, ...] = field(default=())
    train_errors: tuple[float, ...] = field(default=())


@dataclass(frozen=True)
class Decision:
    """What `decide` says about one epoch.

    Attributes:
        state: the state after this epoch.
        improved: whether this epoch's value became `best` (keep its weights).
        reason: why to stop, or `None` to go on.
        measures: GL, P_k, PQ and UP at this epoch, or `None` where they are
            not defined (warm-up, a maximized metric, a negative value).
    """

    state: State
    improved: bool = False
    reason: StoppingReason | None = None
    measures: dict[str, float | int | None] | None = None

    @property
    def stop(self) -> bool:
        """Whether to stop training after this epoch."""
        return self.reason is not None


def _reason(epoch: int, rule: str, value: float | None, detail: str) -> StoppingReason:
    return StoppingReason(
        f"Epoch {epoch + 1}: early stopping by {rule}: {detail}.",
        criterion=rule,
        value=value,
        epoch=epoch,
    )


def decide(
    state: State,
    epoch: int,
    value: Any,
    *,
    rules: Rules,
    number: float | None = None,
    train_error: float | None = None,
    nonfinite: str | None = None,
    monitor: str = "val_loss",
) -> Decision:
    """Decides, after `epoch`, whether to stop, in the order of the module's doc.

    Args:
        state: the state after the previous epoch (`State()` at the start).
        epoch: Keras' 0-based epoch.
        value: the monitored value as logged, or `None` if it was not.
        rules: the rules.
        number: `value` as a float when it is one number; `None` for a value
            that is not (only Keras' comparison sees those, and raises as
            Keras does). Defaults to `float(value)` for a Python number.
        train_error: the training error of this epoch (E_tr), if logged.
        nonfinite: a description of the first non-finite variable, if any.
        monitor: the monitored metric's name, for the reason. Defaults to
            `"val_loss"`.

    Returns:
        A `Decision`; its `state` is the state to pass for the next epoch.

    Raises:
        ValueError: from the criterion, for negative errors or a missing
            training error it needs.
    """
    if number is None and isinstance(value, int | float):
        number = float(value)
    if nonfinite is not None:
        return Decision(state, reason=_reason(epoch, "check_finite", None, nonfinite))
    if rules.check_finite and number is not None and not math.isfinite(number):
        detail = f"`{monitor}` is {number}, not finite"
        return Decision(state, reason=_reason(epoch, "check_finite", number, detail))
    if value is None or epoch < rules.start_from_epoch:
        return Decision(state)

    best, best_epoch, wait = state.best, state.best_epoch, state.wait + 1
    improved = rules.improves(value, best)
    if improved:
        best, best_epoch = value, epoch
        if rules.baseline is None or rules.improves(value, rules.baseline):
            wait = 0
    state = replace(state, best=best, best_epoch=best_epoch, wait=wait)
    if number is None:  # Not one number: Keras' bookkeeping only.
        return Decision(state, improved=improved)

    state = replace(
        state,
        val_errors=(*state.val_errors, number),
        train_errors=state.train_errors
        + (() if train_error is None else (train_error,)),
    )
    history, measures = None, None
    if rules.minimize:
        history = criteria.ErrorHistory(state.val_errors, state.train_errors or None)
        try:
            measures = history.measures(rules.strip_length)
        except ValueError:
            if rules.criterion is not None:
                raise
            history = None  # Without a criterion the measures are extras.

    reason = _threshold_reason(rules, number, monitor, epoch) or _rule_reason(
        rules, history, improved, wait, epoch, monitor
    )
    return Decision(state, improved=improved, reason=reason, measures=measures)


def _rule_reason(
    rules: Rules,
    history: criteria.ErrorHistory | None,
    improved: bool,
    wait: int,
    epoch: int,
    monitor: str,
) -> StoppingReason | None:
    if rules.criterion is not None:
        firing = None if history is None else rules.criterion.evaluate_history(history)
        if firing is None:
            return None
        return _reason(epoch, firing.criterion, firing.value, firing.detail)
    # Keras' patience rule, exactly: never at an improvement, nor after epoch 0.
    if improved or wait < rules.patience or epoch == 0:
        return None
    detail = (
        f"no improvement in `{monitor}` for {wait} epochs (patience={rules.patience})"
    )
    return _reason(epoch, "patience", float(wait), detail)


def _threshold_reason(
    rules: Rules, number: float, monitor: str, epoch: int
) -> StoppingReason | None:
    def better(a: float, b: float) -> bool:
        return a < b if rules.minimize else a > b

    name = f"`{monitor}`={number:.4g}"
    stop, diverge = rules.stopping_threshold, rules.divergence_threshold
    if stop is not None and better(number, stop):
        detail = f"{name} reached stopping_threshold={stop:g}"
        return _reason(epoch, "stopping_threshold", number, detail)
    if diverge is not None and better(diverge, number):
        detail = f"{name} crossed divergence_threshold={diverge:g}"
        return _reason(epoch, "divergence_threshold", number, detail)
    return None

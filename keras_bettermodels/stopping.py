"""The early-stopping decision, as one pure function over an epoch and the state.

`decide(state, epoch, value, ...)` returns what to do after one epoch: whether
this epoch is the new best, whether to stop and why, Prechelt's measures for the
record, and the new state. `keras_bettermodels.callbacks.EarlyStopping` turns
the logged value into a float, feeds it and acts on the answer (stops,
snapshots, restores, logs). Nothing here touches Keras: every "is this better"
is `keras_bettermodels.criteria`' one comparison, on signed values (a maximized
metric negated), in the float type Keras compares the logged values in
(`Rules.precision`).

The order of the checks, at the end of each epoch:

1. **Non-finite values**, even during the warm-up: a non-finite model or
   optimizer variable (`nonfinite`, found by the caller; `check_state` is this
   step alone, for the end of training), then, with `check_finite`, a NaN or
   infinite monitored value. Either stops at once.
2. **Warm-up**: before `start_from_epoch` (or with no monitored value), nothing
   else happens.
3. **Keras' bookkeeping**, exactly `keras.callbacks.EarlyStopping`'s: `wait`
   grows by one; a value better than `best` by more than `min_delta` becomes
   `best`, and resets `wait` if it also beats `baseline`. It is Keras' patience
   rule's own (`criteria.Patience.track`).
4. **Prechelt's measures**: GL, P_k, PQ and UP at this epoch, computed once (a
   `keras_bettermodels.criteria.ErrorHistory`), for the record and step 6.
5. **Thresholds**: `stopping_threshold` (the target is reached), then
   `divergence_threshold` (the run diverges).
6. **The rule**: the `criterion`, on the measures of step 4 (and the time
   since training began, for `TimeLimit`), if there is one; otherwise Keras'
   patience rule, the `Patience` criterion of step 3: `wait >= patience` at an
   epoch that did not improve, never the first.

Several monitored metrics (`decide_all`): one `decide` per metric, each with
its own state; a non-finite value or variable or a threshold stops at once,
the rule (patience or criterion) only when it fires for every metric at the
same epoch: training stops when all of them have stalled.

An epoch without a monitored value (not validated, with `validation_freq > 1`)
changes nothing: strips and patience count the monitored epochs.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from keras_bettermodels import _validation, criteria
from keras_bettermodels.criteria._improvement import PRECISIONS, improves
from keras_bettermodels.criteria._patience import (
    Patience,
    check_min_delta_mode,
    keras_rule,
)

__all__ = [
    "Decision",
    "Joint",
    "Rules",
    "State",
    "StoppingReason",
    "check_criterion",
    "check_monitors",
    "check_state",
    "decide",
    "decide_all",
]


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
    if patience != 0 and criterion.needs_errors:
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
    if maximize and criterion.needs_errors:
        raise ValueError(
            f"Prechelt's criteria need an error to minimize, but `{monitor}` "
            f"is maximized (mode='max'). Received: criterion={criterion!r}, "
            f"monitor={monitor!r}. Monitor a loss instead, such as "
            "monitor='val_loss'."
        )


def check_monitors(monitor: Any, mode: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`EarlyStopping`'s `monitor` and `mode` as tuples, one entry per metric.

    Raises:
        TypeError: for a `monitor` that is neither a name nor a list of names.
        ValueError: for repeated names, or a `mode` list of another length.
    """
    names = (monitor,) if isinstance(monitor, str) else monitor
    if not isinstance(names, list | tuple) or not names:
        expected = "a metric name or a non-empty list of them"
        raise TypeError(_validation.invalid_type("monitor", expected, monitor))
    for i, name in enumerate(names):
        _validation.check_str(
            "monitor" if names is not monitor else f"monitor[{i}]", name
        )
    if len(set(names)) != len(names):
        raise ValueError(
            _validation.invalid_value("monitor", "distinct metric names", monitor)
        )
    modes = (mode,) * len(names) if isinstance(mode, str) else mode
    if not isinstance(modes, list | tuple) or len(modes) != len(names):
        expected = f'"auto", "min" or "max", or a list of {len(names)} of them'
        raise ValueError(_validation.invalid_value("mode", expected, mode))
    for i, one in enumerate(modes if not isinstance(mode, str) else ()):
        if one not in ("auto", "min", "max"):
            expected = 'one of "auto", "min" or "max"'
            raise ValueError(_validation.invalid_value(f"mode[{i}]", expected, one))
    return tuple(names), tuple(modes)


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
        is_improvement: deprecated (`precision` replaces it): `(value,
            reference) -> bool`, still used for `best` and `wait` until the
            next release.
        precision: the float type Keras compares the monitored values in:
            `"float32"` for the Python floats `fit` logs (Keras' `floatx`),
            else the logged value's own. Defaults to `"float64"` (exact).
        min_delta_mode: `"abs"`: an improvement beats `best` by more than
            `min_delta` (Keras'); `"rel"`: by more than `min_delta * |best|`.
            Defaults to `"abs"`.
    """

    minimize: bool = True
    min_delta: float = 0.0
    patience: float = 0
    baseline: float | None = None
    start_from_epoch: float = 0
    criterion: criteria.Criterion | None = None
    stopping_threshold: float | None = None
    divergence_threshold: float | None = None
    check_finite: bool = True
    strip_length: int = criteria.DEFAULT_STRIP_LENGTH
    is_improvement: Callable[[Any, Any], bool] | None = None
    precision: str = "float64"
    min_delta_mode: str = "abs"

    def __post_init__(self) -> None:
        check_min_delta_mode(self.min_delta_mode)
        if self.precision not in PRECISIONS:
            raise ValueError(
                _validation.invalid_value(
                    "precision", f"one of {PRECISIONS}", self.precision
                )
            )
        if self.is_improvement is not None:
            warnings.warn(
                "`Rules(is_improvement=...)` is deprecated and will be removed in "
                "the next release: `decide` compares floats itself, in "
                "`Rules.precision`.",
                DeprecationWarning,
                stacklevel=3,
            )

    @property
    def sign(self) -> float:
        """1 in `"min"` mode, -1 in `"max"` mode: signed values are lower-better."""
        return 1.0 if self.minimize else -1.0

    def keras_rule(self) -> Patience:
        """Keras' patience rule, whose bookkeeping `decide` keeps in the state."""
        baseline = None if self.baseline is None else self.sign * self.baseline
        return keras_rule(
            self.patience,
            self.min_delta,
            baseline,
            self.precision,
            self.min_delta_mode,
        )

    def improves(self, value: Any, reference: Any) -> bool:
        """Deprecated: Keras' `_is_improvement`; anything improves on no reference."""
        warnings.warn(
            "`Rules.improves` is deprecated and will be removed in the next release.",
            DeprecationWarning,
            stacklevel=2,
        )
        if reference is None:
            return True
        if self.is_improvement is not None:
            return self.is_improvement(value, reference)
        signed = self.sign * value, self.sign * reference
        return improves(*signed, self.min_delta, self.precision)


@dataclass(frozen=True)
class State:
    """What one run has seen so far (reset by `on_train_begin`).

    Attributes:
        best: the best monitored value (Keras' `best`, as a float).
        best_epoch: its 0-based epoch.
        wait: epochs since the last improvement that beat `baseline`.
        val_errors: the monitored values of the monitored epochs (E_va).
        train_errors: the training errors logged with them (E_tr).
    """

    best: float | None = None
    best_epoch: int = 0
    wait: int = 0
    val_errors: tuple[float, ...] = field(default=())
    train_errors: tuple[float, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-able Python values (lists for the tuples)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        """The state `to_dict` returned.

        Raises:
            ValueError: for a dict that is not one (a missing or unknown key).
        """
        names = {f for f in cls.__dataclass_fields__}
        if not isinstance(data, dict) or set(data) != names:
            raise ValueError(
                _validation.invalid_value(
                    "state", f"a dict with the keys {sorted(names)}", data
                )
            )
        best = data["best"]
        return cls(
            best=None if best is None else float(best),
            best_epoch=int(data["best_epoch"]),
            wait=int(data["wait"]),
            val_errors=tuple(float(v) for v in data["val_errors"]),
            train_errors=tuple(float(v) for v in data["train_errors"]),
        )


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


def check_state(epoch: int, nonfinite: str | None) -> StoppingReason | None:
    """Step 1 alone: why to stop for a non-finite variable, if there is one.

    The end-of-training check: a batch after the last epoch end may spoil the
    state.

    Args:
        epoch: the 0-based epoch to report.
        nonfinite: a description of the first non-finite variable, or `None`.
    """
    return (
        None if nonfinite is None else _reason(epoch, "check_finite", None, nonfinite)
    )


_UNSET: Any = object()


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise TypeError(
        _validation.invalid_type("value", "the monitored value as a float", value)
    )


def decide(
    state: State,
    epoch: int,
    value: float | None,
    *,
    rules: Rules,
    train_error: float | None = None,
    nonfinite: str | None = None,
    monitor: str = "val_loss",
    number: Any = _UNSET,
    elapsed: float | None = None,
) -> Decision:
    """Decides, after `epoch`, whether to stop, in the order of the module's doc.

    Args:
        state: the state after the previous epoch (`State()` at the start).
        epoch: Keras' 0-based epoch.
        value: the monitored value as a float, or `None` if it was not logged.
        rules: the rules.
        train_error: the training error of this epoch (E_tr), if logged.
        nonfinite: a description of the first non-finite variable, if any.
        monitor: the monitored metric's name, for the reason. Defaults to
            `"val_loss"`.
        number: deprecated: pass the float as `value`.
        elapsed: seconds since training began, for `TimeLimit`. Defaults to
            `None`.

    Returns:
        A `Decision`; its `state` is the state to pass for the next epoch.

    Raises:
        TypeError: for a `value` that is not a number.
        ValueError: from the criterion, for negative errors or a missing
            training error it needs.
    """
    if number is not _UNSET:
        warnings.warn(
            "`decide(number=...)` is deprecated and will be removed in the next "
            "release; pass the monitored value as a float, as `value`.",
            DeprecationWarning,
            stacklevel=2,
        )
        value = number
    value = _as_float(value)
    reason = check_state(epoch, nonfinite)
    finite = value is None or not rules.check_finite or math.isfinite(value)
    if reason is None and not finite:
        detail = f"`{monitor}` is {value}, not finite"
        reason = _reason(epoch, "check_finite", value, detail)
    if reason is not None:
        return Decision(state, reason=reason)
    if value is None or epoch < rules.start_from_epoch:
        return Decision(state)

    keras_patience, sign = rules.keras_rule(), rules.sign
    best = None if state.best is None else sign * state.best
    improved, best, wait = keras_patience.track(best, state.wait, sign * value)
    if rules.is_improvement is not None:
        compare = rules.is_improvement
        improved, best, wait = _track_deprecated(compare, rules, state, value)
    state = replace(
        state,
        best=None if best is None else sign * best,
        best_epoch=epoch if improved else state.best_epoch,
        wait=wait,
        val_errors=(*state.val_errors, value),
        train_errors=state.train_errors
        + (() if train_error is None else (float(train_error),)),
    )
    measures = None
    history = criteria.ErrorHistory(
        state.val_errors, state.train_errors or None, elapsed
    )
    if rules.minimize:  # Prechelt's measures need errors to minimize.
        try:
            measures = history.measures(rules.strip_length)
        except ValueError:
            if rules.criterion is not None:
                raise  # Without a criterion the measures are extras.

    reason = _threshold_reason(rules, value, monitor, epoch)
    if reason is None and rules.criterion is not None:
        # `check_criterion` refuses a maximized metric to rules that need errors.
        firing = rules.criterion.evaluate_history(history)
        if firing is not None:
            reason = _reason(epoch, firing.criterion, firing.value, firing.detail)
    elif reason is None:
        firing = keras_patience.fires(improved, wait, len(state.val_errors))
        if firing is not None:
            detail = f"no improvement in `{monitor}` for {wait} epochs"
            detail += f" (patience={rules.patience})"
            reason = _reason(epoch, "patience", firing.value, detail)
    return Decision(state, improved=improved, reason=reason, measures=measures)


def _track_deprecated(
    compare: Callable[[Any, Any], bool], rules: Rules, state: State, value: float
) -> tuple[bool, float | None, int]:
    """Keras' bookkeeping with `Rules.is_improvement`, for one more release."""
    wait = state.wait + 1
    improved = state.best is None or bool(compare(value, state.best))
    if improved and (rules.baseline is None or compare(value, rules.baseline)):
        wait = 0
    best = value if improved else state.best
    return improved, None if best is None else rules.sign * best, wait


def _threshold_reason(
    rules: Rules, value: float, monitor: str, epoch: int
) -> StoppingReason | None:
    name, sign = f"`{monitor}`={value:.4g}", rules.sign
    stop, diverge = rules.stopping_threshold, rules.divergence_threshold
    if stop is not None and improves(sign * value, sign * stop):
        detail = f"{name} reached stopping_threshold={stop:g}"
        return _reason(epoch, "stopping_threshold", value, detail)
    if diverge is not None and improves(sign * diverge, sign * value):
        detail = f"{name} crossed divergence_threshold={diverge:g}"
        return _reason(epoch, "divergence_threshold", value, detail)
    return None


#: Rules that stop at once, whichever metric they are about.
_AT_ONCE = ("check_finite", "stopping_threshold", "divergence_threshold")


@dataclass(frozen=True)
class Joint:
    """What `decide_all` says about one epoch, for several monitored metrics.

    Attributes:
        decisions: one `Decision` per metric, in `monitor`'s order (their
            reasons are each metric's own).
        reason: why to stop, or `None` to go on.
    """

    decisions: tuple[Decision, ...]
    reason: StoppingReason | None = None

    @property
    def stop(self) -> bool:
        """Whether to stop training after this epoch."""
        return self.reason is not None

    @property
    def improved(self) -> bool:
        """Whether any metric improved at this epoch."""
        return any(d.improved for d in self.decisions)

    @property
    def states(self) -> tuple[State, ...]:
        """The state of each metric after this epoch."""
        return tuple(d.state for d in self.decisions)


def decide_all(
    states: Sequence[State],
    epoch: int,
    values: Sequence[float | None],
    *,
    rules: Sequence[Rules],
    monitors: Sequence[str],
    train_error: float | None = None,
    nonfinite: str | None = None,
    elapsed: float | None = None,
) -> Joint:
    """`decide` for each monitored metric, combined: stop when all have stalled.

    A non-finite value or variable, or a threshold, stops at once; the rule
    (Keras' patience or the criterion) stops only when it fires for every
    metric at this epoch. With one metric, the reason is `decide`'s own.

    Args:
        states, values, rules, monitors: one per metric: its state after the
            previous epoch, its value (or `None`), its rules, its name.
        epoch, train_error, nonfinite, elapsed: as for `decide`.

    Returns:
        A `Joint`: each metric's decision, and the combined reason.
    """
    decisions = tuple(
        decide(
            state,
            epoch,
            value,
            rules=rule,
            train_error=train_error,
            nonfinite=nonfinite if i == 0 else None,
            monitor=monitor,
            elapsed=elapsed,
        )
        for i, (state, value, rule, monitor) in enumerate(
            zip(states, values, rules, monitors, strict=True)
        )
    )
    reasons = [d.reason for d in decisions]
    for reason in reasons:
        if reason is not None and reason.criterion in _AT_ONCE:
            return Joint(decisions, reason)
    if len(reasons) == 1 or any(r is None for r in reasons):
        return Joint(decisions, reasons[0] if len(reasons) == 1 else None)
    fired = [r for r in reasons if r is not None]
    rule = " & ".join(dict.fromkeys(r.criterion for r in fired))
    details = "; ".join(
        d if f"`{m}`" in d else f"`{m}`: {d}"
        for m, d in (
            (m, str(r).split(": ", 2)[-1].rstrip("."))
            for m, r in zip(monitors, fired, strict=True)
        )
    )
    return Joint(
        decisions, _reason(epoch, rule, fired[0].value, f"all stalled: {details}")
    )

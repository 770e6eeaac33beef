"""Keras' patience rule, as a criterion over signed values like the others."""

from __future__ import annotations

from collections.abc import Sequence

from keras_bettermodels import _validation
from keras_bettermodels.criteria._base import Criterion, Firing, fmt
from keras_bettermodels.criteria._history import ErrorHistory
from keras_bettermodels.criteria._improvement import MIN_DELTA_MODES, improves
from keras_bettermodels.criteria._measures import check_sequence


class Patience(Criterion):
    """Keras' patience rule as a criterion, to combine with the others.

    Stops when the validation error has not improved on its best by more than
    `min_delta` for `patience` epochs — exactly the rule of
    `keras.callbacks.EarlyStopping(patience=..., min_delta=...)`, which never
    stops at an epoch that improved, nor after the first epoch.

    Args:
        patience: epochs without improvement before stopping.
        min_delta: smallest decrease that counts as an improvement. Defaults to
            `0`.
        min_delta_mode: `"abs"` (Keras'): an improvement beats the best by
            more than `min_delta`; `"rel"`: by more than `min_delta * |best|`.
            Defaults to `"abs"`.
    """

    _precision = "float64"  # `keras_rule` sets Keras' own

    def __init__(
        self, patience: int, min_delta: float = 0, min_delta_mode: str = "abs"
    ) -> None:
        self.patience: float = _validation.check_int("patience", patience)
        self.min_delta = abs(_validation.check_number("min_delta", min_delta))
        self.min_delta_mode = check_min_delta_mode(min_delta_mode)
        self.baseline: float | None = None

    def track(
        self, best: float | None, wait: int, value: float
    ) -> tuple[bool, float | None, int]:
        """One epoch of Keras' bookkeeping on a signed value.

        Returns:
            `(improved, best, wait)`: whether `value` beat `best`, the new best,
                and the epochs since the last improvement that beat `baseline`.
        """
        wait += 1
        margin = self.min_delta, self._precision
        mode = self.min_delta_mode
        if not improves(value, best, *margin, min_delta_mode=mode):
            return False, best, wait
        if self.baseline is None or improves(
            value, self.baseline, *margin, min_delta_mode=mode
        ):
            wait = 0
        return True, value, wait

    def fires(self, improved: bool, wait: int, t: int) -> Firing | None:
        """The rule, once `track` has run on epoch t (1-based, monitored)."""
        # Keras never stops at an improving epoch nor after the first epoch.
        if improved or wait < self.patience or t < 2:
            return None
        detail = f"no improvement for {wait} epochs (patience={self.patience})"
        return Firing(repr(self), float(wait), detail)

    def _replay(self, val_errors: Sequence[float]) -> tuple[bool, int]:
        best, wait, improved = None, 0, False
        for error in val_errors:
            improved, best, wait = self.track(best, wait, error)
        return improved, wait

    def epochs_without_improvement(self, val_errors: Sequence[float]) -> int:
        """How many epochs, up to t, the errors went without a new best."""
        return self._replay(check_sequence("val_errors", val_errors))[1]

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        return self.fires(*self._replay(history.val_errors), history.t)

    def __repr__(self) -> str:
        suffix = f", min_delta={fmt(self.min_delta)}" if self.min_delta else ""
        if self.min_delta_mode != "abs":
            suffix += f", min_delta_mode={self.min_delta_mode!r}"
        return f"Patience({self.patience}{suffix})"


def check_min_delta_mode(min_delta_mode: object) -> str:
    """`min_delta_mode`, checked: `"abs"` or `"rel"`."""
    if min_delta_mode not in MIN_DELTA_MODES:
        raise ValueError(
            _validation.invalid_value(
                "min_delta_mode", 'one of "abs" or "rel"', min_delta_mode
            )
        )
    return str(min_delta_mode)


def keras_rule(
    patience: float,
    min_delta: float = 0.0,
    baseline: float | None = None,
    precision: str = "float64",
    min_delta_mode: str = "abs",
) -> Patience:
    """Keras' own rule, unchecked: Keras takes a `patience` of 1.5 or -1.

    `baseline` (signed): `wait` restarts only at values that also beat it.
    `precision`: the float type Keras compares the logged values in.
    `min_delta_mode`: `"abs"` (Keras') or `"rel"`.
    """
    rule = Patience.__new__(Patience)
    rule.patience, rule.min_delta, rule.baseline = patience, abs(min_delta), baseline
    rule.min_delta_mode = min_delta_mode
    rule._precision = precision
    return rule

"""Prechelt's measures, GL(t), P_k(t) and the UP count, as functions of the errors.

Each formula is written once, in a private function over plain sequences; the
public functions check their arguments first, and `ErrorHistory` computes each
measure once per epoch for every criterion that reads it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from keras_bettermodels import _validation

DEFAULT_STRIP_LENGTH = 5

Measures = dict[str, float | int | None]


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, with x / 0 = inf for x > 0 and 0 / 0 = 0."""
    if denominator == 0:
        return math.inf if numerator > 0 else 0.0
    return numerator / denominator


def check_strip_length(strip_length: Any) -> int:
    return _validation.check_int("strip_length", strip_length, minimum=1)


def check_sequence(name: str, values: Any) -> Sequence[float]:
    """Checks that `values` is a sequence of real numbers (NumPy's included)."""
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        raise TypeError(
            _validation.invalid_type(name, "a sequence of numbers (a list)", values)
        )
    for index, value in enumerate(values):
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(
                _validation.invalid_type(f"{name}[{index}]", "a number", value)
            )
    return values


def _check_errors(name: str, errors: Sequence[float]) -> None:
    for error in errors:
        if error < 0:
            raise ValueError(
                f"Prechelt's criteria need non-negative errors (losses), but "
                f"`{name}` holds {error!r}. Monitor a loss, not a score that can "
                "be negative."
            )


def strip_ends(t: int, strip_length: int) -> bool:
    return t >= strip_length and t % strip_length == 0


def gl(val_errors: Sequence[float]) -> float:
    _check_errors("val_errors", val_errors)
    best, current = min(val_errors), val_errors[-1]
    if best == 0:
        return math.inf if current > 0 else 0.0
    return 100.0 * (current / best - 1.0)


def p_k(train_errors: Sequence[float], strip_length: int) -> float:
    if len(train_errors) < strip_length:
        raise ValueError(
            _validation.invalid_value(
                "train_errors",
                f"a whole strip of {strip_length} training errors for P_k",
                train_errors,
            )
        )
    strip = train_errors[-strip_length:]
    _check_errors("train_errors", strip)
    return 1000.0 * (ratio(sum(strip), strip_length * min(strip)) - 1.0)


def up(val_errors: Sequence[float], strip_length: int) -> int:
    t, count = len(val_errors), 0
    if strip_ends(t, strip_length):
        while t - (count + 1) * strip_length >= 1:
            later = val_errors[t - count * strip_length - 1]
            earlier = val_errors[t - (count + 1) * strip_length - 1]
            if not later > earlier:
                break
            count += 1
    return count


def check_elapsed(elapsed: Any) -> float | None:
    """Seconds since training began: a non-negative number, or `None`."""
    if elapsed is None:
        return None
    if not isinstance(elapsed, numbers.Real) or isinstance(elapsed, bool):
        raise TypeError(_validation.invalid_type("elapsed", "seconds", elapsed))
    if not float(elapsed) >= 0:
        raise ValueError(_validation.invalid_value("elapsed", "seconds, >= 0", elapsed))
    return float(elapsed)


def check_val_errors(val_errors: Any) -> Sequence[float]:
    check_sequence("val_errors", val_errors)
    if not val_errors:
        raise ValueError(
            _validation.invalid_value(
                "val_errors", "the errors of at least one epoch", val_errors
            )
        )
    return val_errors


def generalization_loss(val_errors: Sequence[float]) -> float:
    """Returns GL(t) in percent for t = `len(val_errors)`.

    Args:
        val_errors: E_va(1) ... E_va(t), the validation errors so far.

    Returns:
        `100 * (E_va(t) / E_opt(t) - 1)`; 0 at a new best.

    Raises:
        TypeError: if `val_errors` is not a sequence of numbers.
        ValueError: if it is empty or holds a negative error.
    """
    return float(gl(check_val_errors(val_errors)))


def is_strip_end(t: int, strip_length: int = DEFAULT_STRIP_LENGTH) -> bool:
    """Returns whether epoch `t` (1-based) ends a training strip of `strip_length`.

    Raises:
        TypeError: if `t` or `strip_length` is not an integer.
        ValueError: if `t` is negative or `strip_length` is not positive.
    """
    return strip_ends(_validation.check_int("t", t), check_strip_length(strip_length))


def training_progress(
    train_errors: Sequence[float], strip_length: int = DEFAULT_STRIP_LENGTH
) -> float:
    """Returns P_k(t), in per mille, over the last `strip_length` training errors.

    Args:
        train_errors: E_tr(1) ... E_tr(t), at least `strip_length` of them.
        strip_length: k, the length of a training strip. Defaults to `5`.

    Returns:
        `1000 * (sum(strip) / (k * min(strip)) - 1)`: how much larger the
            strip's mean error is than its minimum. 0 when training has
            flattened.

    Raises:
        TypeError: if `train_errors` is not a sequence of numbers or
            `strip_length` not an integer.
        ValueError: if `strip_length` is not positive, or there are fewer than
            `strip_length` errors, or one of the strip's is negative.
    """
    strip_length = check_strip_length(strip_length)
    return float(p_k(check_sequence("train_errors", train_errors), strip_length))


def up_count(
    val_errors: Sequence[float], strip_length: int = DEFAULT_STRIP_LENGTH
) -> int:
    """Returns for how many successive strip ends, up to t, E_va has risen.

    `E_va(t) > E_va(t - k) > ... > E_va(t - n*k)` holds for n = the returned
    count. 0 when t is not a strip end (and for an empty history).

    Raises:
        TypeError: if `val_errors` is not a sequence of numbers or
            `strip_length` not an integer.
        ValueError: if `strip_length` is not positive.
    """
    strip_length = check_strip_length(strip_length)
    return up(check_sequence("val_errors", val_errors), strip_length)

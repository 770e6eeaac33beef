"""Prechelt's early-stopping criteria, as pure functions over error histories.

Epochs are numbered t = 1, 2, ... as in the paper: `val_errors[t - 1]` is
E_va(t) and `train_errors[t - 1]` is E_tr(t). Both are "lower is better" and
positive (losses).

- GL(t) = 100 * (E_va(t) / E_opt(t) - 1), E_opt(t) = min of E_va up to t.
- P_k(t) = 1000 * (sum of E_tr over the strip / (k * min of E_tr over it) - 1),
  for the training strip t - k + 1 ... t that ends at a multiple of k.
- GL_alpha stops after the first epoch with GL(t) > alpha; PQ_alpha after the
  first strip end with GL(t) / P_k(t) > alpha; UP_s after the strip end where
  the validation error rose at s successive strip ends.

Criteria combine: `GL(5) | UP(3)` stops when either fires, `GL(2) & UP(2)` when
both fire at the same epoch.

References:
    Lutz Prechelt, "Early Stopping -- But When?", in Neural Networks: Tricks of
    the Trade, Springer, 1998 (2nd ed. 2012).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from keras_bettermodels import _validation

__all__ = [
    "GL",
    "PQ",
    "UP",
    "AllOf",
    "AnyOf",
    "Criterion",
    "Firing",
    "Patience",
    "generalization_loss",
    "get",
    "is_strip_end",
    "measures",
    "training_progress",
    "up_count",
]

DEFAULT_STRIP_LENGTH = 5


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, with x / 0 = inf for x > 0 and 0 / 0 = 0."""
    if denominator == 0:
        return math.inf if numerator > 0 else 0.0
    return numerator / denominator


def _check_errors(name: str, errors: Sequence[float]) -> None:
    for error in errors:
        if error < 0:
            raise ValueError(
                f"Prechelt's criteria need non-negative errors (losses), but "
                f"`{name}` holds {error!r}. Monitor a loss, not a score that can "
                "be negative."
            )


def generalization_loss(val_errors: Sequence[float]) -> float:
    """Returns GL(t) in percent for t = `len(val_errors)`.

    Args:
        val_errors: E_va(1) ... E_va(t), the validation errors so far.

    Returns:
        `100 * (E_va(t) / E_opt(t) - 1)`; 0 at a new best.
    """
    if not val_errors:
        raise ValueError("`val_errors` must hold at least one epoch. Received: []")
    _check_errors("val_errors", val_errors)
    best, current = min(val_errors), val_errors[-1]
    if best == 0:
        return math.inf if current > 0 else 0.0
    return 100.0 * (current / best - 1.0)


def is_strip_end(t: int, strip_length: int = DEFAULT_STRIP_LENGTH) -> bool:
    """Returns whether epoch `t` (1-based) ends a training strip of `strip_length`."""
    return t >= strip_length and t % strip_length == 0


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
    """
    if len(train_errors) < strip_length:
        raise ValueError(
            f"P_k needs a whole strip of {strip_length} training errors. "
            f"Received: {len(train_errors)} errors"
        )
    strip = train_errors[-strip_length:]
    _check_errors("train_errors", strip)
    return 1000.0 * (_ratio(sum(strip), strip_length * min(strip)) - 1.0)


def up_count(
    val_errors: Sequence[float], strip_length: int = DEFAULT_STRIP_LENGTH
) -> int:
    """Returns for how many successive strip ends, up to t, E_va has risen.

    `E_va(t) > E_va(t - k) > ... > E_va(t - n*k)` holds for n = the returned
    count. 0 when t is not a strip end.
    """
    t = len(val_errors)
    if not is_strip_end(t, strip_length):
        return 0
    count = 0
    while t - (count + 1) * strip_length >= 1:
        later = val_errors[t - count * strip_length - 1]
        earlier = val_errors[t - (count + 1) * strip_length - 1]
        if not later > earlier:
            break
        count += 1
    return count


def measures(
    val_errors: Sequence[float],
    train_errors: Sequence[float] | None = None,
    strip_length: int = DEFAULT_STRIP_LENGTH,
) -> dict[str, float | int | None]:
    """Returns GL(t), P_k(t), PQ(t) and the UP count at t = `len(val_errors)`.

    P_k, PQ and UP are defined at strip ends only and are `None` elsewhere (P_k
    and PQ are also `None` without `train_errors`).
    """
    t = len(val_errors)
    gl = generalization_loss(val_errors)
    strip_end = is_strip_end(t, strip_length)
    p_k = pq = None
    if strip_end and train_errors is not None and len(train_errors) >= strip_length:
        p_k = training_progress(train_errors, strip_length)
        pq = _ratio(gl, p_k)
    up = up_count(val_errors, strip_length) if strip_end else None
    return {"GL": gl, "P_k": p_k, "PQ": pq, "UP": up}


@dataclass(frozen=True)
class Firing:
    """What a criterion says when it fires.

    Attributes:
        criterion: the criterion that fired, as written (`"GL(5)"`).
        value: the quantity it compared (GL, PQ, the UP count, ...), or `None`
            for a combination.
        detail: a human-readable comparison (`"GL=6.31 > 5"`).
    """

    criterion: str
    value: float | None
    detail: str


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class Criterion:
    """Base class: a rule that says, at each epoch, whether to stop.

    Subclasses implement `evaluate(val_errors, train_errors)`, which returns a
    `Firing` when the rule says stop after epoch t = `len(val_errors)`, else
    `None`. Combine criteria with `|` (any) and `&` (all at the same epoch).
    """

    #: Whether the rule reads training errors (E_tr).
    needs_train_errors: bool = False

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        raise NotImplementedError

    @property
    def strip_length(self) -> int | None:
        """The strip length the rule uses, or `None` if it uses no strips."""
        return None

    def __or__(self, other: Criterion | str) -> Criterion:
        return AnyOf(self, get(other))

    def __ror__(self, other: Criterion | str) -> Criterion:
        return AnyOf(get(other), self)

    def __and__(self, other: Criterion | str) -> Criterion:
        return AllOf(self, get(other))

    def __rand__(self, other: Criterion | str) -> Criterion:
        return AllOf(get(other), self)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


class GL(Criterion):
    """GL_alpha: stop after the first epoch whose generalization loss exceeds alpha.

    Args:
        alpha: threshold on GL(t), in percent: `GL(5)` stops once the
            validation error is more than 5 % above the best seen so far.

    References:
        Prechelt 1998, "Early Stopping -- But When?", criterion GL_alpha.
    """

    def __init__(self, alpha: float) -> None:
        self.alpha = _validation.check_number("alpha", alpha, strictly_positive=True)

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        gl = generalization_loss(val_errors)
        if gl > self.alpha:
            return Firing(repr(self), gl, f"GL={_fmt(gl)} > {_fmt(self.alpha)}")
        return None

    def __repr__(self) -> str:
        return f"GL({_fmt(self.alpha)})"


class PQ(Criterion):
    """PQ_alpha: stop at the first strip end where GL(t) / P_k(t) exceeds alpha.

    The quotient of generalization loss and training progress: stop when the
    validation error grows faster than the training error still falls. Reads the
    training error named by `EarlyStopping(training_monitor=...)`.

    Args:
        alpha: threshold on GL(t) / P_k(t).
        strip_length: k, the training-strip length. Defaults to `5`.

    References:
        Prechelt 1998, "Early Stopping -- But When?", criterion PQ_alpha.
    """

    needs_train_errors = True

    def __init__(self, alpha: float, strip_length: int = DEFAULT_STRIP_LENGTH) -> None:
        self.alpha = _validation.check_number("alpha", alpha, strictly_positive=True)
        self._strip_length = _validation.check_int(
            "strip_length", strip_length, minimum=1
        )

    @property
    def strip_length(self) -> int:
        return self._strip_length

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        k = self._strip_length
        if not is_strip_end(len(val_errors), k):
            return None
        if train_errors is None or len(train_errors) < k:
            raise ValueError(
                f"{self!r} needs the training errors of a whole strip ({k} epochs). "
                "Received: none. Pass them as `train_errors`."
            )
        gl = generalization_loss(val_errors)
        p_k = training_progress(train_errors, k)
        pq = _ratio(gl, p_k)
        if pq > self.alpha:
            detail = (
                f"PQ=GL/P_{k}={_fmt(gl)}/{_fmt(p_k)}={_fmt(pq)} > {_fmt(self.alpha)}"
            )
            return Firing(repr(self), pq, detail)
        return None

    def __repr__(self) -> str:
        suffix = (
            ""
            if self._strip_length == DEFAULT_STRIP_LENGTH
            else (f", strip_length={self._strip_length}")
        )
        return f"PQ({_fmt(self.alpha)}{suffix})"


class UP(Criterion):
    """UP_s: stop at the strip end where E_va has risen for s successive strips.

    Stops after strip end t when `E_va(t) > E_va(t-k) > ... > E_va(t-s*k)`.
    Unlike Keras' `patience`, which counts epochs without a new best, UP looks
    at the trend from strip to strip.

    Args:
        s: the number of successive rises.
        strip_length: k, the training-strip length. Defaults to `5`.

    References:
        Prechelt 1998, "Early Stopping -- But When?", criterion UP_s.
    """

    def __init__(self, s: int, strip_length: int = DEFAULT_STRIP_LENGTH) -> None:
        self.s = _validation.check_int("s", s, minimum=1)
        self._strip_length = _validation.check_int(
            "strip_length", strip_length, minimum=1
        )

    @property
    def strip_length(self) -> int:
        return self._strip_length

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        count = up_count(val_errors, self._strip_length)
        if count >= self.s:
            detail = f"validation error rose at {count} successive strip ends"
            return Firing(repr(self), float(count), detail)
        return None

    def __repr__(self) -> str:
        suffix = (
            ""
            if self._strip_length == DEFAULT_STRIP_LENGTH
            else (f", strip_length={self._strip_length}")
        )
        return f"UP({self.s}{suffix})"


class Patience(Criterion):
    """Keras' patience rule as a criterion, to combine with the others.

    Stops when the validation error has not improved on its best by more than
    `min_delta` for `patience` epochs — exactly the rule of
    `keras.callbacks.EarlyStopping(patience=..., min_delta=...)`.

    Args:
        patience: epochs without improvement before stopping.
        min_delta: smallest decrease that counts as an improvement. Defaults to
            `0`.
    """

    def __init__(self, patience: int, min_delta: float = 0) -> None:
        self.patience = _validation.check_int("patience", patience)
        self.min_delta = abs(_validation.check_number("min_delta", min_delta))

    def epochs_without_improvement(self, val_errors: Sequence[float]) -> int:
        best, wait = math.inf, 0
        for error in val_errors:
            wait += 1
            if error + self.min_delta < best:
                best, wait = error, 0
        return wait

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        wait = self.epochs_without_improvement(val_errors)
        # Keras never stops after the first epoch (its `epoch > 0` check).
        if wait >= self.patience and len(val_errors) > 1:
            detail = f"no improvement for {wait} epochs (patience={self.patience})"
            return Firing(repr(self), float(wait), detail)
        return None

    def __repr__(self) -> str:
        suffix = f", min_delta={_fmt(self.min_delta)}" if self.min_delta else ""
        return f"Patience({self.patience}{suffix})"


class _Combination(Criterion):
    _symbol = ""

    def __init__(self, *criteria: Criterion) -> None:
        flat: list[Criterion] = []
        for criterion in criteria:
            # Flatten `a | b | c` into one combination so its repr reads naturally.
            if isinstance(criterion, _Combination) and type(criterion) is type(self):
                flat.extend(criterion.criteria)
            else:
                flat.append(criterion)
        self.criteria: tuple[Criterion, ...] = tuple(flat)
        self.needs_train_errors = any(c.needs_train_errors for c in self.criteria)

    @property
    def strip_length(self) -> int | None:
        lengths = [c.strip_length for c in self.criteria if c.strip_length]
        return lengths[0] if lengths else None

    def __repr__(self) -> str:
        return f" {self._symbol} ".join(
            f"({c!r})" if isinstance(c, _Combination) else repr(c)
            for c in self.criteria
        )


class AnyOf(_Combination):
    """Stops when any of its criteria fires (written `a | b`); the first wins."""

    _symbol = "|"

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        for criterion in self.criteria:
            firing = criterion.evaluate(val_errors, train_errors)
            if firing is not None:
                return firing
        return None


class AllOf(_Combination):
    """Stops when all of its criteria fire at the same epoch (written `a & b`)."""

    _symbol = "&"

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        firings = []
        for criterion in self.criteria:
            firing = criterion.evaluate(val_errors, train_errors)
            if firing is None:
                return None
            firings.append(firing)
        detail = " and ".join(f"{f.criterion}: {f.detail}" for f in firings)
        return Firing(repr(self), None, detail)


_SHORTHAND = re.compile(r"^\s*(GL|PQ|UP)\s*(\d+(?:\.\d*)?|\.\d+)\s*$", re.IGNORECASE)


def get(identifier: Criterion | str) -> Criterion:
    """Returns a criterion from itself or from a shorthand such as `"GL5"`.

    Args:
        identifier: a `Criterion`, or one of `"GL<alpha>"`, `"PQ<alpha>"`,
            `"UP<s>"` (Prechelt's names: `"GL5"`, `"PQ0.5"`, `"UP3"`).

    Returns:
        The criterion.

    Raises:
        ValueError: for a string that is not such a name.
        TypeError: for anything else.
    """
    if isinstance(identifier, Criterion):
        return identifier
    if isinstance(identifier, str):
        match = _SHORTHAND.match(identifier)
        if match is None:
            raise ValueError(
                _validation.invalid_value(
                    "criterion",
                    'a Criterion or a shorthand such as "GL5", "PQ0.5" or "UP3"',
                    identifier,
                )
            )
        name, number = match.group(1).upper(), match.group(2)
        if name == "UP":
            if not number.isdigit():
                raise ValueError(
                    _validation.invalid_value(
                        "criterion", 'UP with a whole number, such as "UP3"', identifier
                    )
                )
            return UP(int(number))
        return (GL if name == "GL" else PQ)(float(number))
    raise TypeError(
        _validation.invalid_type(
            "criterion", 'a Criterion or a string such as "GL5"', identifier
        )
    )

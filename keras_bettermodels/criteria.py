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

import ast
import math
import numbers
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keras_bettermodels import _validation

__all__ = [
    "GL",
    "PQ",
    "UP",
    "AllOf",
    "AnyOf",
    "Criterion",
    "ErrorHistory",
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


def _check_strip_length(strip_length: Any) -> int:
    return _validation.check_int("strip_length", strip_length, minimum=1)


def _check_sequence(name: str, values: Any) -> Sequence[float]:
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


class ErrorHistory:
    """E_va(1) ... E_va(t) and E_tr(1) ... E_tr(t), with Prechelt's measures at t.

    Each measure is computed once, however many criteria (and the callback's
    `criterion_history`) read it: GL(t) once, P_k(t) and the UP count once per
    strip length k.

    Args:
        val_errors: the validation errors so far, at least one.
        train_errors: the training errors so far, or `None`. Defaults to `None`.

    Raises:
        TypeError: for anything but sequences of numbers.
        ValueError: for an empty `val_errors`.
    """

    def __init__(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> None:
        self.val_errors = _check_sequence("val_errors", val_errors)
        if not val_errors:
            raise ValueError(
                _validation.invalid_value(
                    "val_errors", "the errors of at least one epoch", val_errors
                )
            )
        self.train_errors = (
            None
            if train_errors is None
            else _check_sequence("train_errors", train_errors)
        )
        self._memo: dict[tuple[str, int], Any] = {}

    @property
    def t(self) -> int:
        """The current epoch, 1-based: the number of validation errors."""
        return len(self.val_errors)

    def is_strip_end(self, strip_length: int) -> bool:
        """Whether t ends a training strip of `strip_length`."""
        return self.t >= strip_length and self.t % strip_length == 0

    def gl(self) -> float:
        """GL(t) in percent: `100 * (E_va(t) / E_opt(t) - 1)`; 0 at a new best."""
        key = ("GL", 0)
        if key not in self._memo:
            _check_errors("val_errors", self.val_errors)
            best, current = min(self.val_errors), self.val_errors[-1]
            if best == 0:
                self._memo[key] = math.inf if current > 0 else 0.0
            else:
                self._memo[key] = 100.0 * (current / best - 1.0)
        return float(self._memo[key])

    def p_k(self, strip_length: int) -> float:
        """P_k(t) in per mille over the last `strip_length` training errors."""
        key = ("P_k", strip_length)
        if key not in self._memo:
            train_errors = self.train_errors or []
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
            self._memo[key] = 1000.0 * (
                _ratio(sum(strip), strip_length * min(strip)) - 1.0
            )
        return float(self._memo[key])

    def up(self, strip_length: int) -> int:
        """For how many successive strip ends, up to t, E_va has risen (0 off them)."""
        key = ("UP", strip_length)
        if key not in self._memo:
            t, count, val = self.t, 0, self.val_errors
            if self.is_strip_end(strip_length):
                while t - (count + 1) * strip_length >= 1:
                    later = val[t - count * strip_length - 1]
                    earlier = val[t - (count + 1) * strip_length - 1]
                    if not later > earlier:
                        break
                    count += 1
            self._memo[key] = count
        return int(self._memo[key])

    def measures(
        self, strip_length: int = DEFAULT_STRIP_LENGTH
    ) -> dict[str, float | int | None]:
        """GL, P_k, PQ and UP at t, as `keras_bettermodels.criteria.measures`."""
        gl = self.gl()
        if not self.is_strip_end(strip_length):
            return {"GL": gl, "P_k": None, "PQ": None, "UP": None}
        p_k = pq = None
        if self.train_errors is not None and len(self.train_errors) >= strip_length:
            p_k = self.p_k(strip_length)
            pq = _ratio(gl, p_k)
        return {"GL": gl, "P_k": p_k, "PQ": pq, "UP": self.up(strip_length)}


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
    return ErrorHistory(val_errors).gl()


def is_strip_end(t: int, strip_length: int = DEFAULT_STRIP_LENGTH) -> bool:
    """Returns whether epoch `t` (1-based) ends a training strip of `strip_length`.

    Raises:
        TypeError: if `t` or `strip_length` is not an integer.
        ValueError: if `t` is negative or `strip_length` is not positive.
    """
    t = _validation.check_int("t", t)
    strip_length = _check_strip_length(strip_length)
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

    Raises:
        TypeError: if `train_errors` is not a sequence of numbers or
            `strip_length` not an integer.
        ValueError: if `strip_length` is not positive, or there are fewer than
            `strip_length` errors, or one of the strip's is negative.
    """
    strip_length = _check_strip_length(strip_length)
    _check_sequence("train_errors", train_errors)
    return ErrorHistory([0.0], train_errors).p_k(strip_length)


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
    strip_length = _check_strip_length(strip_length)
    if not _check_sequence("val_errors", val_errors):
        return 0
    return ErrorHistory(val_errors).up(strip_length)


def measures(
    val_errors: Sequence[float],
    train_errors: Sequence[float] | None = None,
    strip_length: int = DEFAULT_STRIP_LENGTH,
) -> dict[str, float | int | None]:
    """Returns GL(t), P_k(t), PQ(t) and the UP count at t = `len(val_errors)`.

    P_k, PQ and UP are defined at strip ends only and are `None` elsewhere (P_k
    and PQ are also `None` without `train_errors`).

    Raises:
        TypeError: if the errors are not sequences of numbers or
            `strip_length` not an integer.
        ValueError: if `strip_length` is not positive, `val_errors` is empty or
            an error that is read is negative.
    """
    strip_length = _check_strip_length(strip_length)
    return ErrorHistory(val_errors, train_errors).measures(strip_length)


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
    `None`; or `evaluate_history(history)`, which reads the measures of an
    `ErrorHistory` that every criterion shares. Combine criteria with `|` (any)
    and `&` (all at the same epoch).
    """

    #: Whether the rule reads training errors (E_tr).
    needs_train_errors: bool = False

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        """Returns a `Firing` if the rule says stop after t = `len(val_errors)`."""
        if type(self).evaluate_history is Criterion.evaluate_history:
            raise NotImplementedError(
                f"{type(self).__name__} must implement `evaluate` or "
                "`evaluate_history`."
            )
        return self.evaluate_history(ErrorHistory(val_errors, train_errors))

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        """As `evaluate`, on an `ErrorHistory` whose measures are computed once."""
        return self.evaluate(history.val_errors, history.train_errors)

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
        if self.alpha < 1:
            warnings.warn(
                f"GL's `alpha` is a percentage: GL(5) stops once the validation "
                f"error is 5 % above its minimum. GL({_fmt(self.alpha)}) stops at "
                f"{_fmt(self.alpha)} %; for {_fmt(100 * self.alpha)} %, write "
                f"GL({_fmt(100 * self.alpha)}).",
                stacklevel=2,
            )

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        gl = history.gl()
        if gl > self.alpha:
            return Firing(repr(self), gl, f"GL={_fmt(gl)} > {_fmt(self.alpha)}")
        return None

    def __repr__(self) -> str:
        return f"GL({_fmt(self.alpha)})"


def _strip_suffix(strip_length: int) -> str:
    if strip_length == DEFAULT_STRIP_LENGTH:
        return ""
    return f", strip_length={strip_length}"


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
        self._strip_length = _check_strip_length(strip_length)

    @property
    def strip_length(self) -> int:
        return self._strip_length

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        k = self._strip_length
        if not history.is_strip_end(k):
            return None
        if history.train_errors is None or len(history.train_errors) < k:
            raise ValueError(
                f"{self!r} needs the training errors of a whole strip ({k} epochs). "
                "Received: none. Pass them as `train_errors`."
            )
        gl, p_k = history.gl(), history.p_k(k)
        pq = _ratio(gl, p_k)
        if pq > self.alpha:
            detail = (
                f"PQ=GL/P_{k}={_fmt(gl)}/{_fmt(p_k)}={_fmt(pq)} > {_fmt(self.alpha)}"
            )
            return Firing(repr(self), pq, detail)
        return None

    def __repr__(self) -> str:
        return f"PQ({_fmt(self.alpha)}{_strip_suffix(self._strip_length)})"


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
        self._strip_length = _check_strip_length(strip_length)

    @property
    def strip_length(self) -> int:
        return self._strip_length

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        count = history.up(self._strip_length)
        if count >= self.s:
            detail = f"validation error rose at {count} successive strip ends"
            return Firing(repr(self), float(count), detail)
        return None

    def __repr__(self) -> str:
        return f"UP({self.s}{_strip_suffix(self._strip_length)})"


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
    """

    def __init__(self, patience: int, min_delta: float = 0) -> None:
        self.patience = _validation.check_int("patience", patience)
        self.min_delta = abs(_validation.check_number("min_delta", min_delta))

    def epochs_without_improvement(self, val_errors: Sequence[float]) -> int:
        best, wait = math.inf, 0
        for error in _check_sequence("val_errors", val_errors):
            wait += 1
            if error + self.min_delta < best:
                best, wait = error, 0
        return wait

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        wait = self.epochs_without_improvement(history.val_errors)
        # Keras never stops at an improving epoch nor after the first epoch.
        if wait >= self.patience and wait > 0 and history.t > 1:
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

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        for criterion in self.criteria:
            firing = criterion.evaluate_history(history)
            if firing is not None:
                return firing
        return None


class AllOf(_Combination):
    """Stops when all of its criteria fire at the same epoch (written `a & b`)."""

    _symbol = "&"

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        firings = []
        for criterion in self.criteria:
            firing = criterion.evaluate_history(history)
            if firing is None:
                return None
            firings.append(firing)
        detail = " and ".join(f"{f.criterion}: {f.detail}" for f in firings)
        return Firing(repr(self), None, detail)


# Prechelt's shorthand, "GL5" or "PQ0.5", rewritten to a call before parsing.
_SHORTHAND = re.compile(r"\b(GL|PQ|UP)(\d+(?:\.\d*)?|\.\d+)(?![\w.])", re.IGNORECASE)
_CONSTRUCTORS: dict[str, type[Criterion]] = {
    "GL": GL,
    "PQ": PQ,
    "UP": UP,
    "PATIENCE": Patience,
}
_EXPECTED = (
    'a Criterion, or a string naming one as it prints itself ("GL(5)", '
    '"UP(3) | GL(2)", "PQ(0.5, strip_length=3)") or in Prechelt\'s shorthand '
    '("GL5", "PQ0.5", "UP3")'
)
_MAX_TEXT = 1000


class _NotACriterion(Exception):
    """A string that does not name a criterion."""


def _number(node: ast.expr) -> float | int:
    value = node.value if isinstance(node, ast.Constant) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise _NotACriterion


def _build(node: ast.expr) -> Criterion:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr | ast.BitAnd):
        left, right = _build(node.left), _build(node.right)
        return left | right if isinstance(node.op, ast.BitOr) else left & right
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.upper() in _CONSTRUCTORS
    ):
        args = [_number(arg) for arg in node.args]
        kwargs = {k.arg: _number(k.value) for k in node.keywords if k.arg}
        if len(kwargs) != len(node.keywords):
            raise _NotACriterion
        constructor: Any = _CONSTRUCTORS[node.func.id.upper()]
        return constructor(*args, **kwargs)
    raise _NotACriterion


def _parse(text: str) -> Criterion:
    if len(text) > _MAX_TEXT:
        raise _NotACriterion
    try:
        tree = ast.parse(_SHORTHAND.sub(r"\1(\2)", text.strip()), mode="eval")
    except SyntaxError as error:
        raise _NotACriterion from error
    return _build(tree.body)


def get(identifier: Criterion | str) -> Criterion:
    """Returns a criterion from itself or from a string that names it.

    Args:
        identifier: a `Criterion`, or a string: a criterion as it prints itself
            (`"GL(5)"`, `"PQ(0.5, strip_length=3)"`, `"Patience(3)"`, and
            combinations such as `"UP(3) | GL(2)"` or `"GL(2) & UP(2)"`), or
            Prechelt's shorthand (`"GL5"`, `"PQ0.5"`, `"UP3"`). Names are
            case-insensitive; nothing in the string is executed.

    Returns:
        The criterion: `get(repr(c)) == c` for every criterion `c`.

    Raises:
        ValueError: for a string that names no criterion, or one whose numbers
            the criterion refuses (`"GL(0)"`, `"UP1.5"`).
        TypeError: for anything else.
    """
    if isinstance(identifier, Criterion):
        return identifier
    if isinstance(identifier, str):
        try:
            return _parse(identifier)
        except _NotACriterion:
            fix = None
        except (TypeError, ValueError) as error:
            fix = f"The criterion refused it: {error}"
        raise ValueError(
            _validation.invalid_value("criterion", _EXPECTED, identifier, fix)
        ) from None
    raise TypeError(_validation.invalid_type("criterion", _EXPECTED, identifier))

"""Criterion, the one hook every rule implements, and its `|` / `&` combinations."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from keras_bettermodels.criteria._history import ErrorHistory


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


def fmt(x: float) -> str:
    return f"{x:.4g}"


class Criterion:
    """Base class: a rule that says, at each epoch, whether to stop.

    Subclasses implement one method, `evaluate_history(history)`: it reads an
    `ErrorHistory` (whose measures every criterion shares) and returns a
    `Firing` when the rule says stop after epoch t = `history.t`, else `None`.
    `evaluate(val_errors, train_errors)` asks it on plain lists. Combine
    criteria with `|` (any) and `&` (all at the same epoch).
    """

    #: Whether the rule reads training errors (E_tr).
    needs_train_errors: bool = False
    #: Whether the rule reads the monitored values as errors (lower is
    #: better, non-negative), so that a maximized metric is refused.
    needs_errors: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Before 0.1, a subclass could implement `evaluate` instead: one release
        # of grace, through the hook.
        if "evaluate" in cls.__dict__ and (
            cls.evaluate_history is Criterion.evaluate_history
        ):
            warnings.warn(
                f"{cls.__name__} implements `evaluate`, which is deprecated as a "
                "hook and will not be called in the next release; implement "
                "`evaluate_history(history)` instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            evaluate = cls.__dict__["evaluate"]

            def evaluate_history(self: Criterion, history: ErrorHistory) -> Any:
                return evaluate(self, history.val_errors, history.train_errors)

            cls.evaluate_history = evaluate_history  # type: ignore[method-assign]

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        """Returns a `Firing` if the rule says stop after t = `history.t`."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `evaluate_history`."
        )

    def evaluate(
        self, val_errors: Sequence[float], train_errors: Sequence[float] | None = None
    ) -> Firing | None:
        """`evaluate_history` on the errors so far, t = `len(val_errors)`."""
        return self.evaluate_history(ErrorHistory(val_errors, train_errors))

    @property
    def strip_length(self) -> int | None:
        """The strip length the rule uses, or `None` if it uses no strips."""
        return None

    def __or__(self, other: Criterion | str) -> Criterion:
        return AnyOf(self, _get(other))

    def __ror__(self, other: Criterion | str) -> Criterion:
        return AnyOf(_get(other), self)

    def __and__(self, other: Criterion | str) -> Criterion:
        return AllOf(self, _get(other))

    def __rand__(self, other: Criterion | str) -> Criterion:
        return AllOf(_get(other), self)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


def _get(identifier: Criterion | str) -> Criterion:
    from keras_bettermodels.criteria._parse import get  # it builds criteria

    return get(identifier)


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
        self.needs_errors = any(c.needs_errors for c in self.criteria)

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

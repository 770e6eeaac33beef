"""ErrorHistory: the errors of a run so far, what every criterion reads."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from keras_bettermodels.criteria import _measures
from keras_bettermodels.criteria._measures import DEFAULT_STRIP_LENGTH, Measures


class ErrorHistory:
    """E_va(1) ... E_va(t) and E_tr(1) ... E_tr(t): what a criterion decides on.

    `measures(k)` gives Prechelt's measures at t; each is computed once,
    however many criteria (and the callback's `criterion_history`) read it.

    Args:
        val_errors: the validation errors so far, at least one.
        train_errors: the training errors so far, or `None`. Defaults to `None`.
        elapsed: seconds since training began, for `TimeLimit`, or `None`.
            Defaults to `None`.

    Raises:
        TypeError: for anything but sequences of numbers.
        ValueError: for an empty `val_errors`.
    """

    def __init__(
        self,
        val_errors: Sequence[float],
        train_errors: Sequence[float] | None = None,
        elapsed: float | None = None,
    ) -> None:
        self.val_errors = _measures.check_val_errors(val_errors)
        self.train_errors = (
            None
            if train_errors is None
            else _measures.check_sequence("train_errors", train_errors)
        )
        self.elapsed = _measures.check_elapsed(elapsed)
        self._memo: dict[tuple[str, int], Any] = {}

    @property
    def t(self) -> int:
        """The current epoch, 1-based: the number of validation errors."""
        return len(self.val_errors)

    def _once(self, name: str, k: int, compute: Callable[[], Any]) -> Any:
        if (name, k) not in self._memo:
            self._memo[name, k] = compute()
        return self._memo[name, k]

    def _gl(self) -> float:
        return float(self._once("GL", 0, lambda: _measures.gl(self.val_errors)))

    def _p_k(self, k: int) -> float:
        train = self.train_errors or []
        return float(self._once("P_k", k, lambda: _measures.p_k(train, k)))

    def _up(self, k: int) -> int:
        return int(self._once("UP", k, lambda: _measures.up(self.val_errors, k)))

    def _has_strip(self, k: int) -> bool:
        """Whether t ends a strip of `k` with the training errors of all of it."""
        return _measures.strip_ends(self.t, k) and len(self.train_errors or ()) >= k

    def measures(self, strip_length: int = DEFAULT_STRIP_LENGTH) -> Measures:
        """GL, P_k, PQ and UP at t, as `keras_bettermodels.criteria.measures`."""
        k, gl = strip_length, self._gl()
        if not _measures.strip_ends(self.t, k):
            return {"GL": gl, "P_k": None, "PQ": None, "UP": None}
        p_k = pq = None
        if self._has_strip(k):
            p_k = self._p_k(k)
            pq = _measures.ratio(gl, p_k)
        return {"GL": gl, "P_k": p_k, "PQ": pq, "UP": self._up(k)}

    # Deprecated duplicates of the module's functions, kept for one release.

    def is_strip_end(self, strip_length: int) -> bool:
        """Deprecated: use `criteria.is_strip_end(history.t, strip_length)`."""
        _deprecated("is_strip_end(k)", "criteria.is_strip_end(history.t, k)")
        return _measures.strip_ends(self.t, strip_length)

    def gl(self) -> float:
        """Deprecated: use `measures()["GL"]`."""
        _deprecated("gl()", 'measures()["GL"]')
        return self._gl()

    def p_k(self, strip_length: int) -> float:
        """Deprecated: use `measures(k)["P_k"]`."""
        _deprecated("p_k(k)", 'measures(k)["P_k"]')
        return self._p_k(strip_length)

    def up(self, strip_length: int) -> int:
        """Deprecated: use `measures(k)["UP"]`."""
        _deprecated("up(k)", 'measures(k)["UP"]')
        return self._up(strip_length)


def _deprecated(method: str, instead: str) -> None:
    warnings.warn(
        f"`ErrorHistory.{method}` is deprecated and will be removed in the next "
        f"release; use `{instead}`.",
        DeprecationWarning,
        stacklevel=3,
    )


def measures(
    val_errors: Sequence[float],
    train_errors: Sequence[float] | None = None,
    strip_length: int = DEFAULT_STRIP_LENGTH,
) -> Measures:
    """Returns GL(t), P_k(t), PQ(t) and the UP count at t = `len(val_errors)`.

    P_k, PQ and UP are defined at strip ends only and are `None` elsewhere (P_k
    and PQ are also `None` without `train_errors`).

    Raises:
        TypeError: if the errors are not sequences of numbers or
            `strip_length` not an integer.
        ValueError: if `strip_length` is not positive, `val_errors` is empty or
            an error that is read is negative.
    """
    strip_length = _measures.check_strip_length(strip_length)
    return ErrorHistory(val_errors, train_errors).measures(strip_length)

"""Prechelt's rules: GL_alpha, PQ_alpha and UP_s."""

from __future__ import annotations

import warnings

from keras_bettermodels import _validation
from keras_bettermodels.criteria._base import Criterion, Firing, fmt
from keras_bettermodels.criteria._history import ErrorHistory
from keras_bettermodels.criteria._measures import (
    DEFAULT_STRIP_LENGTH,
    check_strip_length,
    ratio,
    strip_ends,
)


def _strip_suffix(strip_length: int) -> str:
    if strip_length == DEFAULT_STRIP_LENGTH:
        return ""
    return f", strip_length={strip_length}"


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
                f"error is 5 % above its minimum. GL({fmt(self.alpha)}) stops at "
                f"{fmt(self.alpha)} %; for {fmt(100 * self.alpha)} %, write "
                f"GL({fmt(100 * self.alpha)}).",
                stacklevel=2,
            )

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        gl = history._gl()
        if gl > self.alpha:
            return Firing(repr(self), gl, f"GL={fmt(gl)} > {fmt(self.alpha)}")
        return None

    def __repr__(self) -> str:
        return f"GL({fmt(self.alpha)})"


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
        self._strip_length = check_strip_length(strip_length)

    @property
    def strip_length(self) -> int:
        return self._strip_length

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        k = self._strip_length
        if not strip_ends(history.t, k):
            return None
        if not history._has_strip(k):
            raise ValueError(
                f"{self!r} needs the training errors of a whole strip ({k} epochs). "
                "Received: none. Pass them as `train_errors`."
            )
        gl, p_k = history._gl(), history._p_k(k)
        pq = ratio(gl, p_k)
        if pq > self.alpha:
            detail = f"PQ=GL/P_{k}={fmt(gl)}/{fmt(p_k)}={fmt(pq)} > {fmt(self.alpha)}"
            return Firing(repr(self), pq, detail)
        return None

    def __repr__(self) -> str:
        return f"PQ({fmt(self.alpha)}{_strip_suffix(self._strip_length)})"


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
        self._strip_length = check_strip_length(strip_length)

    @property
    def strip_length(self) -> int:
        return self._strip_length

    def evaluate_history(self, history: ErrorHistory) -> Firing | None:
        count = history._up(self._strip_length)
        if count >= self.s:
            detail = f"validation error rose at {count} successive strip ends"
            return Firing(repr(self), float(count), detail)
        return None

    def __repr__(self) -> str:
        return f"UP({self.s}{_strip_suffix(self._strip_length)})"

"""Epoch and step clocks: timestamps taken at Keras' callback hooks.

The per-step hook (`step_begin`) is on `fit`'s hot path: one clock read and
a few attribute stores. Nothing here reads model state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from keras_bettermodels.timing.analysis import EpochTiming

__all__ = ["EpochClock"]


class EpochClock:
    """Times one epoch at a time: its steps, its first step and its validation.

    Call `epoch_begin`, then `step_begin` at the start of every training step,
    `test_begin` / `test_end` around validation, and `epoch_end`, which returns
    the epoch's `EpochTiming`.

    Args:
        clock: a function returning seconds. Defaults to `time.perf_counter`.
    """

    __slots__ = (
        "_clock",
        "_epoch",
        "_first_step_at",
        "_last_step",
        "_last_step_at",
        "_second_step_at",
        "_start",
        "_test_start",
        "_train_end",
        "_validation",
    )

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._start: float | None = None
        self._epoch = 0
        self._reset()

    def _reset(self) -> None:
        self._first_step_at: float | None = None
        self._second_step_at: float | None = None
        self._last_step = -1
        self._last_step_at: float | None = None
        self._test_start: float | None = None
        self._train_end: float | None = None
        self._validation = 0.0

    @property
    def in_epoch(self) -> bool:
        """Whether an epoch has begun and not ended."""
        return self._start is not None

    def epoch_begin(self, epoch: int) -> None:
        """Starts timing epoch `epoch` (0-based)."""
        self._reset()
        self._epoch = epoch
        self._start = self._clock()

    def step_begin(self, step: int) -> None:
        """Marks the start of training step `step`: the hot path."""
        now = self._last_step_at = self._clock()
        self._last_step = step
        if self._second_step_at is None:
            if self._first_step_at is None:
                self._first_step_at = now
            else:
                self._second_step_at = now

    def test_begin(self) -> None:
        """Marks the start of validation within the epoch."""
        if self._start is None:
            return
        self._test_start = self._clock()
        if self._train_end is None:
            self._train_end = self._test_start

    def test_end(self) -> None:
        """Marks the end of validation within the epoch."""
        if self._start is None or self._test_start is None:
            return
        self._validation += self._clock() - self._test_start
        self._test_start = None

    def epoch_end(
        self,
        *,
        steps_per_execution: int = 1,
        steps_limit: int | None = None,
        batch_size: int | None = None,
    ) -> EpochTiming:
        """Ends the epoch and returns its timings.

        Args:
            steps_per_execution: the model's steps per `train_function` call
                (Keras passes the first step of each call to the hook).
                Defaults to `1`.
            steps_limit: the epoch's step count if Keras knows it, to cap the
                count at the last call. Defaults to `None`.
            batch_size: samples per batch, or `None`. Defaults to `None`.

        Returns:
            The epoch's `EpochTiming`.

        Raises:
            RuntimeError: if no epoch has begun.
        """
        now = self._clock()
        if self._start is None:
            raise RuntimeError("`epoch_end` was called before `epoch_begin`.")
        start = self._start
        self._start = None
        train_end = self._train_end if self._train_end is not None else now
        total = now - start
        steps = self._last_step + steps_per_execution if self._last_step >= 0 else 0
        if steps_limit:
            steps = min(steps, steps_limit)
        first_step_end = (
            self._second_step_at if self._second_step_at is not None else train_end
        )
        first_step_start = (
            self._first_step_at if self._first_step_at is not None else train_end
        )
        # The last step, unless it is also the first.
        last_step_time = (
            train_end - self._last_step_at
            if self._last_step_at is not None and self._second_step_at is not None
            else 0.0
        )
        return EpochTiming(
            epoch=self._epoch,
            time=max(0.0, total - self._validation),
            validation_time=self._validation,
            steps=steps,
            time_to_first_step=first_step_start - start,
            first_step_time=first_step_end - start,
            last_step_time=last_step_time,
            samples=None if batch_size is None else steps * batch_size,
        )

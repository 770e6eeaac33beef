"""Epoch and step clocks: timestamps taken at Keras' callback hooks.

The per-step hook (`step_begin`) is on `fit`'s hot path: one clock read and
a few attribute stores, never a wait. At the boundaries it measures (training
to validation, the end of validation, the end of the epoch) the clock first
calls `wait`, if given, so that work a backend dispatched asynchronously is
booked to the part that dispatched it; the seconds waited are kept as the
epoch's `sync_time`. Nothing here reads model state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from keras_bettermodels.timing.report import EpochTiming

__all__ = ["EpochClock"]


class EpochClock:
    """Times one epoch at a time: its steps, its first step and its validation.

    Call `epoch_begin`, then `step_begin` at the start of every training step,
    `test_begin` / `test_end` around validation, and `epoch_end`, which returns
    the epoch's `EpochTiming`.

    Args:
        clock: a function returning seconds. Defaults to `time.perf_counter`.
        wait: a function that returns once the device has run the work
            dispatched so far (the callback passes `wait_for_device` from
            `keras_bettermodels._compat.timing`), called at `test_begin`,
            `test_end` and `epoch_end` within an epoch, never per step; or
            `None` when every step is done by the time its hook runs.
            Defaults to `None`.
    """

    __slots__ = (
        "_clock",
        "_epoch",
        "_first_step_at",
        "_last_step",
        "_last_step_at",
        "_second_step_at",
        "_start",
        "_sync",
        "_test_start",
        "_train_end",
        "_validation",
        "_wait",
    )

    def __init__(
        self,
        clock: Callable[[], float] = time.perf_counter,
        wait: Callable[[], object] | None = None,
    ) -> None:
        self._clock = clock
        self._wait = wait
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
        self._sync = 0.0

    def _after_wait(self) -> float:
        """Waits for the device (if there is a `wait`) and reads the clock.

        The seconds waited add to the epoch's `sync_time`.
        """
        if self._wait is None:
            return self._clock()
        before = self._clock()
        self._wait()
        now = self._clock()
        self._sync += now - before
        return now

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
        # The training steps' work ends here, not where the host got to.
        self._test_start = self._after_wait()
        if self._train_end is None:
            self._train_end = self._test_start

    def test_end(self) -> None:
        """Marks the end of validation within the epoch."""
        if self._start is None or self._test_start is None:
            return
        self._validation += self._after_wait() - self._test_start
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
        if self._start is None:
            raise RuntimeError("`epoch_end` was called before `epoch_begin`.")
        now = self._after_wait()
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
            sync_time=self._sync,
        )

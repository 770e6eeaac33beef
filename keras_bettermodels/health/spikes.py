"""Loss spikes: each step's loss, read back from Keras' running mean, and a window.

Keras' `fit` logs, at each batch's end, the *mean* training loss since the
epoch's start (a `keras.metrics.Mean` weighted by the batch sizes), not the
batch's own. With equal batches, the mean of the batches between two logs is
((e + 1)·m_e − (p + 1)·m_p) / (e − p) for logs at 0-based batches p < e (a
last, smaller batch reads as a blend of its loss and the running mean, never
above its own loss). `BatchLosses` does that arithmetic.

`SpikeDetector` flags a finite loss above `factor` times the mean of the last
`window` finite, non-spike losses (the window must be full first) that also
stands out of the recent losses' own spread: it rises above the median of the
last `HISTORY` (100) non-spike losses by more than `TAIL_FACTOR` (3) times as
much as the highest of them did. A converged model's batch losses are
heavy-tailed (a few hard samples dominate a batch: on a conv net at a training
loss of ~0.007, one batch in a hundred is 10× the median and the highest of
300 18×), so a ratio alone, or a floor measured from a fit's first loss (tiny
when the model is already trained), flags its ordinary batches; a jump that
dwarfs the highest recent loss does not happen by chance. The history is kept
across fits of one model by one `TrainingHealth`, so a model fitted again
starts with its tails known. The price: on such heavy-tailed losses, a batch
10× the median is not told from a hard batch; on steady losses (a regression,
a model still learning) it is.

The defaults follow PyTorch Lightning's `SpikeDetection` (a window of 10
steps and a relative tolerance of 2, i.e. a loss 3× the running mean).

References:
    PyTorch Lightning, `lightning.fabric.utilities.spike.SpikeDetection`.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from typing import Any

from keras_bettermodels import _validation

__all__ = [
    "DEFAULT_FACTOR",
    "DEFAULT_WINDOW",
    "HISTORY",
    "TAIL_FACTOR",
    "BatchLosses",
    "SpikeDetector",
]

#: A loss above this multiple of the window's mean is a spike.
DEFAULT_FACTOR = 3.0
#: The number of recent losses in the window.
DEFAULT_WINDOW = 10
#: The number of recent losses whose median and highest set the spread.
HISTORY = 100
#: A spike rises above that median by more than this many times the highest.
TAIL_FACTOR = 3.0


class BatchLosses:
    """Each batch's loss, from the running means `fit` logs at batch ends."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forgets the epoch: call it at each epoch's start (Keras resets its mean)."""
        self._last: tuple[int, float] | None = None

    def read(self, batch: int, running_mean: Any) -> float | None:
        """The mean loss of the batches since the last read (`None`: no loss).

        Args:
            batch: the 0-based batch of the epoch that the log ends.
            running_mean: the logged `loss`: the mean over batches 0…batch.
        """
        if running_mean is None:
            return None
        mean = float(running_mean)
        last, self._last = self._last, (batch, mean)
        if last is None or batch <= last[0]:  # the epoch's first log
            return mean
        before, previous = last
        if not math.isfinite(mean):
            return mean
        if not math.isfinite(previous):
            return None  # a running mean does not come back from NaN: not Keras'
        return ((batch + 1) * mean - (before + 1) * previous) / (batch - before)


class SpikeDetector:
    """Flags a finite loss above `factor` × the mean of the last `window` losses.

    Args:
        factor: how many times the window's mean a loss must exceed. Defaults
            to `DEFAULT_FACTOR` (3).
        window: the number of recent losses averaged. Defaults to
            `DEFAULT_WINDOW` (10).
        history: earlier losses (of an earlier fit of the same model) that
            start the history. Defaults to none.

    Non-finite losses are neither spikes (that is `MixedPrecisionGuard`'s or
    `EarlyStopping(check_finite=True)`'s business) nor kept in the window;
    nor are spikes, so that one spike does not raise the bar for the next.
    """

    def __init__(
        self,
        factor: float = DEFAULT_FACTOR,
        window: int = DEFAULT_WINDOW,
        history: Iterable[float] = (),
    ) -> None:
        self.factor = _validation.check_number("factor", factor, strictly_positive=True)
        self.window = _validation.check_int("window", window, minimum=1)
        self._losses: deque[float] = deque(maxlen=self.window)
        self._history: deque[float] = deque(history, maxlen=max(HISTORY, self.window))

    @property
    def history(self) -> tuple[float, ...]:
        """The last `HISTORY` non-spike losses, oldest first."""
        return tuple(self._history)

    def reset(self, *, keep_history: bool = False) -> None:
        """Empties the window (and, unless `keep_history`, the history)."""
        self._losses.clear()
        if not keep_history:
            self._history.clear()

    def baseline(self) -> float | None:
        """The window's mean, or `None` while the window is not full."""
        if len(self._losses) < self.window:
            return None
        return sum(self._losses) / len(self._losses)

    def record(self, loss: float) -> float | None:
        """Records `loss`; returns the baseline it spiked over, or `None`."""
        if not math.isfinite(loss):
            return None
        baseline = self.baseline()
        if baseline is not None and baseline > 0 and loss > self.factor * baseline:
            median = statistics.median(self._history)
            if loss - median > TAIL_FACTOR * (max(self._history) - median):
                return baseline
        self._losses.append(loss)
        self._history.append(loss)
        return None

"""Input timing's analysis: compile time, steady epoch, speedup and advice.

Pure Python: nothing here imports Keras, TensorFlow or a backend. The callback
(`keras_bettermodels.callbacks.CacheTimingCallback`) gathers one `EpochTiming`
per epoch and hands them, with what it learnt about the input pipeline, to
`summarize`, which returns a `TimingReport` (both types are defined in
`keras_bettermodels.timing.report` and importable from here).

The figures:

- `first_epoch_time`: the first epoch's training time (validation excluded).
- `steady_epoch_time`: the median training time of the epochs after the first
  `warmup_epochs`.
- `compile_time`: the first step of the first epoch holds tracing /
  compilation *and* the first batch's input; only its excess over the median
  first step of the later epochs is compile time (never negative). The last
  step's excess is added the same way: a smaller last batch compiles again in
  the first epoch (JAX, and a retrace on TensorFlow).
- `speedup`: `(first_epoch_time - compile_time) / steady_epoch_time`. An
  uncached pipeline reports about 1, however long tracing took; a cached one
  reports how much faster an epoch that reads the cache is than the epoch that
  filled it.
- `sync_time`: the seconds the callback waited for the device at the epochs'
  boundaries, summed (see `EpochTiming.sync_time`): the waited-for work is
  booked to training or validation, where it belongs, and the sum bounds what
  the waiting costs `fit`.
- `recompiled_epochs`: epochs after the warm-up that compiled again (see
  `recompiled_epochs`): JAX compiles again for a new shape (the last, smaller
  batch) and for the first validation, and that can land in the second epoch.
  They are reported apart and left out of the steady epoch, the compile time's
  baseline and the speedup, so that one slow recompiling epoch does not pass
  for a steady one.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from keras_bettermodels.timing.pipeline import PipelineInfo

# The report types live in `report`; they stay importable from here, where the
# API reference and users' code have always found them.
from keras_bettermodels.timing.report import EpochTiming, TimingReport

__all__ = [
    "DROP_THRESHOLD",
    "RECOMPILE_MIN_SECONDS",
    "RECOMPILE_MIN_SHARE",
    "RECOMPILE_RATIO",
    "EpochTiming",
    "TimingReport",
    "advise",
    "compile_time",
    "recompiled_epochs",
    "speedup",
    "steady_epoch_time",
    "summarize",
]

#: A speedup below this counts as "epoch time does not drop after the first
#: epoch". Epoch times of a small model on a busy CPU vary by 10-20 %.
DROP_THRESHOLD = 1.25

#: An epoch after the warm-up compiled again when its whole time is this many
#: times the other steady epochs' median, or when its first or last step is
#: this many times theirs and the excess is at least `RECOMPILE_MIN_SHARE` of a
#: steady epoch. Noise on a busy CPU stays well under 3x; a recompilation on JAX
#: is 10-40x a 30-50 ms epoch.
RECOMPILE_RATIO = 3.0
#: Below half a steady epoch, an extra step barely moves the epochs' median.
RECOMPILE_MIN_SHARE = 0.5
#: And never below this many seconds: a compilation takes longer (0.5-2 s for
#: a small model on JAX), while a busy machine stalls a 30 ms epoch by tens of
#: milliseconds.
RECOMPILE_MIN_SECONDS = 0.2


def steady_epoch_time(
    epoch_times: Sequence[float], warmup_epochs: int = 1
) -> float | None:
    """Returns the median epoch time after the first `warmup_epochs` epochs.

    Args:
        epoch_times: training seconds per epoch, in order.
        warmup_epochs: epochs left out (the first fills the cache and holds
            compilation). Defaults to `1`.

    Returns:
        The median, or `None` if no epoch follows the warm-up.
    """
    later = list(epoch_times)[warmup_epochs:]
    return statistics.median(later) if later else None


def _excess(times: Sequence[float]) -> float:
    return max(0.0, times[0] - statistics.median(times[1:]))


def compile_time(
    first_step_times: Sequence[float],
    last_step_times: Sequence[float] | None = None,
) -> float | None:
    """Returns the excess of the first epoch's first step: tracing / compilation.

    The first step of the first epoch holds compilation and the first batch's
    input; the first steps of later epochs hold the input only. The excess of
    the first over the median of the others is compile time.

    A last batch smaller than the others is compiled for again in the first
    epoch (JAX compiles per shape; TensorFlow retraces once); given the last
    steps' times too, their excess is added the same way, so that an uncached
    pipeline reports a speedup near 1 whatever its batch sizes.

    Args:
        first_step_times: per epoch, seconds from the start of the epoch to the
            end of its first step.
        last_step_times: per epoch, seconds from the start of the last step to
            the end of training in the epoch, or `None`. Defaults to `None`.

    Returns:
        The excess in seconds, never negative; `None` with fewer than two
        epochs.

    Example:

    ```python
    compile_time([2.4, 0.1, 0.12, 0.1])  # 2.3
    ```
    """
    if len(first_step_times) < 2:
        return None
    excess = _excess(first_step_times)
    if last_step_times is not None and len(last_step_times) >= 2:
        excess += _excess(last_step_times)
    return excess


def _first_step(epoch: EpochTiming) -> float:
    """From the start of the epoch to the end of its first step.

    The time before the step counts: on JAX the second epoch's compilation
    shows there (measured: 9.2 s before the first step, the step itself
    56 ms), as does a stall opening the iterator, which cannot be told apart.
    """
    return epoch.first_step_time


def _last_step(epoch: EpochTiming) -> float:
    return epoch.last_step_time


def recompiled_epochs(
    epochs: Sequence[EpochTiming], warmup_epochs: int = 1
) -> tuple[int, ...]:
    """Returns the epochs after the warm-up that compiled again.

    Each epoch after the first `warmup_epochs` is compared with the median of
    the *other* epochs after the warm-up (leave one out, so that one outlier
    among two epochs is still seen). It compiled again when:

    - its training time is at least `RECOMPILE_RATIO` times theirs, or
    - its first step (from the start of the epoch: on JAX the compilation
      shows before the step begins) or its last step is at least
      `RECOMPILE_RATIO` times theirs, and longer by at least
      `RECOMPILE_MIN_SHARE` of their epoch time;

    and in either case it is longer than their epoch by at least
    `RECOMPILE_MIN_SECONDS` (a stall of a busy machine is not a compilation).

    Args:
        epochs: one `EpochTiming` per epoch, in order.
        warmup_epochs: epochs before the steady state. Defaults to `1`.

    Returns:
        The positions (0-based, in `epochs`) of the recompiled epochs; empty
        with fewer than two epochs after the warm-up.

    Example:

    ```python
    epochs = [EpochTiming(0, 2.0, 0.0, 10, 0.0, 1.5),
              EpochTiming(1, 1.2, 0.0, 10, 0.0, 1.1),  # compiled again
              EpochTiming(2, 0.1, 0.0, 10, 0.0, 0.01),
              EpochTiming(3, 0.1, 0.0, 10, 0.0, 0.01)]
    recompiled_epochs(epochs)  # (1,)
    ```
    """
    later = list(range(warmup_epochs, len(epochs)))
    if len(later) < 2:
        return ()
    found = []
    for index in later:
        others = [epochs[other] for other in later if other != index]
        epoch = epochs[index]
        steady = statistics.median(other.time for other in others)
        if epoch.time - steady < RECOMPILE_MIN_SECONDS:
            continue
        if steady > 0 and epoch.time >= RECOMPILE_RATIO * steady:
            found.append(index)
            continue
        for step in (_first_step, _last_step):
            value = step(epoch)
            usual = statistics.median(step(other) for other in others)
            if (
                value >= RECOMPILE_RATIO * usual
                and value - usual >= RECOMPILE_MIN_SHARE * steady
                and value > usual
            ):
                found.append(index)
                break
    return tuple(found)


def speedup(
    first_epoch_time: float | None,
    steady_epoch_time: float | None,
    compile_time: float | None,
) -> float | None:
    """Returns `(first_epoch_time - compile_time) / steady_epoch_time`.

    Args:
        first_epoch_time: the first epoch's training seconds.
        steady_epoch_time: the median training seconds of the later epochs.
        compile_time: the first epoch's compile seconds (see `compile_time`).

    Returns:
        How many times faster a steady epoch is than the first epoch without
        its compilation; `None` when a figure is missing or the steady epoch
        took no time.
    """
    if first_epoch_time is None or steady_epoch_time is None or compile_time is None:
        return None
    if steady_epoch_time <= 0:
        return None
    return max(0.0, first_epoch_time - compile_time) / steady_epoch_time


def advise(
    *,
    pipeline: PipelineInfo | None,
    speedup: float | None,
    epochs: int,
    warmup_epochs: int = 1,
    cache_reused: bool = False,
    cache_partial: bool = False,
    steps_read: int | None = None,
    recompiled: Sequence[int] = (),
    recompile_time: float | None = None,
    backend: str | None = None,
) -> tuple[str, ...]:
    """Turns the pipeline's shape and the timings into advice.

    Args:
        pipeline: what `inspect_pipeline` found, or `None` if the input was
            not a `tf.data.Dataset` (NumPy arrays, a PyTorch `DataLoader`).
        speedup: the first epoch over a steady one (see `speedup`), or `None`.
        epochs: epochs timed.
        warmup_epochs: epochs before the steady state. Defaults to `1`.
        cache_reused: whether a complete file cache existed before training
            started. Defaults to `False`.
        cache_partial: whether training ended before the cache was complete.
            Defaults to `False`.
        steps_read: batches read in all, for the partial-cache message.
            Defaults to `None`.
        recompiled: the Keras epoch numbers (0-based) that compiled again
            after the warm-up (see `recompiled_epochs`). Defaults to `()`.
        recompile_time: their seconds over a steady epoch, or `None`.
            Defaults to `None`.
        backend: the Keras backend's name, to word the recompile advice.
            Defaults to `None`.

    Returns:
        Sentences, most important first; empty when there is nothing to say.
    """
    advice: list[str] = []
    if recompiled:
        names = ", ".join(str(epoch + 1) for epoch in recompiled)
        extra = f" (+{recompile_time:.3f} s)" if recompile_time is not None else ""
        cause = (
            "JAX often compiles once more after the first epoch"
            if backend == "jax"
            else "a new input shape traced or compiled again"
        )
        advice.append(
            f"epoch(s) {names} compiled again{extra}: reported apart, not counted "
            f"as steady epochs ({cause}); if it recurs, look for input shapes "
            "that change, such as a smaller last batch (`drop_remainder=True`)"
        )
    if epochs <= warmup_epochs:
        advice.append(
            f"only {epochs} epoch(s) timed: train more than warmup_epochs="
            f"{warmup_epochs} epochs to compare a steady epoch with the first"
        )
    drops = speedup is not None and speedup >= DROP_THRESHOLD
    flat = speedup is not None and speedup < DROP_THRESHOLD
    if pipeline is None:
        return tuple(advice)
    explained = False
    if pipeline.cached and pipeline.take_after_cache:
        explained = True
        advice.append(
            "the cache was only partly filled and will be discarded: `take` after "
            "`cache` stops reading before the cache is complete, so every epoch "
            "reads the source again; put `.take(k)` before `.cache()`"
        )
    if pipeline.cached and pipeline.repeat_before_cache:
        explained = True
        advice.append(
            "the cache sits after an endless `repeat()` and can never be "
            "completed: put `.cache()` before `.repeat()`"
        )
    if cache_partial and not explained:
        explained = True
        read = f" (only {steps_read} batches were read)" if steps_read else ""
        advice.append(
            f"the cache was only partly filled and will be discarded{read}: "
            "TensorFlow keeps a cache only once a full pass over the data "
            "completes it; train at least one full pass, or put `.take(k)` "
            "before `.cache()`"
        )
    if cache_reused:
        explained = True
        advice.append(
            f"a file cache from an earlier run was reused ({pipeline.cache_path}): "
            "the first epoch read the cache too, so it shows no speedup; delete "
            "its files to rebuild it after changing the pipeline"
        )
    if (
        pipeline.cached
        and pipeline.maps_after_cache
        and (flat or pipeline.python_map_after_cache)
    ):
        explained = True
        advice.append(
            "the cache sits before an expensive `map`, which still runs every "
            "epoch: move `.cache()` after that `map` (keep random augmentation "
            "after the cache)"
        )
    if pipeline.cached and pipeline.shuffle_before_cache:
        advice.append(
            "`shuffle` runs before `cache`, so every epoch repeats the first "
            "epoch's order: call `.shuffle()` after `.cache()`"
        )
    if not pipeline.cached and flat:
        where = (
            "after the expensive `map`"
            if pipeline.maps
            else "after the steps that read and decode the data"
        )
        advice.append(
            "epoch time does not drop after the first epoch and the pipeline is "
            f"not cached: add `.cache()` {where}"
        )
    elif pipeline.cached and flat and not explained:
        advice.append(
            "the pipeline is cached but epoch time does not drop: the cache was "
            "already full when training started (a memory cache filled by an "
            "earlier `fit` on the same dataset), or reading the data is not "
            "what takes the time"
        )
    elif pipeline.cached and drops and not explained:
        advice.append(
            f"the cache works: a steady epoch is {speedup:.1f}x faster than the "
            "epoch that filled it"
        )
    if not pipeline.prefetched:
        advice.append(
            "the pipeline does not end with `prefetch`: add "
            "`.prefetch(tf.data.AUTOTUNE)` last, so that input overlaps training"
        )
    return tuple(advice)


def summarize(
    epochs: Sequence[EpochTiming],
    *,
    warmup_epochs: int = 1,
    batch_size: int | None = None,
    pipeline: PipelineInfo | None = None,
    cache_reused: bool = False,
    cache_partial: bool = False,
    backend: str | None = None,
    input_kind: str | None = None,
) -> TimingReport:
    """Computes the figures and the advice of one `fit` from its epochs.

    Args:
        epochs: one `EpochTiming` per epoch, in order.
        warmup_epochs: epochs left out of the steady state. Defaults to `1`.
        batch_size: samples per batch, or `None`. Defaults to `None`.
        pipeline: the inspected `tf.data` pipeline, or `None`. Defaults to
            `None`.
        cache_reused: whether a complete file cache existed before training.
            Defaults to `False`.
        cache_partial: whether training ended before the cache was complete.
            Defaults to `False`.
        backend: the Keras backend's name, for the record. Defaults to `None`.
        input_kind: what the callback's `dataset` was (`"tf.data"`,
            `"PyDataset"`, ...), or `None`. Defaults to `None`.

    Returns:
        A `TimingReport`. Epochs after the warm-up that compiled again
        (`recompiled_epochs`) are left out of the steady epoch, of the
        baseline of the compile time and of the rates.

    Example:

    ```python
    epochs = [EpochTiming(0, 2.0, 0.0, 10, 0.0, 0.9),
              EpochTiming(1, 0.2, 0.0, 10, 0.0, 0.02),
              EpochTiming(2, 0.2, 0.0, 10, 0.0, 0.02)]
    summarize(epochs).speedup  # (2.0 - 0.88) / 0.2 = 5.6
    ```
    """
    epochs = tuple(epochs)
    outliers = recompiled_epochs(epochs, warmup_epochs)
    kept = [epoch for index, epoch in enumerate(epochs) if index not in outliers]
    times = [epoch.time for epoch in kept]
    first = times[0] if times else None
    steady = steady_epoch_time(times, warmup_epochs)
    compiled = compile_time(
        [epoch.first_step_time for epoch in kept],
        [epoch.last_step_time for epoch in kept],
    )
    ratio = speedup(first, steady, compiled)
    recompiled = tuple(epochs[index].epoch for index in outliers)
    recompile_time = (
        sum(max(0.0, epochs[index].time - (steady or 0.0)) for index in outliers)
        if outliers
        else None
    )
    later = kept[warmup_epochs:]
    steady_steps = statistics.median(epoch.steps for epoch in later) if later else None
    steps_per_second = (
        steady_steps / steady if steady and steady_steps is not None else None
    )
    samples_per_second = (
        steps_per_second * batch_size
        if steps_per_second is not None and batch_size
        else None
    )
    steps_read = sum(epoch.steps for epoch in epochs)
    advice = advise(
        pipeline=pipeline,
        speedup=ratio,
        epochs=len(epochs),
        warmup_epochs=warmup_epochs,
        cache_reused=cache_reused,
        cache_partial=cache_partial,
        steps_read=steps_read,
        recompiled=recompiled,
        recompile_time=recompile_time,
        backend=backend,
    )
    return TimingReport(
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        batch_size=batch_size,
        first_epoch_time=first,
        steady_epoch_time=steady,
        compile_time=compiled,
        speedup=ratio,
        steps_per_second=steps_per_second,
        samples_per_second=samples_per_second,
        cached=None if pipeline is None else pipeline.cached,
        cache=None if pipeline is None else pipeline.cache,
        cache_path=None if pipeline is None else pipeline.cache_path,
        prefetched=None if pipeline is None else pipeline.prefetched,
        cache_reused=cache_reused,
        cache_partial=cache_partial,
        pipeline=pipeline,
        advice=advice,
        backend=backend,
        recompiled_epochs=recompiled,
        recompile_time=recompile_time,
        input_kind=input_kind,
        sync_time=sum(epoch.sync_time for epoch in epochs),
    )

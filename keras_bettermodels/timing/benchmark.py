"""Time an input pipeline alone, and the same pipeline with and without `.cache()`.

`measure_pipeline` iterates a dataset for a few epochs without a model, as the
tf.data performance guide's `benchmark` does. `compare_cache` runs the seed
article's experiment on any pipeline: the same pipeline uncached and cached
(in memory or in a file), side by side, plus, for a file cache, a second
cached run that finds the file the first one left (a "warm" cache).

Over N epochs from a cold cache the first epoch still pays in full, so the
total speedup is at most N; steady-state epochs can be far faster than that.
A larger total speedup needs a warm file cache.

TensorFlow is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from keras_bettermodels import _validation
from keras_bettermodels.timing.pipeline import (
    file_cache_files,
    inspect_pipeline,
    is_tf_dataset,
)

__all__ = ["CacheComparison", "PipelineTiming", "compare_cache", "measure_pipeline"]

_DEFAULT_PREFIX = "kbm_compare_cache"


@dataclasses.dataclass(frozen=True)
class PipelineTiming:
    """Epoch times of a pipeline iterated without a model.

    Attributes:
        epoch_times: seconds per pass over the dataset.
        elements: elements (batches, for a batched dataset) in the first pass.
    """

    epoch_times: tuple[float, ...]
    elements: int

    @property
    def total_time(self) -> float:
        """Seconds for all epochs."""
        return sum(self.epoch_times)

    @property
    def first_epoch_time(self) -> float:
        """Seconds for the first pass."""
        return self.epoch_times[0]

    @property
    def steady_epoch_time(self) -> float | None:
        """Median seconds of the passes after the first, or `None` with one."""
        later = self.epoch_times[1:]
        return statistics.median(later) if later else None

    @property
    def elements_per_second(self) -> float | None:
        """Elements per second in a steady pass (the first with one pass)."""
        seconds = self.steady_epoch_time or self.first_epoch_time
        return self.elements / seconds if seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields and derived figures as a JSON-serializable dict."""
        return {
            "epoch_times": list(self.epoch_times),
            "elements": self.elements,
            "total_time": self.total_time,
            "first_epoch_time": self.first_epoch_time,
            "steady_epoch_time": self.steady_epoch_time,
            "elements_per_second": self.elements_per_second,
        }


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


@dataclasses.dataclass(frozen=True)
class CacheComparison:
    """The same pipeline timed uncached and cached, side by side.

    Attributes:
        uncached: timings without `.cache()`.
        cached: timings with `.cache()` from an empty cache (cold).
        warm: for a file cache, timings of a second cached run that reads the
            file the first one left; `None` for a memory cache.
        cache: `"memory"` or `"file"`.
        cache_path: the file cache's path prefix (its files are deleted),
            or `None`.
    """

    uncached: PipelineTiming
    cached: PipelineTiming
    warm: PipelineTiming | None
    cache: str
    cache_path: str | None

    @property
    def speedup(self) -> float | None:
        """Total uncached time over total cached (cold) time: at most `epochs`."""
        return _ratio(self.uncached.total_time, self.cached.total_time)

    @property
    def steady_speedup(self) -> float | None:
        """Steady uncached epoch over steady cached epoch."""
        return _ratio(self.uncached.steady_epoch_time, self.cached.steady_epoch_time)

    @property
    def warm_speedup(self) -> float | None:
        """Total uncached time over total warm-file-cache time, or `None`."""
        if self.warm is None:
            return None
        return _ratio(self.uncached.total_time, self.warm.total_time)

    @property
    def bound(self) -> int:
        """The most a cold cache can gain in total over the epochs run."""
        return len(self.cached.epoch_times)

    def to_dict(self) -> dict[str, Any]:
        """Returns the timings and ratios as a JSON-serializable dict."""
        return {
            "uncached": self.uncached.to_dict(),
            "cached": self.cached.to_dict(),
            "warm": None if self.warm is None else self.warm.to_dict(),
            "cache": self.cache,
            "cache_path": self.cache_path,
            "speedup": self.speedup,
            "steady_speedup": self.steady_speedup,
            "warm_speedup": self.warm_speedup,
            "bound": self.bound,
        }

    def __str__(self) -> str:
        rows: list[tuple[str, PipelineTiming, float | None]] = [
            ("uncached", self.uncached, 1.0)
        ]
        rows.append((f"cache ({self.cache}, cold)", self.cached, self.speedup))
        if self.warm is not None:
            rows.append(("cache (file, warm)", self.warm, self.warm_speedup))
        header = (
            f"{'pipeline':<22} {'total s':>9} {'first s':>9} "
            f"{'steady s':>9} {'speedup':>8}"
        )
        lines = [header, "-" * len(header)]
        for name, timing, ratio in rows:
            steady = timing.steady_epoch_time
            lines.append(
                f"{name:<22} {timing.total_time:>9.4f} {timing.first_epoch_time:>9.4f} "
                f"{'n/a' if steady is None else format(steady, '.4f'):>9} "
                f"{'n/a' if ratio is None else format(ratio, '.2f') + 'x':>8}"
            )
        steady_ratio = self.steady_speedup
        lines.append(
            f"steady-state epoch ratio (uncached / cached): "
            f"{'n/a' if steady_ratio is None else format(steady_ratio, '.1f') + 'x'}; "
            f"a cold cache gains at most {self.bound}x in total over "
            f"{self.bound} epochs"
        )
        return "\n".join(lines)


def measure_pipeline(dataset: Iterable[Any], *, epochs: int = 2) -> PipelineTiming:
    """Times passes over a dataset without a model, as the tf.data guide does.

    Each epoch iterates the dataset from a fresh iterator to its end, doing
    nothing with the elements. The first pass of a cached pipeline fills the
    cache; later passes read it.

    Args:
        dataset: a `tf.data.Dataset`, or any re-iterable (a PyTorch
            `DataLoader`, a list); not a one-shot iterator. It must be finite.
        epochs: passes over the dataset. Defaults to `2`.

    Returns:
        A `PipelineTiming`.

    Raises:
        TypeError: if `dataset` is not re-iterable, or `epochs` not an integer.
        ValueError: if `epochs` is below 1, or `dataset` is an endless
            `tf.data.Dataset`.

    Example:

    ```python
    timing = measure_pipeline(tf.data.Dataset.range(100).map(parse), epochs=3)
    timing.epoch_times, timing.elements_per_second
    ```

    References:
        TensorFlow guide, "Better performance with the tf.data API".
    """
    epochs = _validation.check_int("epochs", epochs, minimum=1)
    if is_tf_dataset(dataset):
        import tensorflow as tf

        if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):  # type: ignore[attr-defined]
            raise ValueError(
                _validation.invalid_value(
                    "dataset",
                    "a finite dataset",
                    dataset,
                    "Remove `.repeat()` or add `.take(n)` before timing it.",
                )
            )
    elif not isinstance(dataset, Iterable) or iter(dataset) is dataset:
        raise TypeError(
            _validation.invalid_type(
                "dataset",
                "a `tf.data.Dataset` or another re-iterable (not an iterator)",
                dataset,
            )
        )
    times: list[float] = []
    elements = 0
    for epoch in range(epochs):
        count = 0
        start = time.perf_counter()
        for _ in dataset:
            count += 1
        times.append(time.perf_counter() - start)
        if epoch == 0:
            elements = count
    return PipelineTiming(tuple(times), elements)


def _cache_prefix(cache_to: str | os.PathLike[str]) -> str:
    path = os.fspath(cache_to)
    return os.path.join(path, _DEFAULT_PREFIX) if os.path.isdir(path) else path


def compare_cache(
    make_dataset: Callable[[], Any],
    *,
    epochs: int = 5,
    cache_to: str | os.PathLike[str] | None = None,
) -> CacheComparison:
    """Times a pipeline without and with `.cache()`, side by side: the article's test.

    Runs `make_dataset()` for `epochs` passes, then `make_dataset().cache()`
    (in memory, or in a file at `cache_to`) for `epochs` passes. With a file
    cache it also times a third run that finds the file the second one wrote
    (a warm cache, as a rerun of a training script would), then deletes the
    cache files it made.

    Args:
        make_dataset: a function of no arguments that returns a fresh, finite,
            uncached `tf.data.Dataset`; `.cache()` is appended to it.
        epochs: passes per run. Defaults to `5`.
        cache_to: `None` to cache in memory, or a file path prefix (as for
            `Dataset.cache(filename)`) or an existing directory to cache in
            files there. Defaults to `None`.

    Returns:
        A `CacheComparison`.

    Raises:
        TypeError: if `make_dataset` is not callable or does not return a
            `tf.data.Dataset`, or `cache_to` is not a path.
        ValueError: if the pipeline is already cached, `epochs` is below 1, or
            cache files already exist at `cache_to` (they are never deleted).

    Example:

    ```python
    result = compare_cache(
        lambda: tf.data.Dataset.range(1000).map(slow_parse), epochs=5
    )
    print(result)  # totals, speedups, steady-state epoch ratio
    ```

    References:
        TensorFlow guide, "Better performance with the tf.data API", section
        "Caching".
    """
    if not callable(make_dataset):
        raise TypeError(
            _validation.invalid_type(
                "make_dataset",
                "a function that returns a `tf.data.Dataset`",
                make_dataset,
            )
        )
    epochs = _validation.check_int("epochs", epochs, minimum=1)
    if cache_to is not None and not isinstance(cache_to, str | os.PathLike):
        raise TypeError(
            _validation.invalid_type("cache_to", "a path or None", cache_to)
        )
    prefix = None if cache_to is None else _cache_prefix(cache_to)
    if prefix is not None and file_cache_files(prefix):
        raise ValueError(
            _validation.invalid_value(
                "cache_to",
                "a path without cache files",
                os.fspath(cache_to),  # type: ignore[arg-type]
                f"Delete {file_cache_files(prefix)} or pass another path: "
                "`compare_cache` never deletes files it did not make.",
            )
        )

    def fresh() -> Any:
        dataset = make_dataset()
        if not is_tf_dataset(dataset):
            raise TypeError(
                _validation.invalid_type(
                    "make_dataset()", "a `tf.data.Dataset`", dataset
                )
            )
        if inspect_pipeline(dataset).cached:
            raise ValueError(
                _validation.invalid_value(
                    "make_dataset()",
                    "an uncached pipeline",
                    dataset,
                    "Remove `.cache()`: `compare_cache` adds it.",
                )
            )
        return dataset

    uncached = measure_pipeline(fresh(), epochs=epochs)
    try:
        cached = measure_pipeline(fresh().cache(prefix or ""), epochs=epochs)
        warm = (
            None
            if prefix is None
            else measure_pipeline(fresh().cache(prefix), epochs=epochs)
        )
    finally:
        if prefix is not None:
            for path in file_cache_files(prefix):
                os.remove(path)
    return CacheComparison(
        uncached=uncached,
        cached=cached,
        warm=warm,
        cache="memory" if prefix is None else "file",
        cache_path=prefix,
    )

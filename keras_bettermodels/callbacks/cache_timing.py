"""CacheTimingCallback: input timing in `fit`, epochs, compile time, cache speedup."""

from __future__ import annotations

import copy
import os
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any

import keras

from keras_bettermodels import _validation
from keras_bettermodels._compat.callbacks import bare_model
from keras_bettermodels._compat.io import print_msg
from keras_bettermodels._compat.timing import wait_for_device
from keras_bettermodels.timing import analysis, pipeline
from keras_bettermodels.timing._clock import EpochClock
from keras_bettermodels.timing.report import EpochTiming, TimingReport

__all__ = ["CacheTimingCallback"]

_DATASET_TYPES = (
    "a `tf.data.Dataset`, a `torch.utils.data.DataLoader`, a "
    "`keras.utils.PyDataset`, a generator or None"
)
_ARRAY_FIX = (
    "Arrays need no `dataset`: pass `batch_size=` (the same as to `fit`) "
    "for samples per second"
)


def _is_torch_loader(value: Any) -> bool:
    torch_data = sys.modules.get("torch.utils.data")
    return torch_data is not None and isinstance(value, torch_data.DataLoader)


def _input_kind(value: Any) -> str | None:
    """What `dataset` is, in the report's words, or `None` if `fit` cannot take it."""
    if pipeline.is_tf_dataset(value):
        return "tf.data"
    if _is_torch_loader(value):
        return "DataLoader"
    if isinstance(value, keras.utils.PyDataset):
        return "PyDataset"
    if isinstance(value, types.GeneratorType | Iterator):
        return "generator"
    return None


@_validation.suggest_keywords()
class CacheTimingCallback(keras.callbacks.Callback):
    """Times each epoch of `fit` and tells the cache-filling epoch from cached ones.

    Per epoch it records the training wall time (validation is timed apart),
    the steps, steps and samples per second, the time to the first step and
    the time to the end of the first step. From those it derives:

    - `first_epoch_time` and `steady_epoch_time` (the median of the epochs
      after `warmup_epochs`);
    - `compile_time`: the first step of the first epoch holds tracing /
      compilation *and* the first batch's input, so only its excess over the
      median first step of the later epochs counts (never negative); the
      last step's excess is added the same way, since a smaller last batch
      compiles again (JAX) or retraces (TensorFlow) in the first epoch;
    - `speedup` = `(first_epoch_time - compile_time) / steady_epoch_time`:
      about 1 for an uncached pipeline however long tracing took, and the
      cache's gain for a cached one.

    Given the `tf.data.Dataset` it trains on (`dataset=`), it inspects the
    pipeline (cached in memory or in a file, prefetched, where the cache sits
    relative to `map` and `shuffle`) and turns that and the timings into advice
    such as "add `.cache()` after the expensive `map`".

    An epoch after the warm-up that compiled again (its time, or its first or
    last step, far out from the other steady epochs, as on JAX when the last
    smaller batch or the first validation compiles again) is reported apart
    in `report().recompiled_epochs` and left out of the steady figures.

    It times any input `fit` accepts, on every backend: NumPy arrays,
    `tf.data` (Keras 3 feeds it to JAX and PyTorch models too), a
    `keras.utils.PyDataset`, a generator, a PyTorch `DataLoader`. The
    pipeline's inspection and the `.cache()` advice need a `tf.data.Dataset`;
    for any other `dataset` the report says "not a tf.data pipeline" and
    times only. TensorFlow is never imported unless a `tf.data.Dataset` is
    given. Inside a keras-tuner search the callback is deep-copied per trial;
    the copy shares `dataset` with the original. Its per-step hook
    reads the clock and stores the step index, nothing more: it never reads
    model state, and defines no batch-end hook, so Keras' asynchronous
    batch-end dispatch stays on.

    Where steps run asynchronously (JAX always; TensorFlow and PyTorch on a
    GPU) the host reaches the end of an epoch's steps before the device has
    run them. So at the boundaries it measures, and only there (training to
    validation, the end of validation, the end of the epoch), the callback
    waits for the device, and the training steps' work counts as training,
    not as the first validation step. The seconds waited are reported as
    `sync_time`: at most what the wait costs `fit`.

    Args:
        dataset: the `tf.data.Dataset` passed to `fit`, to inspect its cache
            and read its batch size; a PyTorch `DataLoader` or a Keras
            `PyDataset` gives the batch size only (if it has one), a generator
            nothing but its kind. Not for arrays: pass `batch_size=`.
            Defaults to `None`.
        batch_size: samples per batch, for samples per second (a callback
            cannot see it; pass the same value as to `fit`). Overrides the
            dataset's. With neither, only steps per second are reported.
            Defaults to `None`.
        warmup_epochs: epochs left out of `steady_epoch_time`; the first one
            fills the cache. Defaults to `1`.
        verbose: 0 is silent, 1 prints the report when training ends.
            Defaults to `1`.
        log_dir: if set, epoch times and samples/s are written there as
            TensorBoard scalars under `input_timing/`, and the report as a
            JSON summary for the Input timing tab. Defaults to `None`.

    Attributes:
        epoch_times: training seconds per epoch, validation excluded.
        first_epoch_time: the first epoch's training seconds, or `None`.
        steady_epoch_time: the median of the epochs after the warm-up, or
            `None`.
        compile_time: the first epoch's compile seconds, or `None` with fewer
            than two epochs.
        speedup: the first epoch (less compilation) over a steady one.
        recompiled_epochs: the epochs (0-based) after the warm-up that
            compiled again, left out of the steady figures.
        samples_per_second: steady-state samples per second, or `None`.
        steps_per_second: steady-state steps per second, or `None`.
        sync_time: seconds spent waiting for the device at the epochs'
            boundaries, over the whole fit.
        epochs: one `EpochTiming` per epoch.
        pipeline: the `PipelineInfo` of `dataset`, or `None`.

    Raises:
        TypeError: if `dataset`, `batch_size`, `warmup_epochs`, `verbose` or
            `log_dir` has the wrong type.
        ValueError: if `batch_size` or `warmup_epochs` is below 1, or
            `verbose` is negative.

    Example:

    ```python
    from keras_bettermodels.callbacks import CacheTimingCallback

    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .cache()
        .shuffle(1000)
        .batch(32)
        .prefetch(tf.data.AUTOTUNE)
    )
    timer = CacheTimingCallback(dataset=dataset)
    model.fit(dataset, epochs=5, callbacks=[timer])
    print(timer.speedup, timer.report().advice)
    ```

    References:
        TensorFlow guide, "Better performance with the tf.data API"
        (caching, prefetching, benchmarking a pipeline).
    """

    def __init__(
        self,
        *,
        dataset: Any = None,
        batch_size: int | None = None,
        warmup_epochs: int = 1,
        verbose: int = 1,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        if dataset is not None and _input_kind(dataset) is None:
            is_array = _validation.holds_arrays(dataset)
            raise TypeError(
                _validation.invalid_type(
                    "dataset",
                    _DATASET_TYPES,
                    dataset,
                    fix=_ARRAY_FIX if is_array else None,
                )
            )
        self.dataset = dataset
        self.batch_size = (
            None
            if batch_size is None
            else _validation.check_int("batch_size", batch_size, minimum=1)
        )
        self.warmup_epochs = _validation.check_int(
            "warmup_epochs", warmup_epochs, minimum=1
        )
        self.verbose = _validation.check_int("verbose", verbose)
        if log_dir is not None and not isinstance(log_dir, str | os.PathLike):
            raise TypeError(
                _validation.invalid_type("log_dir", "a path or None", log_dir)
            )
        self.log_dir = log_dir
        self.epochs: list[EpochTiming] = []
        self.pipeline: pipeline.PipelineInfo | None = None
        self._clock = EpochClock()
        self._cache_reused = False
        self._resolved_batch_size: int | None = self.batch_size

    def __deepcopy__(self, memo: dict[int, Any]) -> CacheTimingCallback:
        """Copies the callback; the copy shares `dataset` and the model.

        keras-tuner deep-copies callbacks per trial, and a `tf.data` graph or a
        generator cannot be copied.
        """
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for shared in (self.dataset, bare_model(self)):
            memo[id(shared)] = shared
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    # Keras hooks ------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.epochs = []
        self._clock = EpochClock(wait=self._wait_for_device)
        self.pipeline = self._inspect()
        self._cache_reused = bool(
            self.pipeline is not None
            and self.pipeline.cache == "file"
            and self.pipeline.cache_path
            and pipeline.file_cache_complete(self.pipeline.cache_path)
        )
        self._resolved_batch_size = self._find_batch_size()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._clock.epoch_begin(epoch)

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self._clock.step_begin(batch)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._clock.test_begin()

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self._clock.test_end()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._clock.in_epoch:
            return
        params = self.params or {}
        model = bare_model(self)
        timing = self._clock.epoch_end(
            steps_per_execution=int(getattr(model, "steps_per_execution", 1) or 1),
            steps_limit=params.get("steps"),
            batch_size=self._resolved_batch_size,
        )
        self.epochs.append(timing)
        if self.log_dir is not None:
            from keras_bettermodels.tensorboard import summary

            summary.write_scalars(
                self.log_dir,
                epoch,
                {
                    "input_timing/epoch_time": timing.time,
                    "input_timing/validation_time": timing.validation_time,
                    "input_timing/first_step_time": timing.first_step_time,
                    "input_timing/steps_per_second": timing.steps_per_second,
                    "input_timing/samples_per_second": timing.samples_per_second,
                },
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self.epochs:
            return
        report = self.report()
        if self.verbose > 0:
            print_msg(str(report))
        if self.log_dir is not None:
            from keras_bettermodels.tensorboard import metadata, summary

            summary.write_json(
                self.log_dir,
                self.epochs[-1].epoch,
                "input_timing/report",
                report.to_dict(),
                plugin_name=metadata.INPUT_TIMING_PLUGIN,
            )

    # Results ----------------------------------------------------------------

    def report(self) -> TimingReport:
        """Returns the `TimingReport` of the epochs timed so far.

        Returns:
            A `TimingReport`: the figures, what the pipeline looks like, and
            advice. `str(report)` is a short table.
        """
        return analysis.summarize(
            self.epochs,
            warmup_epochs=self.warmup_epochs,
            batch_size=self._resolved_batch_size,
            pipeline=self.pipeline,
            cache_reused=self._cache_reused,
            cache_partial=self._cache_partial(),
            backend=keras.backend.backend(),
            input_kind=None if self.dataset is None else _input_kind(self.dataset),
        )

    @property
    def epoch_times(self) -> list[float]:
        """Training seconds per epoch, validation excluded."""
        return [epoch.time for epoch in self.epochs]

    @property
    def first_epoch_time(self) -> float | None:
        """The first epoch's training seconds, or `None` before it ends."""
        return self.epochs[0].time if self.epochs else None

    @property
    def steady_epoch_time(self) -> float | None:
        """The median training seconds of the epochs after `warmup_epochs`,
        recompiled epochs left out."""
        return self.report().steady_epoch_time if self.epochs else None

    @property
    def compile_time(self) -> float | None:
        """The first step's excess in the first epoch: tracing / compilation."""
        return self.report().compile_time if self.epochs else None

    @property
    def speedup(self) -> float | None:
        """`(first_epoch_time - compile_time) / steady_epoch_time`."""
        return self.report().speedup if self.epochs else None

    @property
    def recompiled_epochs(self) -> tuple[int, ...]:
        """The epochs (0-based) after the warm-up that compiled again."""
        return self.report().recompiled_epochs if self.epochs else ()

    @property
    def sync_time(self) -> float:
        """Seconds spent waiting for the device at the epochs' boundaries."""
        return sum(epoch.sync_time for epoch in self.epochs)

    @property
    def steps_per_second(self) -> float | None:
        """Steady-state training steps per second, or `None`."""
        return self.report().steps_per_second if self.epochs else None

    @property
    def samples_per_second(self) -> float | None:
        """Steady-state samples per second, or `None` without a batch size."""
        return self.report().samples_per_second if self.epochs else None

    # Helpers ----------------------------------------------------------------

    def _wait_for_device(self) -> None:
        wait_for_device(bare_model(self))

    def _inspect(self) -> pipeline.PipelineInfo | None:
        if not pipeline.is_tf_dataset(self.dataset):
            return None
        try:
            return pipeline.inspect_pipeline(self.dataset)
        except Exception as error:  # a diagnostic must never break `fit`
            warnings.warn(
                f"CacheTimingCallback could not inspect the tf.data pipeline "
                f"({type(error).__name__}: {error}); reporting timings only.",
                stacklevel=2,
            )
            return None

    def _find_batch_size(self) -> int | None:
        if self.batch_size is not None:
            return self.batch_size
        if self.pipeline is not None:
            return self.pipeline.batch_size
        size = getattr(self.dataset, "batch_size", None)
        return size if isinstance(size, int) and size > 0 else None

    def _cache_partial(self) -> bool:
        info = self.pipeline
        if info is None or not info.cached or not self.epochs or self._cache_reused:
            return False
        if info.cache == "file" and info.cache_path:
            return not pipeline.file_cache_complete(info.cache_path)
        steps_read = sum(epoch.steps for epoch in self.epochs)
        return info.cardinality is not None and steps_read < info.cardinality

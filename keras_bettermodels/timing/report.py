"""Input timing's report types: `EpochTiming` per epoch, `TimingReport` per `fit`.

Pure Python: nothing here imports Keras, TensorFlow or a backend. Both round-trip
through JSON-serializable dicts (`to_dict` / `from_dict`): `TimingReport.to_dict()`
is the document the Input timing tab renders, and logs written before must still
load, so fields are only ever added (fields in `docs/input-timing.md`).
`str(report)` is a short table. The figures themselves are computed in
`keras_bettermodels.timing.analysis`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from keras_bettermodels.timing.pipeline import PipelineInfo

__all__ = ["EpochTiming", "TimingReport"]

# Rows of `TimingReport.__str__` shown in full before eliding the middle.
_MAX_ROWS = 8


@dataclasses.dataclass(frozen=True)
class EpochTiming:
    """The timings of one epoch of `fit`.

    Attributes:
        epoch: the 0-based epoch, as Keras numbers it.
        time: training wall time in seconds, from the start of the epoch to
            its end, less `validation_time`.
        validation_time: seconds spent in validation during the epoch.
        steps: training steps (batches) run in the epoch.
        time_to_first_step: seconds from the start of the epoch to the start of
            its first step (creating the iterator; on the PyTorch backend also
            fetching the first batch).
        first_step_time: seconds from the start of the epoch to the end of its
            first step: the iterator, the first batch's input and, in the first
            epoch, tracing / compilation.
        samples: samples trained on (`steps * batch_size`, the last, smaller
            batch counted as full), or `None` when the batch size is unknown.
        last_step_time: seconds from the start of the last step to the end of
            training in the epoch (0 when the epoch has one step). A smaller
            last batch compiles again in the first epoch on JAX and retraces
            on TensorFlow.
        sync_time: seconds the host waited, at the epoch's boundaries
            (training to validation, the end of validation, the end of the
            epoch), for the device to finish the steps dispatched to it;
            already in `time` and `validation_time`, where the waited-for
            work belongs. Where steps run asynchronously (JAX; TensorFlow and
            PyTorch on a GPU) it is the device's backlog; 0 without a wait.
    """

    epoch: int
    time: float
    validation_time: float
    steps: int
    time_to_first_step: float
    first_step_time: float
    samples: int | None = None
    last_step_time: float = 0.0
    sync_time: float = 0.0

    @property
    def steps_per_second(self) -> float | None:
        """Training steps per second, or `None` for an epoch of no time."""
        return self.steps / self.time if self.time > 0 else None

    @property
    def samples_per_second(self) -> float | None:
        """Samples per second, or `None` when the batch size is unknown."""
        if self.samples is None or self.time <= 0:
            return None
        return self.samples / self.time

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields and the rates as a JSON-serializable dict."""
        return {
            **dataclasses.asdict(self),
            "steps_per_second": self.steps_per_second,
            "samples_per_second": self.samples_per_second,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochTiming:
        """Rebuilds an `EpochTiming` from `to_dict()`'s output."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclasses.dataclass(frozen=True)
class TimingReport:
    """What `CacheTimingCallback` measured during one `fit`, and its advice.

    `str(report)` is a short table. `to_dict()` is the JSON document written
    for TensorBoard's Input timing tab (fields in `docs/input-timing.md`).

    Attributes:
        epochs: one `EpochTiming` per epoch.
        warmup_epochs: epochs left out of `steady_epoch_time`.
        batch_size: samples per batch, or `None` if unknown.
        first_epoch_time: the first epoch's training seconds.
        steady_epoch_time: the median training seconds of the epochs after
            the warm-up, or `None`.
        compile_time: the first step's excess in the first epoch, or `None`.
        speedup: `(first_epoch_time - compile_time) / steady_epoch_time`.
        steps_per_second: steady-state steps per second, or `None`.
        samples_per_second: steady-state samples per second, or `None`.
        cached: whether the pipeline is cached; `None` if it was not
            inspected (no `tf.data.Dataset` given).
        cache: `"memory"`, `"file"` or `None`.
        cache_path: the file cache's path prefix, or `None`.
        prefetched: whether the pipeline ends with `prefetch`; `None` if not
            inspected.
        cache_reused: whether a complete file cache existed before training.
        cache_partial: whether training ended before the cache was complete.
        pipeline: the whole `PipelineInfo`, or `None`.
        advice: sentences, most important first.
        backend: the Keras backend, or `None`.
        recompiled_epochs: the Keras epoch numbers (0-based) after the
            warm-up that compiled again; left out of the steady figures.
        recompile_time: those epochs' seconds over a steady epoch, summed, or
            `None` when none compiled again.
        input_kind: what `dataset` was: `"tf.data"`, `"PyDataset"`,
            `"DataLoader"`, `"generator"`, ...; `None` when none was given.
        sync_time: seconds the host waited for the device at the epochs'
            boundaries, summed over the epochs (each epoch's
            `EpochTiming.sync_time`). The callback's cost to `fit`, at most:
            without the wait the host could have overlapped that much of its
            own work with the device's.
    """

    epochs: tuple[EpochTiming, ...]
    warmup_epochs: int
    batch_size: int | None
    first_epoch_time: float | None
    steady_epoch_time: float | None
    compile_time: float | None
    speedup: float | None
    steps_per_second: float | None
    samples_per_second: float | None
    cached: bool | None
    cache: str | None
    cache_path: str | None
    prefetched: bool | None
    cache_reused: bool
    cache_partial: bool
    pipeline: PipelineInfo | None
    advice: tuple[str, ...]
    backend: str | None = None
    recompiled_epochs: tuple[int, ...] = ()
    recompile_time: float | None = None
    input_kind: str | None = None
    sync_time: float = 0.0

    @property
    def epoch_times(self) -> list[float]:
        """Training seconds per epoch."""
        return [epoch.time for epoch in self.epochs]

    def to_dict(self) -> dict[str, Any]:
        """Returns the report as a JSON-serializable dict: the tab's document."""
        data = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in ("epochs", "pipeline", "advice", "recompiled_epochs")
        }
        data["recompiled_epochs"] = list(self.recompiled_epochs)
        data["epochs"] = [epoch.to_dict() for epoch in self.epochs]
        data["pipeline"] = None if self.pipeline is None else self.pipeline.to_dict()
        data["advice"] = list(self.advice)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimingReport:
        """Rebuilds a report from `to_dict()`'s output (unknown keys ignored)."""
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["epochs"] = tuple(
            EpochTiming.from_dict(epoch) for epoch in data.get("epochs", ())
        )
        pipeline = data.get("pipeline")
        values["pipeline"] = (
            None if pipeline is None else PipelineInfo.from_dict(pipeline)
        )
        values["advice"] = tuple(data.get("advice", ()))
        values["recompiled_epochs"] = tuple(data.get("recompiled_epochs") or ())
        return cls(**values)

    def _cache_words(self) -> str:
        if self.cached is None:
            if self.input_kind is not None and self.input_kind != "tf.data":
                return f"not a tf.data pipeline ({self.input_kind}): timing only"
            return "pipeline not inspected"
        if not self.cached:
            text = "not cached"
        else:
            text = f"cached in {self.cache}"
            if self.cache_path:
                text += f" ({self.cache_path})"
            if self.pipeline is not None and self.pipeline.cache_position:
                text += f", {self.pipeline.cache_position}"
        return text + ("; prefetched" if self.prefetched else "; not prefetched")

    def __str__(self) -> str:
        lines = [
            f"Input timing: {len(self.epochs)} epoch(s), warm-up {self.warmup_epochs}"
            f"; {self._cache_words()}"
        ]
        header = (
            f"{'epoch':>5} {'train s':>9} {'val s':>8} {'steps':>6} "
            f"{'steps/s':>9} {'samples/s':>10} {'1st step s':>10}"
        )
        lines += [header, "-" * len(header)]
        rows = list(self.epochs)
        if len(rows) > _MAX_ROWS:
            rows = [*rows[:3], None, *rows[-3:]]  # type: ignore[list-item]
        for epoch in rows:
            if epoch is None:
                lines.append(f"{'...':>5}")
                continue
            mark = "  recompiled" if epoch.epoch in self.recompiled_epochs else ""
            lines.append(
                f"{epoch.epoch + 1:>5} {epoch.time:>9.3f} "
                f"{epoch.validation_time:>8.3f} "
                f"{epoch.steps:>6} {_fmt(epoch.steps_per_second, '9.1f')} "
                f"{_fmt(epoch.samples_per_second, '10.0f')} "
                f"{epoch.first_step_time:>10.3f}{mark}"
            )
        lines.append(
            f"first epoch {_fmt(self.first_epoch_time, '.3f', ' s')}, steady epoch "
            f"{_fmt(self.steady_epoch_time, '.3f', ' s')}, compile "
            f"{_fmt(self.compile_time, '.3f', ' s')}, speedup "
            f"{_fmt(self.speedup, '.2f', 'x')}, samples/s "
            f"{_fmt(self.samples_per_second, '.0f')}"
            + (
                f", recompiled {_fmt(self.recompile_time, '.3f', ' s')} in epoch(s) "
                + ", ".join(str(epoch + 1) for epoch in self.recompiled_epochs)
                if self.recompiled_epochs
                else ""
            )
            + f", waited for the device {self.sync_time:.3f} s"
        )
        lines += [f"- {line}" for line in self.advice]
        return "\n".join(lines)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    if value is None:
        width = spec.split(".")[0]
        return f"{'n/a':>{width}}" if width else "n/a"
    return format(value, spec) + unit

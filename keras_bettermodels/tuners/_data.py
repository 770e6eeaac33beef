"""The retrain's data plan: training and validation data as one, and its callbacks.

Pure helpers for the tuners' retrain. They read the arguments of a
`model.fit` call (as `search` receives them) and return those of a fit on the
whole data set: arrays and tensors concatenated, `tf.data` datasets
concatenated, or, with `validation_split`, the whole `x` / `y` unsplit; every
validation argument removed. `DataPlan` checks and counts the data once, and
concatenates it only when the retrain runs (`_combine` does both). Nothing here
trains or prints.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from keras_bettermodels import _validation
from keras_bettermodels.tuners import _combine
from keras_bettermodels.tuners._combine import (
    CannotCombine,
    CannotCombineTypeError,
    CannotCombineValueError,
)

__all__ = [
    "FIT_PARAMETERS",
    "VALIDATION_ARGUMENTS",
    "CannotCombine",
    "CannotCombineTypeError",
    "CannotCombineValueError",
    "DataPlan",
    "FullData",
    "describe_callback",
    "fit_arguments",
    "needs_validation_data",
    "plan",
    "split_callbacks",
]

# `keras.Model.fit`'s parameters, in order.
FIT_PARAMETERS = (
    "x",
    "y",
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
    "class_weight",
    "sample_weight",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)
# What the retrain leaves out: it holds no data out.
VALIDATION_ARGUMENTS = (
    "validation_split",
    "validation_data",
    "validation_steps",
    "validation_batch_size",
    "validation_freq",
)

ARRAYS = "arrays"
SPLIT = "validation_split"
DATASET = "dataset"
TRAINING_ONLY = "training data only"

_DATASETS_NOTE = (
    "The tf.data datasets are concatenated in order: each epoch reads the "
    "training batches, then the validation batches."
)


@dataclass(frozen=True)
class FullData:
    """The arguments of a fit on training + validation data.

    Attributes:
        args: the positional arguments for `HyperModel.fit(hp, model, *args)`:
            `x` and `y`, if they were given positionally.
        kwargs: the keyword arguments, with every validation argument removed.
        kind: where the validation data came from and how it was added:
            `"arrays"` (concatenated), `"dataset"` (a `tf.data` dataset
            concatenated), `"validation_split"` (the whole `x` / `y`, unsplit)
            or `"training data only"` (there was no validation data).
        train_samples: the training samples, or `None` for a dataset.
        validation_samples: the validation samples, or `None` for a dataset
            and when there was no validation data.
        train_batches: batches per epoch of a training dataset, when its
            cardinality is known; `None` otherwise.
        validation_batches: the same for a validation dataset.
        notes: what was changed beyond adding the data, in sentences.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    kind: str
    train_samples: int | None = None
    validation_samples: int | None = None
    train_batches: int | None = None
    validation_batches: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def samples(self) -> int | None:
        """Training + validation samples, or `None` when a count is unknown."""
        if self.train_samples is None:
            return None
        return self.train_samples + (self.validation_samples or 0)

    @property
    def batches(self) -> int | None:
        """Training + validation batches of datasets, or `None`."""
        if self.train_batches is None:
            return None
        if self.kind == DATASET and self.validation_batches is None:
            return None
        return self.train_batches + (self.validation_batches or 0)


def fit_arguments(args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Names the arguments of a `model.fit` call by `keras.Model.fit`'s signature.

    Args:
        args: positional arguments, as `fit(x, y, ...)` receives them.
        kwargs: keyword arguments.

    Returns:
        A dict from parameter name to value, for the arguments given.

    Raises:
        TypeError: for more positional arguments than `fit` takes, or an
            argument given both ways.
    """
    if len(args) > len(FIT_PARAMETERS):
        raise TypeError(
            f"`fit` takes at most {len(FIT_PARAMETERS)} positional arguments. "
            f"Received: {len(args)}"
        )
    named = dict(zip(FIT_PARAMETERS, args, strict=False))
    for name in named:
        if name in kwargs:
            raise TypeError(f"`fit` got multiple values for argument `{name}`")
    named.update(kwargs)
    return named


@dataclass(frozen=True)
class DataPlan:
    """A search's fit arguments, checked and counted once, for its retrain.

    Attributes:
        named: the fit arguments by name (`fit_arguments`).
        found: the data's kind, counts and notes, without arguments.
        positional: how many of `x`, `y` were given positionally.
        join: appends the validation data (`_combine.Joinable.join`), or
            `None` when there is none to append.
    """

    named: dict[str, Any]
    found: FullData
    positional: int
    join: Callable[[], dict[str, Any]] | None = None

    @property
    def counted(self) -> FullData:
        """The data counted: the arguments given, minus the validation ones."""
        return _with_arguments(self.found, self.named, self.positional)

    def full(self) -> FullData:
        """The retrain's fit arguments, with the validation data appended (a copy)."""
        if self.join is None:
            return self.counted
        named = {**self.named, **self.join()}
        return _with_arguments(self.found, named, self.positional)


def plan(args: Sequence[Any], kwargs: dict[str, Any]) -> DataPlan:
    """Checks and counts the data of a `fit` call for a fit on all of it.

    `DataPlan.full()` returns the arguments of a fit on training and
    validation data together. Arrays and tensors (NumPy, TensorFlow, JAX,
    PyTorch, pandas, SciPy sparse; nested in lists, tuples or dicts for
    several inputs) are concatenated sample-wise, validation after training;
    sample weights too, with weights of 1 for the side that has none. A
    `tf.data.Dataset` is concatenated with the validation dataset. With
    `validation_split`, `x` and `y` already hold everything and are passed
    whole. Without validation data the training data is all there is.
    `validation_data` wins over `validation_split`, as in Keras.
    `steps_per_epoch`, if given, grows in proportion to the added data.

    Args:
        args: the positional arguments given to `search`.
        kwargs: the keyword arguments given to `search`.

    Returns:
        A `DataPlan`: `counted` checks the data and counts it, without
        copying it (its `args` and `kwargs` are those given, minus the
        validation arguments); `full()` appends the validation data.

    Raises:
        CannotCombineTypeError: a `TypeError`, for data that cannot be
            combined with its validation data (a Python generator or
            `PyDataset`, a dataset with validation arrays, ...).
        CannotCombineValueError: a `ValueError`, for an infinite training
            dataset.
        ValueError: for validation data whose structure or per-sample shapes
            differ from the training data's.
    """
    named = fit_arguments(args, kwargs)
    x = named.get("x")
    validation_data = named.get("validation_data")
    split = named.get("validation_split") or 0.0
    join = None
    if validation_data is not None:
        if _combine.is_dataset(x):
            joinable, kind = _combine.datasets(x, validation_data), DATASET
        elif _combine.is_array_structure(x):
            joinable, kind = _combine.arrays(named, validation_data), ARRAYS
        else:
            raise CannotCombineTypeError(
                f"{_validation.invalid_type('x', _combine.ADDABLE, x)}. "
                f"{_combine.RETRAIN_YOURSELF}"
            )
        join = joinable.join
        full = FullData(
            (),
            {},
            kind,
            joinable.train_samples,
            joinable.validation_samples,
            joinable.train_batches,
            joinable.validation_batches,
            (_DATASETS_NOTE,) if kind == DATASET else (),
        )
    elif split:
        count = _combine.samples(x) if _combine.is_array_structure(x) else None
        train = None if count is None else math.floor(count * (1.0 - split))
        full = FullData(
            (),
            {},
            SPLIT,
            train_samples=train,
            validation_samples=None if count is None else count - (train or 0),
        )
    else:
        full = FullData(
            (),
            {},
            TRAINING_ONLY,
            train_samples=(
                _combine.samples(x) if _combine.is_array_structure(x) else None
            ),
            train_batches=_combine.cardinality(x) if _combine.is_dataset(x) else None,
        )
    return DataPlan(named, full, min(len(args), 2), join)


def _with_arguments(full: FullData, named: dict[str, Any], positional: int) -> FullData:
    """Returns `full` with the retrain's `args` and `kwargs` filled in."""
    named = {k: v for k, v in named.items() if k not in VALIDATION_ARGUMENTS}
    notes = list(full.notes)
    steps = named.get("steps_per_epoch")
    if steps is not None:
        grown = _grown_steps(steps, full)
        if grown is not None and grown != steps:
            named["steps_per_epoch"] = grown
            notes.append(
                f"`steps_per_epoch` grows from {steps} to {grown} in proportion "
                "to the added validation data."
            )
    args = tuple(named.pop(name) for name in FIT_PARAMETERS[:positional])
    return FullData(
        args,
        named,
        full.kind,
        full.train_samples,
        full.validation_samples,
        full.train_batches,
        full.validation_batches,
        tuple(notes),
    )


def _grown_steps(steps: Any, full: FullData) -> int | None:
    if not isinstance(steps, numbers.Integral) or full.kind == TRAINING_ONLY:
        return None
    if full.train_samples and full.validation_samples is not None:
        total, part = full.samples, full.train_samples
    elif full.train_batches and full.validation_batches is not None:
        total, part = full.batches, full.train_batches
    else:
        return None
    return math.ceil(int(steps) * (total or 0) / part)


# ------------------------------------------------------------------ callbacks


def needs_validation_data(callback: Any) -> bool:
    """Whether `callback` reads a validation metric that a retrain lacks.

    A callback with a `monitor` on a `val_*` metric needs validation data
    (`EarlyStopping`, `ReduceLROnPlateau`, a best-only `ModelCheckpoint`); a
    `ModelCheckpoint` that saves every epoch does not.

    Args:
        callback: a Keras callback.

    Returns:
        `True` if the callback needs validation data.
    """
    monitor = getattr(callback, "monitor", None)
    if not isinstance(monitor, str) or not monitor.startswith("val_"):
        return False
    if hasattr(callback, "save_best_only"):  # ModelCheckpoint
        return bool(callback.save_best_only)
    return True


def split_callbacks(callbacks: Sequence[Any] | None) -> tuple[list[Any], list[Any]]:
    """Splits callbacks into those a retrain keeps and those it must leave out.

    Args:
        callbacks: the callbacks given to `search`, or `None`.

    Returns:
        `(kept, dropped)`: the dropped ones need validation data.
    """
    kept: list[Any] = []
    dropped: list[Any] = []
    for callback in callbacks or ():
        (dropped if needs_validation_data(callback) else kept).append(callback)
    return kept, dropped


def describe_callback(callback: Any) -> str:
    """Names a callback and what it monitors: `EarlyStopping(monitor='val_loss')`."""
    monitor = getattr(callback, "monitor", None)
    name = type(callback).__name__
    return f"{name}(monitor={monitor!r})" if monitor is not None else name
